"""pytest plugin: ``@pytest.mark.sandbox(...)`` runs a test's body in a slice of its own and
fails the test on memory growth, orphaned processes, escapes or leftover temp files, in the
style of pytest-memray's ``limit_memory`` / ``limit_leaks``::

    @pytest.mark.sandbox(max_growth_mb_per_s=5, max_growth_mb=50)
    def test_renderer_pool(): ...

The body runs in a forked child that joins the slice first (so everything it starts is in the
slice too); the parent samples the slice, then judges. Growth is measured on anon memory and
includes the copy-on-write pages of the forked test process (usually a few MB).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import theilslopes

from sandbox.analysis.budget import estimate_growth, judge_budget, parse_budget
from sandbox.host import MARKER_ENV

MARKER_HELP = (
    "sandbox(budget=None, max_growth_mb_per_s=None, max_growth_mb=None, max_memory_mb=None, "
    "allow_orphans=False, allow_leftover_files=False, sample_interval=0.05, grace_s=1.0): "
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


def _run_child(item: pytest.Function, join: Callable[[], None], write_fd: int, tmp_dir: Path,
               run_id: str) -> None:
    """In the forked child: join the slice, run the body, send the outcome, exit."""
    outcome: tuple[str, str] = ("passed", "")
    try:
        join()
        os.environ[MARKER_ENV] = run_id
        os.environ["TMPDIR"] = str(tmp_dir)
        tempfile.tempdir = None
        funcargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
        item.obj(**funcargs)
    except pytest.skip.Exception as exc:
        outcome = ("skipped", str(exc))
    except BaseException:  # the child reports everything, the parent decides
        outcome = ("failed", traceback.format_exc())
    try:
        os.write(write_fd, pickle.dumps(outcome))
    finally:
        os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _judge(samples: dict[str, np.ndarray], limits: SandboxLimits, body_end: float
           ) -> list[str]:
    """Memory findings of the body (samples up to ``body_end``), on anon memory of the slice."""
    t, anon = samples.get("t"), samples.get("anon")
    if t is None or anon is None or np.all(np.isnan(anon)):
        anon = samples.get("memory_current")
    if t is None or anon is None:
        return []
    keep = ~np.isnan(anon) & (t <= body_end)
    t, mb = t[keep], anon[keep] / 2**20
    findings = []
    if limits.budget is not None:
        growth, why = estimate_growth(t, mb, min_tested_s=1.0)  # test bodies are short
        verdict = judge_budget(growth, parse_budget(limits.budget), ops_per_s=None, why_none=why)
        if verdict.outcome == "over":
            findings.append(f"memory grew {growth.rate:.3f} MB/s, over the budget "
                            f"{verdict.budget} (95% interval {growth.ci[0]:.3f}.."
                            f"{growth.ci[1]:.3f} MB/s)")
    if len(mb) >= 3 and limits.max_growth_mb_per_s is not None:
        slope = float(theilslopes(mb, t)[0])
        if slope > limits.max_growth_mb_per_s:
            findings.append(f"memory grew at {slope:.2f} MB/s "
                            f"(limit {limits.max_growth_mb_per_s} MB/s)")
    if len(mb) >= 2 and limits.max_growth_mb is not None:
        head = mb[: max(1, len(mb) // 10)]
        growth = float(mb[-1] - head.min())
        if growth > limits.max_growth_mb:
            findings.append(f"memory grew by {growth:.1f} MB (limit {limits.max_growth_mb} MB)")
    if len(mb) and limits.max_memory_mb is not None and mb.max() > limits.max_memory_mb:
        findings.append(f"memory peaked at {mb.max():.1f} MB (limit {limits.max_memory_mb} MB)")
    return findings


def _describe(pids: set[int]) -> str:
    import psutil

    names = []
    for pid in sorted(pids):
        try:
            names.append(f"{pid} ({' '.join(psutil.Process(pid).cmdline())[:60]})")
        except psutil.Error:
            names.append(str(pid))
    return ", ".join(names)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker("sandbox")
    if marker is None:
        return None
    from sandbox.host import discover, open_slice
    from sandbox.host.slice import marked_pids
    from sandbox.runner import new_run_id
    from sandbox.sampler import MemoryProfiler, read_samples
    from sandbox.sampler.profiler import tmp_usage

    limits = SandboxLimits(**marker.kwargs)
    if os.geteuid() != 0:
        pytest.skip("the sandbox marker needs root (cgroups)")
    facts = discover()
    run_id = new_run_id()
    work = Path(tempfile.mkdtemp(prefix=f"sandbox-pytest-{run_id}-"))
    tmp_dir = work / "tmp"
    tmp_dir.mkdir()
    slice_ = open_slice(run_id, facts.cgroup)
    profiler = MemoryProfiler(limits.sample_interval, alert_threshold_mb=float("inf"))
    findings: list[str] = []
    try:
        with slice_:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _run_child(pyfuncitem, slice_._join, write_fd, tmp_dir, run_id)
            os.close(write_fd)
            t0 = time.monotonic()
            profiler.start(slice_, work / "samples.jsonl",
                           tmp_usage=lambda: tmp_usage(tmp_dir), t0=t0)
            try:
                data = _read_all(read_fd)
                os.close(read_fd)
                os.waitpid(pid, 0)
                body_end = time.monotonic() - t0
                deadline = time.monotonic() + limits.grace_s
                while slice_.pids() and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                profiler.stop()
            orphans = slice_.pids()
            escaped = marked_pids(run_id) - orphans
            if orphans and not limits.allow_orphans:
                findings.append(f"orphaned processes left in the slice: {_describe(orphans)}")
            if escaped:
                findings.append(f"processes escaped the slice: {_describe(escaped)}")
                for pid_ in escaped:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid_, signal.SIGKILL)
        leftovers = sorted(str(p.relative_to(tmp_dir)) for p in tmp_dir.rglob("*"))
        if leftovers and not limits.allow_leftover_files:
            findings.append(f"temp files left behind: {', '.join(leftovers[:10])}")
        findings += _judge(read_samples(work / "samples.jsonl"), limits, body_end)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kind, detail = pickle.loads(data) if data else ("failed", "the test body died silently")
    if kind == "skipped":
        pytest.skip(detail)
    if kind == "failed":
        pytest.fail(detail, pytrace=False)
    if findings:
        pytest.fail("sandbox: " + "; ".join(findings), pytrace=False)
    return True
