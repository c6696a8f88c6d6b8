"""Fallback for hosts without a usable cgroup: sum the workload's process tree with psutil."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil

SOURCE = "psutil"
CAVEAT = ("no cgroup: memory_current is summed RSS and over-counts pages shared between "
          "processes; working_set is summed PSS; processes reparented out of the tree "
          "without the run's marker in their environment are missed")


class ProcessTreeReader:
    """Reads one sample from the processes ``pids()`` returns (re-evaluated every sample)."""

    source = SOURCE

    def __init__(self, pids: Callable[[], set[int]]) -> None:
        self._pids = pids
        self._procs: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():  # is_running also catches pid reuse
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def read(self) -> tuple[dict[str, Any], list[int]]:
        """(record of documented sample fields, pids counted)."""
        rss = anon = uss = pss = threads = fds = 0
        cpu = 0.0
        counted: list[int] = []
        wanted = self._pids()
        for pid in sorted(wanted):
            try:
                proc = self._process(pid)
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    mem = proc.memory_full_info()
                    times = proc.cpu_times()
                    n_threads = proc.num_threads()
                    n_fds = proc.num_fds()
            except (psutil.Error, OSError):
                continue
            rss += mem.rss
            anon += max(mem.rss - mem.shared, 0)
            uss += mem.uss
            pss += mem.pss
            threads += n_threads
            fds += n_fds
            cpu += times.user + times.system + times.children_user + times.children_system
            counted.append(pid)
        for gone in set(self._procs) - wanted:
            del self._procs[gone]
        record = {
            "memory_current": rss,
            "anon": anon,
            "file": None,
            "shmem": None,
            "inactive_file": None,
            "kernel": None,
            "working_set": pss,
            "peak": None,
            "pids_current": threads,
            "nprocs": len(counted),
            "cpu_usage_usec": int(cpu * 1e6),
            "oom": None,
            "oom_kill": None,
            "psi_some_avg10": None,
            "psi_full_avg10": None,
            "uss": uss,
            "pss": pss,
            "file_descriptors": fds,
            "tier": "full",
        }
        return record, counted

    def next_full(self) -> None:
        """Every psutil sample is full (the cgroup reader's interface)."""

    def close(self) -> None:
        self._procs.clear()
