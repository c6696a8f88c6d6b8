"""Where the memory goes: every process of the slice by role, summed per role at a low rate
into ``roles.jsonl`` (PSS, USS and RSS from ``/proc/PID/smaps_rollup``, open file descriptors,
threads, process count).

Roles, stable across pid churn: Chromium's ``browser``, ``renderer``, ``gpu``, ``network``
(the network service), ``utility``, ``zygote``, ``crashpad``; the Playwright ``driver``
(node); the ``script`` that drives it (python, or the run's command); ``other``.

A sweep costs about 0.1-0.3 ms per process (three small /proc reads); the sampler keeps its
CPU at most :data:`MAX_CPU_SHARE` of one core by waiting longer when a sweep was dear.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("sandbox.sampler")

ROLE_FILE = "roles.jsonl"
DEFAULT_INTERVAL_S = 10.0
MAX_CPU_SHARE = 0.01
ROLES = ("browser", "renderer", "gpu", "network", "utility", "zygote", "crashpad", "driver",
         "script", "other")
FIELDS = ("processes", "pss", "uss", "rss", "fds", "threads")
_CHROME_TYPES = {"renderer": "renderer", "gpu-process": "gpu", "zygote": "zygote",
                 "crashpad-handler": "crashpad", "utility": "utility"}
_CHROME_NAMES = ("chromium", "chrome", "headless_shell", "chrome_crashpad_handler")


def classify(cmdline: list[str], is_main: bool = False) -> str:
    """The role of a process from its command line; ``is_main``: the run's own command."""
    if len(cmdline) == 1:  # Chromium rewrites its children's titles into one string
        cmdline = cmdline[0].split()
    if not cmdline:
        return "other"
    name = os.path.basename(cmdline[0])
    args = " ".join(cmdline[1:])
    if name == "chrome_crashpad_handler":
        return "crashpad"
    if name.startswith(_CHROME_NAMES) or "/chromium/" in cmdline[0]:
        kind = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--type=")), None)
        if kind is None:
            return "browser"
        if kind == "utility" and "NetworkService" in args:
            return "network"
        return _CHROME_TYPES.get(kind, "utility")
    if name == "node" and "playwright" in args:
        return "driver"
    if is_main or name.startswith("python"):  # python3, python3.11, ...
        return "script"
    return "other"


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]


def _memory(pid: int) -> tuple[int, int, int]:
    """(pss, uss, rss) in bytes from smaps_rollup."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
        for line in f:
            key, _, rest = line.partition(b":")
            if key in (b"Rss", b"Pss", b"Private_Clean", b"Private_Dirty"):
                values[key.decode()] = int(rest.split()[0]) * 1024
    return (values.get("Pss", 0), values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
            values.get("Rss", 0))


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[17])


def sweep(pids: Iterable[int], main_pids: set[int]) -> dict[str, dict[str, int]]:
    """Per-role sums over ``pids``; processes that vanish mid-read are skipped."""
    roles: dict[str, dict[str, int]] = {}
    for pid in pids:
        try:
            role = classify(_cmdline(pid), pid in main_pids)
            pss, uss, rss = _memory(pid)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            threads = _threads(pid)
        except (OSError, ValueError, IndexError):
            continue
        row = roles.setdefault(role, dict.fromkeys(FIELDS, 0))
        for key, value in zip(FIELDS, (1, pss, uss, rss, fds, threads), strict=True):
            row[key] += value
    return roles


class RoleSampler:
    """Sweeps a slice's processes every ``interval_s`` on a background thread."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S,
                 max_cpu_share: float = MAX_CPU_SHARE) -> None:
        self.interval_s = interval_s
        self.max_cpu_share = max_cpu_share
        self.sweeps = 0
        self.cpu_s = 0.0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pids: Callable[[], Iterable[int]], main_pids: Callable[[], set[int]],
              out_path: Path, t0: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(pids, main_pids, out_path, t0),
                                        name="sandbox-roles", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def to_dict(self) -> dict[str, Any]:
        return {"file": ROLE_FILE, "interval_s": self.interval_s, "sweeps": self.sweeps,
                "cpu_s": round(self.cpu_s, 4), "error": self.error}

    def _run(self, pids: Callable[[], Iterable[int]], main_pids: Callable[[], set[int]],
             out_path: Path, t0: float) -> None:
        try:
            out = open(out_path, "ab")  # noqa: SIM115 (closed below)
        except OSError as exc:
            self.error = f"cannot write {out_path}: {exc.strerror or exc}"
            return
        with out:
            while True:
                cpu = time.thread_time()
                record = {"t": round(time.monotonic() - t0, 3),
                          "roles": sweep(pids(), main_pids())}
                cost = time.thread_time() - cpu
                self.sweeps += 1
                self.cpu_s += cost
                if self.error is None:
                    try:
                        out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
                        out.flush()
                    except OSError as exc:  # a full disk: the run ends on the samples' error
                        self.error = f"cannot write {out_path}: {exc.strerror or exc}"
                wait = max(self.interval_s, cost / self.max_cpu_share)
                if self._stop.wait(wait):
                    break
