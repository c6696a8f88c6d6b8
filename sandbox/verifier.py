"""ResourceCleanupVerifier: at teardown, find what a run left behind and clean it up.

Order: state before (at start) -> orphans after the workload's main process ended and a grace
period passed (decided by slice membership, not parent pid) -> escapes (processes of the run
alive outside the slice, critical) -> leftover files -> kill the escapes, then the slice; remove
the files; check nothing of the run remains -> state after. The result goes to cleanup.json.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
from pathlib import Path

from sandbox.analysis.cleanup_policy import (
    FILE_ALERT_S,
    ORPHAN_ALERT_S,
    cleanup_alerts,
    cleanup_issues,
)
from sandbox.host.forked import ForkedProcess
from sandbox.host.isolation import PrivateFs, RunUser
from sandbox.host.ownership import Runs
from sandbox.host.slice import MARKER_ENV, Slice, SliceError
from sandbox.model.cleanup import CleanupReport, ResourceState
from sandbox.rundir import CLEANUP, write_json
from sandbox.teardown import act, files, processes, remains, state
from sandbox.tracer.base import Tracer
from sandbox.tracer.target import SliceTarget

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0
KNOWN_PATTERNS = ("playwright_chromiumdev_profile-*", "playwright-artifacts-*",
                  "org.chromium.Chromium.*", ".org.chromium.Chromium.*")
TMP = Path("/tmp")
SHM = Path("/dev/shm")


class ResourceCleanupVerifier:
    """Verifies a run's teardown. Call ``capture_initial_state()`` before the workload starts
    and ``verify(slice_, ...)`` once its main process has ended (or was stopped)."""

    def __init__(self, temp_dir_prefix: str = "playwright", *,
                 grace_s: float = DEFAULT_GRACE_S, orphan_alert_s: float = ORPHAN_ALERT_S,
                 file_alert_s: float = FILE_ALERT_S, keep_escapes: bool = False,
                 remove_files: bool = True, tmp_dir: Path = TMP, shm_dir: Path = SHM) -> None:
        if grace_s < 0:
            raise ValueError(f"grace period must be >= 0 s, got {grace_s}")
        self.temp_dir_prefix = temp_dir_prefix
        self.grace_s = grace_s
        self.orphan_alert_s = orphan_alert_s
        self.file_alert_s = file_alert_s
        self.keep_escapes = keep_escapes
        self.remove_files = remove_files
        self.tmp_dir = Path(tmp_dir)
        self.shm_dir = Path(shm_dir)
        self.patterns = (f"{temp_dir_prefix}*", *KNOWN_PATTERNS) if temp_dir_prefix \
            else KNOWN_PATTERNS
        self.initial_state: ResourceState | None = None
        self.started: float | None = None

    def capture_state(self) -> ResourceState:
        """The host's resources now."""
        return state.capture_state(self.tmp_dir, self.shm_dir, self.patterns)

    def capture_initial_state(self) -> ResourceState:
        """The state before the run; also marks the run's start for "created during the run"."""
        self.started = time.time()
        self.initial_state = self.capture_state()
        return self.initial_state

    # -- the teardown sequence -------------------------------------------------------------
    def verify(self, slice_: Slice, *, run_dir: Path | None = None,
               main: subprocess.Popen | ForkedProcess | None = None,
               tracer: Tracer | None = None,
               user: RunUser | None = None, private_fs: PrivateFs | None = None
               ) -> CleanupReport:
        """Find orphans, escapes and leftover files; tear the slice down; clean up; check.
        Writes ``<run_dir>/cleanup.json`` when ``run_dir`` is given."""
        started = self.started if self.started is not None else time.time()
        issues: list[str] = []
        if main is not None and main.poll() is None:
            issues.append(f"the workload's main process {main.pid} was still running at "
                          "teardown; the verifier sent it SIGTERM")
            main.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                main.wait(self.grace_s)
        target = SliceTarget.of(slice_)
        orphans, waited = processes.orphans(slice_, main, self.grace_s)
        runs = Runs()
        forged = processes.markers_carried(slice_, tracer, user, runs)
        escapes, identities, framed = processes.escapes(slice_, target, tracer, user, runs)
        forged += framed
        issues += [f"process {f['pid']} ({f['comm']}) of this run carried run "
                   f"{f['marker']}'s marker {MARKER_ENV}: it was not attributed to that run"
                   for f in forged if f["marker"] != slice_.run_id]
        oom_kills = slice_.oom_kills()
        shmem = slice_.memory_stat().get("shmem")  # tmpfs still charged to the slice

        # Escapes first: on hybrid hosts one still sits in the slice's v1 directories.
        if self.keep_escapes:
            for record in escapes:
                slice_.evict(record.pid)
        else:
            act.kill_escapes(escapes, identities)
        teardown_error = None
        try:
            survivors = slice_.teardown()
        except SliceError as exc:
            survivors, teardown_error = set(), str(exc)
        # Files after every process is gone: nothing can add or swap one any more.
        leftovers, home = files.leftover_files(run_dir, started, user, private_fs)
        if self.remove_files:
            teardown_error = act.remove_files(run_dir, leftovers + home, private_fs) \
                or teardown_error
        after = remains.after_teardown(
            slice_, [identities[e.pid] for e in escapes], survivors, user, private_fs, runs,
            files_removed=self.remove_files, escapes_kept=self.keep_escapes)
        after["teardown_error"] = teardown_error
        after["timing"] = slice_.teardown_timing
        after["clean"] = after["clean"] and teardown_error is None

        alerts = cleanup_alerts(orphans, leftovers, orphan_alert_s=self.orphan_alert_s,
                                file_alert_s=self.file_alert_s)
        issues += cleanup_issues(orphans, escapes, leftovers, alerts, after, self.grace_s)
        report = CleanupReport(
            orphans=orphans, escapes=escapes, leftover_files=leftovers, home_files=home,
            shmem_charged_bytes=shmem, oom_kills=oom_kills, alerts=alerts,
            after_teardown=after, grace_s=self.grace_s, waited_s=round(waited, 3),
            tracer=tracer.to_dict() if tracer else None,
            state_before=self.initial_state, state_after=self.capture_state(), issues=issues,
            forged_markers=forged)
        if run_dir is not None:
            try:
                write_json(Path(run_dir) / CLEANUP, report.to_dict())
            except OSError as exc:  # a full disk: the run is then judged incomplete
                log.error("cannot write cleanup.json: %s", exc.strerror or exc)
        return report
