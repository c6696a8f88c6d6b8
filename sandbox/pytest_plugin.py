"""pytest plugin: ``@pytest.mark.sandbox(...)`` runs a test's body in a slice of its own and
fails the test on memory growth, orphaned processes, escapes or leftover temp files, in the
style of pytest-memray's ``limit_memory`` / ``limit_leaks``::

    @pytest.mark.sandbox(budget="100MB/h")
    def test_renderer_pool(): ...

Opt-in: ``pytest --sandbox`` (or ``sandbox = true`` in the ini file); without it marked tests
run as plain tests. Where no slice can be had (not root, no usable cgroup) each marked test
fails with the reason (a leak must never pass unseen), unless ``--sandbox-allow-unsandboxed``
runs it as a plain test, with a warning saying why. Each marked test is one run of the runner,
as ``sandbox run`` makes them (sandbox.runner.run): the body is its workload, forked into the
slice (so everything it starts is in the slice too; an ``async def`` body is run to completion
with asyncio) and run as the harness's user with its fixtures, TMPDIR in the run directory; the
run's sampler, tracer (``tracer=``, default the proc connector: it starts at once) and verifier
watch it, and the run is analysed and reported. The test fails on the verifier's orphans,
escapes and leftover files, on the run's memory verdict over its budget (the marker's
``budget``, else the default 0.1 MB/s; a test body's start-up, analysis.core: the verdict
``sandbox report`` gives the run directory) and on the marker's other memory limits
(analysis.marker_limits). A failed test's run directory (``sandbox report`` reads it) and
findings stay under ``--sandbox-dir`` (default ``.sandbox-pytest`` in the rootdir); the
terminal summary has a ``sandbox`` section. On a systemd host pytest is re-executed in a
delegated scope first, as ``sandbox run`` is. Growth is measured on anon memory and includes
the copy-on-write pages of the forked test process (usually a few MB).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from sandbox.analysis.marker_limits import MemoryLimits, memory_findings
from sandbox.rundir import SAMPLES

if TYPE_CHECKING:
    from sandbox.model.cleanup import CleanupReport, ProcessRecord

MARKER_HELP = (
    "sandbox(budget=None, max_growth_mb_per_s=None, max_growth_mb=None, max_memory_mb=None, "
    "allow_orphans=False, allow_leftover_files=False, sample_interval=0.05, grace_s=1.0, "
    "tracer='proc-connector'): "
    "run the test body in its own cgroup slice and fail it on a leak, an orphaned or escaped "
    "process, or leftover temp files"
)


@dataclass(frozen=True)
class SandboxLimits:
    budget: str | None = None  # "100MB/h", "0.1MB/s": the run's verdict (analysis.budget)
    max_growth_mb_per_s: float | None = None
    max_growth_mb: float | None = None
    max_memory_mb: float | None = None
    allow_orphans: bool = False
    allow_leftover_files: bool = False
    sample_interval: float = 0.05
    grace_s: float = 1.0
    tracer: str = "proc-connector"  # starts at once; ``auto``: eBPF where it can (slower)


@dataclass
class SandboxSession:
    """What the plugin knows for the whole session: whether slices can be had, where failed
    tests' samples go, and one line per marked test for the summary."""

    no_slice: str | None  # why marked tests run without a slice (None: they get one)
    keep_dir: Path
    allow_unsandboxed: bool = False  # no slice: run marked tests as plain tests, not fail
    lines: list[str] = field(default_factory=list)
    unguarded: int = 0


SESSION = pytest.StashKey[SandboxSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "sandbox: run marked tests in a cgroup slice of their own")
    group.addoption("--sandbox", action="store_true", default=False,
                    help="judge @pytest.mark.sandbox tests in slices of their own (root)")
    group.addoption("--sandbox-allow-unsandboxed", action="store_true", default=False,
                    help="where no slice can be had, run marked tests as plain tests (with a "
                         "warning) instead of failing them")
    group.addoption("--sandbox-dir", default=None, metavar="DIR",
                    help="keep failed sandbox tests' samples here (default .sandbox-pytest)")
    parser.addini("sandbox", type="bool", default=False,
                  help="judge @pytest.mark.sandbox tests (as --sandbox)")
    parser.addini("sandbox_dir", default=".sandbox-pytest",
                  help="where failed sandbox tests' samples are kept")


