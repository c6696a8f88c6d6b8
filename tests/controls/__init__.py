"""Positive-control workloads for the tracer and verifier tests (small scripts that really
orphan, escape, leave files or start a short-lived child) and a run context to host them."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.host import HostFacts, Slice, open_slice
from sandbox.host.isolation import PrivateFs, RunUser, allocate_user, release_user, uid_pids
from sandbox.host.slice import marked_pids
from sandbox.workloads.launcher import expose_environment

CONTROLS = Path(__file__).resolve().parent


def control(name: str, *args: str) -> list[str]:
    """argv running the control script ``name`` with the test's Python."""
    return [sys.executable, str(CONTROLS / f"{name}.py"), *args]


@dataclass
class ControlRun:
    slice_: Slice
    run_dir: Path
    user: RunUser
    private_fs: PrivateFs

    @property
    def env(self) -> dict[str, str]:
        """A root workload's environment without private mounts: TMPDIR and HOME in the run
        directory."""
        return {**os.environ, "TMPDIR": str(self.run_dir / "tmp"),
                "HOME": str(self.run_dir / "home")}

    def spawn(self, argv: list[str], *, root: bool = False, **kwargs) -> subprocess.Popen:
        """Start ``argv`` as a run starts its workload: in the slice, with the private /tmp
        and /dev/shm, as the run's own UID (``root``: as root, to escape)."""
        env = {**os.environ, "TMPDIR": "/tmp", "HOME": str(self.run_dir / "home")}
        return self.slice_.spawn(argv, env=env, user=None if root else self.user,
                                 before_exec=self.private_fs.enter, **kwargs)


@contextlib.contextmanager
def control_run(facts: HostFacts, tmp_path: Path) -> Iterator[ControlRun]:
    """A fresh slice and run directory; whatever happens, every process carrying the run's
    marker is killed and the slice removed afterwards."""
    run_id = f"ctl-{secrets.token_hex(4)}"
    run_dir = tmp_path / run_id
    for sub in ("tmp", "home"):
        (run_dir / sub).mkdir(parents=True)
    user = allocate_user(run_id)
    private_fs = PrivateFs(f"sandbox-{run_id}", 64 * 2**20).create(user)
    expose_environment(private_fs)  # a checkout under /tmp: the run's /tmp would hide it
    private_fs.expose(Path(__file__).parent)  # these control scripts
    slice_ = open_slice(run_id, facts.cgroup)
    slice_.create()
    try:
        yield ControlRun(slice_, run_dir, user, private_fs)
    finally:
        for pid in marked_pids(run_id) | uid_pids(user.uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        slice_.teardown()
        private_fs.remove()
        release_user(user)
