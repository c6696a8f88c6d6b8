"""Where the memory goes: every process of the slice by role, summed per role into
``roles.jsonl``: process count, open file descriptors, threads and RSS (``/proc/PID/statm``)
every 2 s (cheap); PSS, USS and RSS from ``/proc/PID/smaps_rollup`` every 10 s (dear).

Roles, stable across pid churn: Chromium's ``browser``, ``renderer``, ``gpu``, ``network``
(the network service), ``utility``, ``zygote``, ``crashpad``; the Playwright ``driver``
(node); the ``script`` that drives it (python, or the run's command); ``other``.

A memory sweep costs about 2 ms per Chromium process (smaps_rollup walks every mapping), a
count sweep about 0.1 ms per process; the sampler keeps its CPU at most
:data:`MAX_CPU_SHARE` of one core by waiting longer when a sweep was dear.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sandbox import rundir
from sandbox.model.role_sweep import RoleSweep, RoleTotals

log = logging.getLogger("sandbox.sampler")

DEFAULT_INTERVAL_S = 10.0
MAX_CPU_SHARE = 0.01
ROLES = ("browser", "renderer", "gpu", "network", "utility", "zygote", "crashpad", "driver",
         "script", "other")
COUNT_INTERVAL_S = 2.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
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


def _statm_rss(pid: int) -> int:
    """Resident set size in bytes from /proc/PID/statm (a counter: no page-table walk)."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def _stat(pid: int) -> tuple[int, int]:
    """(threads, start time in clock ticks) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[17]), int(fields[19])


class RoleCache:
    """Each process's role, read once per process (pid and start time)."""

    def __init__(self) -> None:
        self._roles: dict[int, tuple[int, str]] = {}

    def role(self, pid: int, started: int, is_main: bool) -> str:
        known = self._roles.get(pid)
        if known is None or known[0] != started:
            known = self._roles[pid] = (started, classify(_cmdline(pid), is_main))
        return known[1]

    def forget_all_but(self, pids: set[int]) -> None:
        for pid in set(self._roles) - pids:
            del self._roles[pid]


def sweep(pids: Iterable[int], main_pids: set[int], *, memory: bool = True,
          cache: RoleCache | None = None) -> dict[str, RoleTotals]:
    """Per-role sums over ``pids`` (``memory``: PSS, USS and RSS from smaps_rollup, the dear
    part; else RSS from statm); processes that vanish mid-read are skipped."""
    cache = cache or RoleCache()
    roles: dict[str, RoleTotals] = {}
    seen = set()
    for pid in pids:
        try:
            threads, started = _stat(pid)
            role = cache.role(pid, started, pid in main_pids)
            process = RoleTotals(processes=1, fds=len(os.listdir(f"/proc/{pid}/fd")),
                                 threads=threads)
            if memory:
                process.pss, process.uss, process.rss = _memory(pid)
            else:
                process.rss = _statm_rss(pid)
        except (OSError, ValueError, IndexError):
            continue
        seen.add(pid)
        roles.setdefault(role, RoleTotals()).add(process)
    cache.forget_all_but(seen)
    return roles


class RoleSampler:
    """Sweeps a slice's processes on a background thread: counts (processes, fds, threads)
    every ``count_interval_s``, memory too every ``interval_s``."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S,
                 count_interval_s: float = COUNT_INTERVAL_S,
                 max_cpu_share: float = MAX_CPU_SHARE) -> None:
        self.interval_s = interval_s
        self.count_interval_s = min(count_interval_s, interval_s)
        self.max_cpu_share = max_cpu_share
        self.sweeps = 0
        self.cpu_s = 0.0
        self.error: str | None = None
        self.totals: dict[str, int] = {}  # the last sweep's fds and threads, all roles
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
        return {"file": rundir.ROLES, "interval_s": self.interval_s,
                "count_interval_s": self.count_interval_s, "sweeps": self.sweeps,
                "cpu_s": round(self.cpu_s, 4), "error": self.error}

    def _run(self, pids: Callable[[], Iterable[int]], main_pids: Callable[[], set[int]],
             out_path: Path, t0: float) -> None:
        try:
            out = open(out_path, "ab", opener=rundir.private_opener)  # noqa: SIM115
        except OSError as exc:
            self.error = f"cannot write {out_path}: {exc.strerror or exc}"
            return
        cache = RoleCache()
        last_memory = -math.inf
        with out:
            while True:
                cpu, now = time.thread_time(), time.monotonic()
                memory = now - last_memory >= self.interval_s - 1e-3
                roles = sweep(pids(), main_pids(), memory=memory, cache=cache)
                last_memory = now if memory else last_memory
                cost = time.thread_time() - cpu
                self.sweeps += 1
                self.cpu_s += cost
                record = RoleSweep(t=round(now - t0, 3), roles=roles)
                self.totals = {key: record.total(key) for key in ("fds", "threads")}
                if self.error is None:
                    try:
                        out.write(json.dumps(record.to_record(), separators=(",", ":")).encode()
                                  + b"\n")
                        out.flush()
                    except OSError as exc:  # a full disk: the run ends on the samples' error
                        self.error = f"cannot write {out_path}: {exc.strerror or exc}"
                if self._stop.wait(max(self.count_interval_s, cost / self.max_cpu_share)):
                    break