def _no_slice_reason(facts) -> str | None:
    if os.geteuid() != 0:
        return "not root: cgroups need root"
    if facts.cgroup.mode == "none":
        return f"no usable cgroup hierarchy ({facts.cgroup.reason})"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if not (config.getoption("sandbox", False) or config.getini("sandbox")):
        return
    from sandbox.host import discover
    from sandbox.host.systemd import ensure_delegated_scope

    facts = discover()
    reason = _no_slice_reason(facts)
    if reason is None:  # does not return when it re-executes pytest in a scope
        ensure_delegated_scope(facts, [sys.executable, "-m", "pytest",
                                       *config.invocation_params.args])
    keep = Path(config.getoption("sandbox_dir") or config.getini("sandbox_dir"))
    config.stash[SESSION] = SandboxSession(
        reason, config.rootpath / keep,
        allow_unsandboxed=config.getoption("sandbox_allow_unsandboxed", False))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is None:
        marked = sum(1 for item in terminalreporter.stats.get("passed", []) + terminalreporter
                     .stats.get("failed", []) if "sandbox" in getattr(item, "keywords", {}))
        if marked:
            terminalreporter.write_sep("=", "sandbox")
            terminalreporter.write_line(f"{marked} test(s) marked sandbox ran as plain tests: "
                                        "pass --sandbox to judge them in slices")
        return
    if not (session.lines or session.unguarded):
        return
    terminalreporter.write_sep("=", "sandbox")
    for line in session.lines:
        terminalreporter.write_line(line)
    if session.unguarded:
        terminalreporter.write_line(f"{session.unguarded} marked test(s) ran without a slice: "
                                    f"{session.no_slice}")


def _body(item: pytest.Function, outcome_path: Path) -> Callable[[], None]:
    """The test's body as the run's workload: runs it in the forked child (an ``async def``
    body to completion with asyncio) and leaves its outcome and end (Unix time) in
    ``outcome_path``."""

    def body() -> None:
        outcome = ("passed", "")
        try:
            funcargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
            if inspect.iscoroutinefunction(item.obj):
                asyncio.run(item.obj(**funcargs))
            else:
                item.obj(**funcargs)
        except pytest.skip.Exception as exc:
            outcome = ("skipped", str(exc))
        except BaseException:  # the child reports everything, the parent decides
            outcome = ("failed", traceback.format_exc())
        outcome_path.write_bytes(pickle.dumps((*outcome, time.time())))

    return body


