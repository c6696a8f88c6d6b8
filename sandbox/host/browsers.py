"""Finding the Chromium the screenshot workload drives.

In order: ``--browser PATH``, ``$SANDBOX_CHROMIUM``, the distribution's Chromium, Google
Chrome, then the browsers ``playwright install chromium`` downloaded
(``$PLAYWRIGHT_BROWSERS_PATH``, else ``~/.cache/ms-playwright``), newest first. The first
usable one is taken. Refused, each with its reason:

- a snap (Ubuntu's ``chromium``): snapd starts it in a cgroup of its own
  (``snap.chromium.*``), so the browser would escape the run's slice and nothing could watch it;
- a browser the run's user cannot execute (every directory above it needs o+x: the workload
  runs as a UID of its own, not as root).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.errors import HarnessError

DISTRIBUTION = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
GOOGLE_CHROME = ("google-chrome-stable", "google-chrome", "/opt/google/chrome/chrome")
#: executables inside a Playwright browser directory (chromium-<revision>/...)
PLAYWRIGHT_LAYOUTS = ("chrome-linux/chrome", "chrome-linux64/chrome")
SNAP_MARKS = ("/snap/bin/", "snap run ")


@dataclass(frozen=True)
class Browser:
    """A Chromium found on this host; ``problem`` says why it cannot be used (None: usable)."""

    path: str
    source: str  # --browser, SANDBOX_CHROMIUM, distribution, google-chrome, playwright
    problem: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _is_snap(path: Path) -> bool:
    """A snap's binary, or a launcher script that starts one (Ubuntu's transitional package)."""
    if str(path.resolve()).startswith("/snap/") or str(path).startswith("/snap/"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return False
    return head.startswith(b"#!") and any(m.encode() in head for m in SNAP_MARKS)


def _unreachable(path: Path) -> Path | None:
    """The first directory above ``path`` (or the file) that others cannot search/execute."""
    for part in (*reversed(path.parents), path):
        try:
            mode = part.stat().st_mode
        except OSError:
            return part
        if not mode & stat.S_IXOTH:
            return part
    return None


def check(path: str | os.PathLike[str], source: str) -> Browser:
    """``path`` as a Browser, with the reason it cannot be used if there is one."""
    p = Path(path)
    if _is_snap(p):
        return Browser(str(p), source, f"{p} is a snap: snapd runs it in a cgroup of its own, "
                       "so it would escape the run's slice; use a Chromium that is not a snap "
                       "(playwright install chromium, Google Chrome, or --browser PATH)")
    if not os.access(p, os.X_OK) or not os.path.isfile(p):
        return Browser(str(p), source, f"{p} is not an executable file")
    if blocked := _unreachable(p.absolute()):
        return Browser(str(p), source, f"the run's user cannot reach {p}: {blocked} is not "
                       "o+x (for Playwright's browsers set PLAYWRIGHT_BROWSERS_PATH to a "
                       "directory others can read)")
    return Browser(str(p), source)


def _playwright_dirs() -> list[Path]:
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    base = Path(root) if root and root != "0" else Path.home() / ".cache" / "ms-playwright"

    def revision(d: Path) -> int:
        tail = d.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    try:
        return sorted(base.glob("chromium-*"), key=revision, reverse=True)
    except OSError:  # not ours to read (another user's HOME)
        return []


def candidates(explicit: str | None = None) -> list[Browser]:
    """Every Chromium found, in the order of preference (see the module docstring)."""
    found: list[Browser] = []
    if explicit:
        found.append(check(explicit, "--browser"))
    if env := os.environ.get("SANDBOX_CHROMIUM"):
        found.append(check(shutil.which(env) or env, "SANDBOX_CHROMIUM"))
    found += [check(p, "distribution") for p in DISTRIBUTION if os.path.lexists(p)]
    for name in GOOGLE_CHROME:
        if where := shutil.which(name):
            found.append(check(where, "google-chrome"))
            break
    for directory in _playwright_dirs():
        for layout in PLAYWRIGHT_LAYOUTS:
            if os.path.exists(directory / layout):
                found.append(check(directory / layout, "playwright"))
    return found


def choose(explicit: str | None = None) -> Browser | None:
    """The browser a run uses: ``explicit`` (HarnessError when it cannot be used), else the
    first usable candidate, else None."""
    found = candidates(explicit)
    if (explicit or os.environ.get("SANDBOX_CHROMIUM")) and found[0].problem:
        raise HarnessError(found[0].problem)
    return next((b for b in found if b.problem is None), None)
