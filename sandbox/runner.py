"""One run from start to verdict.

run directory -> slice -> tracer + sampler -> workload (placed in the slice before exec) ->
wait for the end (duration, workload exit, or Ctrl-C) -> verifier (orphans, escapes, files,
kill, remove) -> analysis -> reports -> exit code.

The CLI, MemoryLeakDetector and the pytest plugin all make their runs here; a test's body
(the plugin's workload) is forked into the slice before the watchers start and released once
they watch, and runs as the harness's user without a private /tmp (its fixtures live there).
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypedDict

from sandbox import logs, rundir
from sandbox.analysis.budget import parse_budget, too_short
from sandbox.analysis.quick import RecentSlope
from sandbox.config import RunConfig, env_values
from sandbox.errors import HarnessError
from sandbox.host import HostFacts, Slice, cleanup_stale, discover, open_slice
from sandbox.host.browsers import choose
from sandbox.host.isolation import (
    AREAS,
    IsolationError,
    PrivateFs,
    RunUser,
    allocate_user,
    named_user,
    release_user,
    uid_pids,
)
from sandbox.limits import resolve as resolve_limits
from sandbox.model.run_info import RunInfo
from sandbox.progress import RunProgress, Status
from sandbox.rundir import FILE_FORMATS, make_run_dir, write_json
from sandbox.sampler import ticker
from sandbox.sampler.settle import SettleChannel
from sandbox.untrusted import shown
from sandbox.workloads.environment import driver_semi_space_mb
from sandbox.workloads.preflight import check_command

if TYPE_CHECKING:
    from sandbox.analysis.result import AnalysisResult
    from sandbox.decision import DecisionWatch
    from sandbox.host.forked import ForkedProcess
    from sandbox.model.cleanup import CleanupReport
    from sandbox.tracer.base import Tracer
    from sandbox.workloads.launcher import Workload

log = logging.getLogger("sandbox.runner")

STARTUP_ALLOWANCE_S = 30.0
ENDED_BY_ITSELF = "workload exited"
#: what signal.signal takes and returns
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _LaunchArgs(TypedDict):
    """The arguments every workload launcher takes alike."""

    user: RunUser | None
    private_fs: PrivateFs | None
    log_cap: int
    passed_env: dict[str, str]
    inherit_env: bool
    settle_fd: int | None


def workload_exit(returncode: int | None, by_itself: bool) -> dict:
    """The workload's own end: exit status or signal, and whether it ended by itself (a
    non-zero status is then a finding) or was stopped by the harness."""
    sig = signal.Signals(-returncode).name if returncode is not None and returncode < 0 \
        and -returncode in signal.valid_signals() else None
    return {"returncode": returncode, "signal": sig,
            "ended_by": "itself" if by_itself else "harness"}


@dataclass
class RunOutcome:
    run_dir: Path
    exit_code: int
    summary: str
    report: dict
    info: RunInfo  # run.json
    cleanup: CleanupReport | None  # None: the run ended before its verifier
    result: AnalysisResult  # the verdict every reader of the run directory reaches


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class StopFlag:
    """Set by SIGINT/SIGTERM so the run ends early and still verifies, analyses and reports."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self._previous: dict[int, SignalHandler] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.reason = signal.Signals(signum).name
        log.warning("received %s: ending the run early; verifying and reporting", self.reason)
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_host(config: RunConfig, facts: HostFacts) -> None:
    if problems := facts.problems(needs_browser=config.workload == "screenshot"):
        raise HarnessError(problems[0])