def _body_memory(samples: dict[str, np.ndarray], body_end: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(t, MB) of the slice's anon memory (else its usage) while the body ran: samples up to
    ``body_end`` (Unix time; once the body's process is gone its memory is too)."""
    t, anon = samples.get("t"), samples.get("anon")
    if t is None or anon is None or np.all(np.isnan(anon)):
        anon = samples.get("memory_current")
    if t is None or anon is None:
        return np.empty(0), np.empty(0)
    keep = ~np.isnan(anon) & (samples["wall"] <= body_end)
    return t[keep], anon[keep] / 2**20


def _names(processes: list[ProcessRecord], most: int = 5) -> str:
    """``4242 (sleep 300), ...`` from the verifier's process records."""
    return ", ".join(f"{p.pid} ({' '.join(p.cmdline or [p.comm or '?'])[:60]})"
                     for p in processes[:most]) + (f" and {len(processes) - most} more"
                                                   if len(processes) > most else "")


def _cleanup_findings(cleanup: CleanupReport, limits: SandboxLimits) -> list[str]:
    """What the verifier found at the test's teardown, as the marker's limits allow."""
    findings = []
    if cleanup.orphans and not limits.allow_orphans:
        findings.append(f"orphaned processes left in the slice: {_names(cleanup.orphans)}")
    if cleanup.escapes:
        findings.append(f"processes escaped the slice: {_names(cleanup.escapes)}")
    if cleanup.leftover_files and not limits.allow_leftover_files:
        findings.append("temp files left behind: " + ", ".join(
            Path(f.path).name for f in cleanup.leftover_files[:10]))
    return findings


def _keep(run_dir: Path, session: SandboxSession, nodeid: str, findings: list[str]
          ) -> Path | None:
    """Move a failed test's run directory (``sandbox report`` reads it) and its findings
    under the session's keep directory."""
    target = session.keep_dir / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', nodeid)[-80:]}-" \
        f"{run_dir.name}"
    try:
        session.keep_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "findings.json").write_text(json.dumps({"test": nodeid,
                                                           "findings": findings},
                                                          indent=1) + "\n")
        shutil.move(str(run_dir), target)
    except OSError:
        return None
    return target


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker("sandbox")
    session = pyfuncitem.config.stash.get(SESSION, None)
    if marker is None or session is None:
        return None
    limits = SandboxLimits(**marker.kwargs)
    if session.no_slice and not session.allow_unsandboxed:
        session.lines.append(f"{pyfuncitem.nodeid}: not judged: {session.no_slice}")
        pytest.fail(f"sandbox: {session.no_slice}: the test cannot be judged without its slice "
                    "(--sandbox-allow-unsandboxed runs it as a plain test)", pytrace=False)
    if session.no_slice:
        session.unguarded += 1
        pyfuncitem.warn(pytest.PytestWarning(
            f"sandbox: {session.no_slice}; the test ran without its slice"))
        return None
    from sandbox.config import MAX_DURATION_S, RunConfig
    from sandbox.errors import HarnessError
    from sandbox.host import discover
    from sandbox.runner import run
    from sandbox.sampler import read_samples

    work = Path(tempfile.mkdtemp(prefix="sbx-"))  # short: see RunConfig.label
    outcome_path = work / "outcome.pickle"
    config = RunConfig(test=pyfuncitem.nodeid, duration_s=MAX_DURATION_S,
                       sample_interval=limits.sample_interval, grace_s=limits.grace_s,
                       tracer=limits.tracer, budget=limits.budget or RunConfig.budget,
                       runs_dir=work)
    try:
        try:
            the_run = run(config, show_progress=False, facts=discover(),
                          body=_body(pyfuncitem, outcome_path))
        except HarnessError as exc:
            pytest.fail(f"sandbox: the test could not be run in a slice: {exc}", pytrace=False)
        if the_run.cleanup is None:
            findings = ["the run could not be verified"]
        else:
            findings = _cleanup_findings(the_run.cleanup, limits)
        kind, detail, body_end = pickle.loads(outcome_path.read_bytes()) \
            if outcome_path.exists() else ("failed", "the test body died silently", math.inf)
        findings += [f.message for f in the_run.result.findings
                     if f.check == "trend" and f.level == "critical"]  # the run's verdict
        findings += memory_findings(
            *_body_memory(read_samples(the_run.run_dir / SAMPLES), body_end),
            MemoryLimits(limits.max_growth_mb_per_s, limits.max_growth_mb,
                         limits.max_memory_mb))
        kept = _keep(the_run.run_dir, session, pyfuncitem.nodeid, findings) \
            if findings or kind == "failed" else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if the_run.info.stopped_by in ("SIGINT", "SIGTERM"):
        raise KeyboardInterrupt
    session.lines.append(f"{pyfuncitem.nodeid}: " + ("; ".join(findings) if findings else kind)
                         + (f" (samples: {kept})" if kept else ""))
    where = f"\nsandbox: samples kept in {kept}" if kept else ""
    if kind == "skipped":
        pytest.skip(detail)
    if kind == "failed":
        pytest.fail(detail.rstrip("\n") + where, pytrace=False)
    if findings:
        pytest.fail("sandbox: " + "; ".join(findings) + where, pytrace=False)
    return True
