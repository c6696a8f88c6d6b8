"""One run from start to verdict: run directory, slice, workload, teardown."""

from __future__ import annotations

import logging
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sandbox.errors import HarnessError
from sandbox.host import HostFacts, Limits, SliceError, cleanup_stale, discover, open_slice
from sandbox.rundir import make_run_dir, write_json

log = logging.getLogger("sandbox.runner")


@dataclass
class RunConfig:
    """Everything that defines a run; stored in run.json."""

    command: list[str] = field(default_factory=list)
    scenario: str | None = None
    duration_s: float = 10.0
    runs_dir: Path = Path("runs")
    memory_max: int | None = None
    pids_max: int | None = None
    cgroup_mode: str | None = None
    stop_timeout_s: float = 5.0

    @property
    def label(self) -> str:
        if self.scenario:
            return self.scenario
        return Path(self.command[0]).name if self.command else "run"


@dataclass
class RunOutcome:
    run_dir: Path
    exit_code: int
    workload_returncode: int | None


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class StopFlag:
    """Set by SIGINT/SIGTERM so the run ends early and still tears down and reports."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        log.warning("received %s: ending the run early", signal.Signals(signum).name)
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _stop_workload(proc: subprocess.Popen, timeout: float) -> None:
    """Ask the workload's main process to end (SIGTERM), then leave the rest to the slice."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("workload did not end within %.0f s of SIGTERM", timeout)


def run(config: RunConfig, facts: HostFacts | None = None) -> RunOutcome:
    """Make one run of a generic command workload in its own slice."""
    if not config.command:
        raise HarnessError("no command given: sandbox run [OPTIONS] -- CMD [ARGS...]")
    facts = facts or discover(config.cgroup_mode)
    if problems := facts.problems():
        raise HarnessError(problems[0])
    for cleaned in cleanup_stale():
        log.warning("removed stale slice %s (killed %d processes)", cleaned.name,
                    len(cleaned.killed))
    run_id = new_run_id()
    run_dir = make_run_dir(config.runs_dir, config.label)
    meta = {"run_id": run_id, "config": asdict(config), "host": facts.to_dict(),
            "started": time.time()}
    write_json(run_dir / "run.json", meta)
    limits = Limits(memory_max=config.memory_max, pids_max=config.pids_max)
    try:
        slice_ = open_slice(run_id, facts.cgroup, limits)
        with StopFlag() as stop, slice_:
            meta["slice"] = slice_.to_dict()
            meta["backend"] = {"cgroup": slice_.backend}
            write_json(run_dir / "run.json", meta)
            with open(run_dir / "workload.log", "wb") as out:
                proc = slice_.spawn(config.command, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + config.duration_s
            while proc.poll() is None and not stop.event.is_set():
                if time.monotonic() >= deadline:
                    break
                stop.event.wait(0.05)
            _stop_workload(proc, config.stop_timeout_s)
    except SliceError as exc:
        raise HarnessError(str(exc)) from exc
    meta.update(ended=time.time(), workload_returncode=proc.returncode, exit_code=0)
    write_json(run_dir / "run.json", meta)
    return RunOutcome(run_dir, 0, proc.returncode)
