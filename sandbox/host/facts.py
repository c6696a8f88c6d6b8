"""Host facts, discovered once per harness process: what a run can use on this machine."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from sandbox.errors import HarnessError
from sandbox.host.browsers import Browser, candidates
from sandbox.host.cgroups import CgroupLayout, discover_layout

TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


@dataclass(frozen=True)
class HostFacts:
    """Everything the harness needs to know about the host before a run."""

    cgroup: CgroupLayout
    is_root: bool
    hostname: str
    kernel: str
    systemd_pid1: bool
    in_delegated_cgroup: bool
    bpftrace: str | None
    tracefs: str | None
    proc_connector: bool
    chromium: str | None
    playwright_version: str | None
    browsers: tuple[Browser, ...] = ()  # every Chromium found, usable or not (host.browsers)

    @property
    def bpftrace_usable(self) -> bool:
        return bool(self.bpftrace and self.tracefs and self.is_root)

    def problems(self, needs_browser: bool = False) -> list[str]:
        """Reasons a run cannot be made (empty when it can)."""
        found = []
        if not self.is_root:
            found.append("must run as root (cgroups, eBPF and network namespaces need it)")
        if needs_browser and not self.chromium:
            refused = "; ".join(b.problem for b in self.browsers if b.problem)
            found.append("no usable Chromium: install one (apt-get install chromium, or "
                         "playwright install chromium) or pass --browser PATH"
                         + (f" ({refused})" if refused else ""))
        if needs_browser and not self.playwright_version:
            found.append("the playwright Python package is not installed")
        return found

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cgroup"] = self.cgroup.to_dict()
        data["bpftrace_usable"] = self.bpftrace_usable
        return data


def _systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def _in_delegated_cgroup(layout: CgroupLayout) -> bool:
    """systemd marks a delegated cgroup with the trusted.delegate xattr (systemd >= 251)."""
    own = layout.parents.get("unified")
    if own is None:
        return False
    for path in (own, *own.parents):
        try:
            if os.getxattr(path, "trusted.delegate") == b"1":
                return True
        except OSError:
            continue
        if layout.unified_mount and path == layout.unified_mount:
            break
    return False


def _tracefs() -> str | None:
    for path in TRACEFS_DIRS:
        try:
            if (path / "events" / "sched").is_dir():
                return str(path)
        except OSError:  # not root: tracefs is not readable
            continue
    return None


def _proc_connector_usable(is_root: bool) -> bool:
    if not is_root:
        return False
    try:
        from pyroute2 import ProcEventSocket  # noqa: F401
    except ImportError:
        return False
    return True


def _playwright_version() -> str | None:
    try:
        return metadata.version("playwright")
    except metadata.PackageNotFoundError:
        return None


def discover(force_mode: str | None = None) -> HostFacts:
    """Read the host's facts; ``force_mode`` steps the cgroup mode down (for tests and users)."""
    try:
        layout = discover_layout(force_mode or os.environ.get("SANDBOX_CGROUP_MODE") or None)
    except ValueError as exc:
        raise HarnessError(str(exc)) from exc
    is_root = os.geteuid() == 0
    browsers = tuple(candidates())
    chromium = next((b.path for b in browsers if b.problem is None), None)
    if os.environ.get("SANDBOX_CHROMIUM") and browsers[0].problem:
        chromium = None  # asked for that one: no silent fallback
    return HostFacts(
        cgroup=layout,
        is_root=is_root,
        hostname=platform.node(),
        kernel=platform.release(),
        systemd_pid1=_systemd_is_pid1(),
        in_delegated_cgroup=_in_delegated_cgroup(layout),
        bpftrace=shutil.which("bpftrace"),
        tracefs=_tracefs(),
        proc_connector=_proc_connector_usable(is_root),
        chromium=chromium,
        playwright_version=_playwright_version(),
        browsers=browsers,
    )
