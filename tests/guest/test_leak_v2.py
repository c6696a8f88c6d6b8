"""A generic command leaking 1 MB/s for 30 s is detected on pure cgroup v2; a clean one that
allocates and frees the same amount is not. Both run at once, each in its own slice, sampled by
MemoryProfiler from the slice's files.

The verdict here is Theil-Sen's slope with its 95% interval and Kendall's tau on anonymous
memory (scipy). sandbox.analysis.trend.trend_test is built for runs of minutes: its 5 s
smoothing leaves too few points in 30 s for its late-growth check (it says "decelerating")."""

from __future__ import annotations

import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sandbox.host import open_slice
from sandbox.sampler import MemoryProfiler, read_samples

pytestmark = pytest.mark.guest
MB = 1 << 20
SECONDS = 30

#: argv[1] = keep (leak) or drop (clean): 1 MB of touched memory per second, then hold.
WORKLOAD = f"""
import sys, time
kept, start = [], time.monotonic()
for i in range({SECONDS}):
    block = b"x" * (1 << 20)
    if sys.argv[1] == "keep":
        kept.append(block)
    del block
    time.sleep(max(0.0, start + i + 1 - time.monotonic()))
print("done", flush=True)
sys.stdin.read()
"""


MIN_RATE = 0.1  # MB/s: growth below this is not called a leak
ALPHA = 0.01


def judge(samples: Path) -> dict[str, float | bool]:
    """Slope (MB/s) of anonymous memory with its 95% interval; leak when the interval lies
    above MIN_RATE and Kendall's tau says the growth is monotonic."""
    data = read_samples(samples)
    t, anon_mb = data["t"], data["anon"] / MB
    assert len(t) >= SECONDS and np.isfinite(anon_mb).all()
    fit = stats.theilslopes(anon_mb, t, alpha=0.95)
    tau = stats.kendalltau(t, anon_mb)
    leak = bool(fit.low_slope > MIN_RATE and tau.pvalue < ALPHA and tau.statistic > 0)
    return {"slope": fit.slope, "low": fit.low_slope, "high": fit.high_slope,
            "tau": tau.statistic, "p": tau.pvalue, "leak": leak}


def test_leaking_command_detected_clean_not(delegated, tmp_path: Path) -> None:
    results: dict[str, dict] = {}
    peaks: dict[str, int] = {}
    with ExitStack() as stack:
        running = {}
        for mode in ("keep", "drop"):
            slice_ = stack.enter_context(open_slice(f"t-{uuid.uuid4().hex[:8]}",
                                                    delegated.cgroup))
            profiler = MemoryProfiler(sample_interval=0.25)
            profiler.start(slice_, tmp_path / f"{mode}.jsonl")
            stack.callback(profiler.stop)
            proc = slice_.spawn([sys.executable, "-c", WORKLOAD, mode], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
            running[mode] = (slice_, profiler, proc)
        for mode, (slice_, profiler, proc) in running.items():
            assert proc.stdout.readline().strip() == b"done"
            profiler.stop()
            peaks[mode] = int(slice_.path("unified", "memory.peak").read_text())
            proc.stdin.close()
    for mode in running:
        results[mode] = judge(tmp_path / f"{mode}.jsonl")

    leak, clean = results["keep"], results["drop"]
    assert leak["leak"] and 0.8 < leak["slope"] < 1.2, leak  # MB/s
    assert not clean["leak"] and abs(clean["slope"]) < MIN_RATE, clean
    assert peaks["keep"] >= SECONDS * MB > peaks["drop"]
    for mode in running:
        peak = read_samples(tmp_path / f"{mode}.jsonl")["peak"]
        assert np.nanmax(peak) == pytest.approx(peaks[mode], rel=0.1)  # peak is reported
