"""The slice without a cgroup (mode ``none``): a marked process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from sandbox.host.procid import is_alive
from sandbox.host.slice import Slice, marked_pids


class ProcessTreeSlice(Slice):
    """No cgroup: the spawned processes, their descendants and every process carrying the
    run's marker. Weakest guarantee: a daemon that clears its environment is lost."""

    backend = "none"

    def _create(self) -> None:
        return None

    def join(self) -> None:
        return None

    def _pids(self) -> set[int]:
        return marked_pids(self.run_id) | self._descendants()

    def _descendants(self) -> set[int]:
        found: set[int] = set()
        for proc in self.spawned:
            try:
                root = psutil.Process(proc.pid)
                if root.status() == psutil.STATUS_ZOMBIE:
                    continue
                found.add(root.pid)
                found |= {c.pid for c in root.children(recursive=True)}
            except psutil.Error:
                continue
        return found

    def _signal_all(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def kill(self) -> None:
        # Stop first so nothing forks between the listing and the kill, then kill the lot.
        for _ in range(3):
            self.freeze()
        self._signal_all(signal.SIGKILL)

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            alive = {p for p in self.pids() if is_alive(p)}
            if not alive:
                return True
            if time.monotonic() >= deadline:
                return False
            for pid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
