"""Network isolation: a fresh network namespace per run (``sandbox-<run_id>``, made with
pyroute2) with only loopback up. The workload's child enters it before exec, so the browser
and the built-in site reach each other on 127.0.0.1 and nothing else."""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

from pyroute2 import IPRoute, netns

from sandbox.errors import HarnessError
from sandbox.host.registry import SLICE_PREFIX, load_records

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path(netns.NETNS_RUN_DIR)
# Resolved here, in the parent: the forked child only makes the one syscall.
_setns = ctypes.CDLL(None, use_errno=True).setns


class NetworkError(HarnessError):
    """The namespace could not be made or entered (a harness error, exit code 3)."""


class IsolatedNetwork:
    """One run's network namespace; a context manager that removes it at the end."""

    def __init__(self, run_id: str) -> None:
        self.name = f"{SLICE_PREFIX}{run_id}"
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def create(self) -> IsolatedNetwork:
        try:
            netns.create(self.name)
        except OSError as exc:
            raise NetworkError(f"cannot create network namespace {self.name}: "
                               f"{exc.strerror or exc}") from exc
        try:
            with IPRoute(netns=self.name, flags=0) as ipr:
                (lo,) = ipr.link_lookup(ifname="lo")
                ipr.link("set", index=lo, state="up")
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except Exception as exc:
            self.remove()
            raise NetworkError(f"cannot bring up loopback in {self.name}: {exc}") from exc
        return self

    def enter(self) -> None:
        """Move the calling process into the namespace: for ``Slice.spawn(before_exec=...)``,
        which runs it as root in the forked child, before exec and before dropping to the
        workload's user."""
        if self.fd is None or _setns(self.fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter network namespace {self.name}")

    def inode(self) -> int:
        """The namespace's identity, as in /proc/<pid>/ns/net."""
        return self.path.stat().st_ino

    def remove(self) -> None:
        """Unmount and unlink; the kernel frees the namespace when its last process is gone."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path.exists():
            with contextlib.suppress(FileNotFoundError):
                netns.remove(self.name)

    def __enter__(self) -> IsolatedNetwork:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def cleanup_stale_namespaces() -> list[str]:
    """Remove ``sandbox-*`` namespaces left by a dead harness: no live slice record of that
    name and no process inside. Returns the names removed."""
    live = {r.name for r in load_records() if r.harness_alive()}
    in_use = set(netns.ns_pids())
    removed = []
    for name in netns.listnetns():
        if name.startswith(SLICE_PREFIX) and name not in live and name not in in_use:
            with contextlib.suppress(FileNotFoundError):
                netns.remove(name)
                removed.append(name)
    return removed
