"""Positive-control workloads for the tracer and verifier tests (small scripts that really
orphan, escape, leave files or start a short-lived child) and a run context to host them."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.host import HostFacts, Slice, open_slice
from sandbox.host.slice import marked_pids

CONTROLS = Path(__file__).resolve().parent


def control(name: str, *args: str) -> list[str]:
    """argv running the control script ``name`` with the test's Python."""
    return [sys.executable, str(CONTROLS / f"{name}.py"), *args]


@dataclass
class ControlRun:
    slice_: Slice
    run_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The workload's environment: private TMPDIR and HOME in the run directory."""
        return {**os.environ, "TMPDIR": str(self.run_dir / "tmp"),
                "HOME": str(self.run_dir / "home")}


@contextlib.contextmanager
def control_run(facts: HostFacts, tmp_path: Path) -> Iterator[ControlRun]:
    """A fresh slice and run directory; whatever happens, every process carrying the run's
    marker is killed and the slice removed afterwards."""
    run_id = f"ctl-{secrets.token_hex(4)}"
    run_dir = tmp_path / run_id
    for sub in ("tmp", "home"):
        (run_dir / sub).mkdir(parents=True)
    slice_ = open_slice(run_id, facts.cgroup)
    slice_.create()
    try:
        yield ControlRun(slice_, run_dir)
    finally:
        for pid in marked_pids(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        slice_.teardown()