class Run:
    """The moving parts of one run, started and stopped in order."""

    def __init__(self, config: RunConfig, facts: HostFacts, show_progress: bool,
                 body: Callable[[], None] | None = None) -> None:
        from sandbox.sampler import MemoryProfiler
        from sandbox.verifier import ResourceCleanupVerifier

        self.config = config
        self.facts = facts
        self.show_progress = show_progress
        self.body = body
        self.run_id = new_run_id()
        self.run_dir = make_run_dir(config.runs_dir, config.label)
        self.meta = RunInfo(run_id=self.run_id, formats=FILE_FORMATS, config=config,
                            host=facts.to_dict(), started=time.time(),
                            workload=config.workload)
        self.profiler = MemoryProfiler(config.sample_interval, config.alert_threshold_mb,
                                       role_interval=config.role_interval)
        self.verifier = ResourceCleanupVerifier(
            temp_dir_prefix=config.temp_dir_prefix, grace_s=config.grace_s,
            keep_escapes=config.keep_escapes)
        self.tracer: Tracer | None = None
        #: the settle-point socket (docs/settle-points.md); a test's body has none
        self.settle = SettleChannel(self.profiler.sample_now) if body is None else None
        self.workload: Workload | None = None
        self.cleanup: CleanupReport | None = None
        self.user: RunUser | None = None
        self.private_fs: PrivateFs | None = None
        self.t0 = time.monotonic()
        self.stopped_by: str | None = None
        self.decision: DecisionWatch | None = None
        if config.until_decided:  # it judges the run as it goes: the analysis loads now
            from sandbox.decision import DecisionWatch

            self.decision = DecisionWatch(config, self.run_dir)
        self.meta.decision = self.decision.to_dict() if self.decision else None
        self._recent_slope = RecentSlope()  # the progress line's, over the last minute

    def save_meta(self) -> None:
        if self.run_dir.exists():
            write_json(self.run_dir / rundir.RUN, self.meta.to_dict())

    def discard_if_empty(self) -> None:
        """A run that failed before its first sample leaves no run directory behind."""
        samples = self.run_dir / rundir.SAMPLES
        if not (samples.exists() and samples.stat().st_size):
            shutil.rmtree(self.run_dir, ignore_errors=True)  # fd-based: never follows links

    def execute(self) -> None:
        from sandbox.workloads.launcher import fork_callable

        limits, self.meta.limits = resolve_limits(
            self.config.memory_max, self.config.pids_max,
            has_cgroup=self.facts.cgroup.mode != "none")
        slice_ = open_slice(self.run_id, self.facts.cgroup, limits)
        self.user = self._allocate_user()
        if self.body is None:
            self.private_fs = PrivateFs(slice_.name, self.config.tmp_size,
                                        allow_userns=self.config.allow_userns)
            slice_.record.private_fs = str(self.private_fs.root)
            self.meta.private_tmp = {"areas": list(AREAS.values()),
                                     "size_bytes": self.config.tmp_size}
        slice_.record.uid = self.user.uid if self.user.dynamic else None
        slice_.record.run_dir = str(self.run_dir)
        self.meta.slice = {"name": slice_.name, "backend": slice_.backend}
        self.meta.user = self.user.to_dict()
        self.save_meta()
        self.verifier.capture_initial_state()
        reaper_stop = threading.Event()
        try:
            with StopFlag() as stop, slice_:
                if self.private_fs is not None:
                    self.private_fs.create(self.user)
                    self.meta.private_tmp = {**(self.meta.private_tmp or {}),
                                             **self.private_fs.describe()}
                forked: ForkedProcess | None = None
                workload: Workload | None = None
                if self.body is not None:  # forked before any thread of ours runs
                    workload, forked = fork_callable(slice_, self.body, self.run_dir,
                                                     log_cap=self.config.log_max)
                    self.workload = workload
                self.meta.slice = slice_.to_dict()
                reaper = threading.Thread(target=slice_.reap_continuously, args=(reaper_stop,),
                                          name="sandbox-reaper", daemon=True)
                reaper.start()
                try:
                    tracer = self._start_watchers(slice_)
                    if workload is None:
                        workload = self.workload = self._start_workload(slice_)
                        self.meta.env = {"inherited": self.config.inherit_env,
                                         "passed": sorted(env_values(self.config.env)),
                                         "names": workload.env_names,
                                         "node_semi_space_mb": workload.node_semi_space_mb}
                    elif forked is not None:
                        forked.release()
                    self._wait(stop, workload)
                    self.stopped_by = stop.reason or self.stopped_by
                    workload.stop(self.config.stop_timeout_s)
                    self.meta.workload_end_t = round(time.monotonic() - self.t0, 3)
                    self.meta.workload_returncode = workload.proc.returncode
                    self.meta.workload_exit = workload_exit(
                        workload.proc.returncode, self.stopped_by == ENDED_BY_ITSELF)
                    tracer.stop()  # flushes events.jsonl; the verifier reads what it saw
                    if (hits := slice_.pids_limit_hits()) is not None:  # before teardown
                        self.meta.limits["pids_max"]["hits"] = hits
                    self.cleanup = self.verifier.verify(
                        slice_, run_dir=self.run_dir, main=workload.proc,
                        tracer=tracer, user=self.user, private_fs=self.private_fs)
                    if self.private_fs is not None:  # what the IPC listing could not check
                        self.meta.private_tmp = {**(self.meta.private_tmp or {}),
                                                 **self.private_fs.describe()}
                finally:
                    if forked is not None:
                        forked.release(run=False)  # no-op once released
                    reaper_stop.set()
                    reaper.join()
                    self._stop_watchers()
        finally:
            self._release()

    def _allocate_user(self) -> RunUser:
        """The run's own UID, or ``--user NAME``; root for the escape injection (only root
        can leave a cgroup) and for a test's body (it runs as the harness's user)."""
        if self.body is not None:
            return RunUser(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name,
                           dynamic=False)
        if self.config.user:
            return named_user(self.config.user)
        if "escape" in self.config.inject:
            return RunUser(0, 0, "root", dynamic=False)
        return allocate_user(self.run_id)

    def _release(self) -> None:
        """Unmount the private tmpfs and give the UID back once nothing runs as it (a kept
        escape keeps it: ``sandbox cleanup`` releases it later)."""
        if self.settle is not None:  # its fds, also of a run that failed before its watchers
            self.settle.stop()
        if self.private_fs is not None and self.private_fs.mounted:
            try:
                self.private_fs.remove()
            except IsolationError as exc:
                log.error("%s", exc)
        if self.user is not None and self.user.dynamic:
            if uid_pids(self.user.uid):
                log.warning("processes of UID %d are still alive: the UID stays taken until "
                            "they are gone and sandbox cleanup runs", self.user.uid)
            else:
                release_user(self.user)

    def _start_watchers(self, slice_: Slice) -> Tracer:
        """Start the tracer, the sampler and the settle channel; returns the tracer."""
        from sandbox.sampler.profiler import tmp_usage
        from sandbox.tracer import start_tracer

        self.t0 = time.monotonic()
        self.tracer = tracer = start_tracer(slice_, self.run_dir / rundir.EVENTS,
                                            backend=self.config.tracer, facts=self.facts,
                                            t0=self.t0, events_max=self.config.events_max)
        tmp = self.private_fs.usage if self.private_fs is not None else \
            functools.partial(tmp_usage, self.run_dir / "tmp")
        self.profiler.start(slice_, self.run_dir / rundir.SAMPLES, tmp_usage=tmp, t0=self.t0)
        if self.settle is not None:
            self.settle.start()
        self.meta.backend = {
            "cgroup": slice_.backend,
            "sampler": "cgroup" if slice_.has_cgroup else "psutil",
            "c_ticker": ticker.AVAILABLE,  # the high-rate fast path (docs/run-directory.md)
            "tracer": tracer.to_dict(),
        }
        self.save_meta()
        return tracer

    def _stop_watchers(self) -> None:
        if self.settle is not None:
            self.settle.stop()
            self.meta.settle = self.settle.to_dict()
        self.profiler.stop()
        if self.profiler.roles is not None:
            self.meta.roles = self.profiler.roles.to_dict()
        if self.tracer is not None:
            self.tracer.stop()
            if self.meta.backend is not None:
                self.meta.backend["tracer"] = self.tracer.to_dict()
        if self.workload is not None:
            self.workload.close()
            self.meta.workload_log = self.workload.log.to_dict()

    def _start_workload(self, slice_: Slice) -> Workload:
        from sandbox.workloads.launcher import launch_command, launch_screenshot
        from sandbox.workloads.screenshot.spec import ScreenshotSpec

        config = self.config
        passed = env_values(config.env)
        common = _LaunchArgs(user=self.user, private_fs=self.private_fs, log_cap=config.log_max,
                             passed_env=passed, inherit_env=config.inherit_env,
                             settle_fd=self.settle.child_fd if self.settle else None)
        if config.command:
            workload = launch_command(slice_, config.command, self.run_dir, cwd=Path.cwd(),
                                      network=config.network or "host", **common)
            self._handed_settle()
            return workload
        try:
            spec = ScreenshotSpec.for_run(config, chromium=self.facts.chromium,
                                          clock_origin=self.t0).validate()
        except ValueError as exc:
            raise HarnessError(str(exc)) from exc
        workload = launch_screenshot(slice_, spec, self.run_dir, **common)
        self._handed_settle()
        return workload

    def _handed_settle(self) -> None:
        """The workload holds its end of the settle socket: the harness's copy is closed."""
        if self.settle is not None:
            self.settle.started_workload()

    def _disk_error(self) -> str | None:
        """Why the run's files can no longer be written (a full disk), if so."""
        return self.profiler.write_error or (self.workload.log.error if self.workload else None)

    def _wait(self, stop: StopFlag, workload: Workload) -> None:
        """Until the duration is over, the workload ended, or a signal came."""
        start = time.monotonic()
        duration = self.config.duration_s
        # The screenshot workload counts its duration from its first operation and stops by
        # itself; the browser's start-up (1-2 s, more on a loaded host) comes on top.
        deadline = duration + (STARTUP_ALLOWANCE_S if self.config.workload == "screenshot"
                               else 0)
        with RunProgress(f"{self.config.label}", enabled=self.show_progress) as progress:
            while not stop.event.is_set():
                elapsed = time.monotonic() - start
                if elapsed >= deadline:
                    self.stopped_by = "duration"
                    break
                if workload.proc.poll() is not None:
                    self.stopped_by = ENDED_BY_ITSELF
                    break
                if self._decided():
                    self.stopped_by = "decided"
                    break
                if error := self._disk_error():
                    log.error("%s: ending the run", error)
                    self.stopped_by = "disk full"
                    self.meta.disk_error = error
                    if freed := workload.log.make_room():
                        log.warning("cut workload.log by %d bytes to make room for the "
                                    "run's records", freed)
                    break
                if progress.enabled:
                    progress.update(self._status(elapsed, duration, workload))
                stop.event.wait(0.25)

    def _decided(self) -> bool:
        """An --until-decided run's look, when one is due: whether the verdict is decided."""
        if self.decision is None or not self.decision.due(now := time.monotonic() - self.t0):
            return False
        decided = self.decision.look(now)
        self.meta.decision = self.decision.to_dict()
        return decided

    def _status(self, elapsed: float, duration: float, workload: Workload) -> Status:
        snap = self.profiler.latest()
        ws = snap.working_set if snap and snap.working_set is not None else (
            snap.memory_current if snap else None)
        return Status(
            elapsed_s=elapsed, duration_s=duration,
            operations=workload.operations, failed=workload.failed,
            working_set_mb=ws / 2**20 if ws is not None else None,
            slope_mb_s=self._recent_slope.add(elapsed, ws / 2**20 if ws is not None else None),
        )


def _save_or_log(the_run: Run) -> None:
    """Save run.json; a full disk is logged (the run is then judged incomplete), not raised."""
    try:
        the_run.save_meta()
    except OSError as exc:
        log.error("cannot write run.json: %s", exc.strerror or exc)


def run(config: RunConfig, *, show_progress: bool = True, facts: HostFacts | None = None,
        body: Callable[[], None] | None = None) -> RunOutcome:
    """Make one run and judge it; ``body``: the test's body when ``config.test`` is set.
    Raises HarnessError when the run cannot be made."""
    from sandbox.workloads.network import cleanup_stale_namespaces

    config.validate()
    if config.command:
        check_command(config.command, config.user)
    if (body is None) != (config.test is None):
        raise HarnessError("a test run needs its body, and a body its test's name")
    facts = facts or discover(config.cgroup_mode)
    if config.browser and (browser := choose(config.browser)) is not None:
        facts = replace(facts, chromium=browser.path)
    _check_host(config, facts)
    for cleaned in cleanup_stale():
        log.warning("removed stale slice %s (killed %d processes)", cleaned.name,
                    len(cleaned.killed))
    for namespace in cleanup_stale_namespaces():
        log.warning("removed stale network namespace %s", namespace)
    try:
        the_run = Run(config, facts, show_progress, body)
    except OSError as exc:
        raise HarnessError(f"cannot make a run directory in {config.runs_dir}: "
                           f"{exc.strerror or exc}") from exc
    handler = logs.add_run_log(the_run.run_dir)
    if config.test is None and (short := too_short(
            config.workload, config.duration_s, parse_budget(config.budget),
            config.operations_per_minute if config.workload == "screenshot" else None,
            driver_semi_space_mb(config))):
        log.warning("%s", short)  # the run can be made, not judged: before it starts
    if config.test:
        log.info("run %s: test %s, slice backend %s", the_run.run_id, shown(config.test),
                 facts.cgroup.mode)
    else:
        log.info("run %s: %s workload, %.0f s, slice backend %s", the_run.run_id,
                 config.workload, config.duration_s, facts.cgroup.mode)
    try:
        try:
            the_run.execute()
        except HarnessError:
            the_run.discard_if_empty()
            raise
        finally:
            the_run.meta.ended, the_run.meta.stopped_by = time.time(), the_run.stopped_by
            _save_or_log(the_run)
        # The analysis and reports load now: the harness carried none of scipy, statsmodels
        # and pandas (~100 MB) while the run lasted.
        from sandbox.analysis.core import analyze
        from sandbox.report import write_all
        from sandbox.report.github import publish
        from sandbox.report.metrics import export
        from sandbox.runreader import read_run

        result = analyze(read_run(the_run.run_dir))
        try:
            write_all(result, the_run.run_dir)
        except OSError as exc:
            raise HarnessError(f"cannot write the reports in {the_run.run_dir}: "
                               f"{exc.strerror or exc}") from exc
        if body is None:  # a test's findings are the plugin's to report
            publish(result)
        export(result, textfile=config.metrics_textfile, pushgateway=config.pushgateway)
        log.info("run %s ended (%s): exit code %d", the_run.run_id, the_run.stopped_by,
                 result.exit_code)
    finally:
        logs.remove_run_log(handler)
    the_run.meta.exit_code = result.exit_code
    _save_or_log(the_run)
    from sandbox.report import render_text
    from sandbox.report.json_report import to_dict

    return RunOutcome(the_run.run_dir, result.exit_code, render_text(result), to_dict(result),
                      the_run.meta, the_run.cleanup, result)
