"""Positive control for the generic command workload: `sandbox run` of a command leaking
1 MB/s for 30 s is judged a leak (exit 1); a clean one that allocates and frees the same amount
is not (exit 0). Both runs go at once, each in its own slice, through the whole product:
sampler, verifier, analysis, reports. Used on this host and inside the pure-v2 guest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SECONDS = 30

#: argv[1] = keep (leak) or drop (clean): 1 MB of touched memory per second, then hold.
WORKLOAD = f"""
import sys, time
kept, start = [], time.monotonic()
for i in range({SECONDS} + 30):
    block = b"x" * (1 << 20)
    if sys.argv[1] == "keep":
        kept.append(block)
    del block
    time.sleep(max(0.0, start + i + 1 - time.monotonic()))
"""


def check_command_leak(runs_dir: Path, source: str) -> None:
    """Run both commands and check the verdicts; ``source`` is the expected sample source."""
    runs = {mode: runs_dir / mode for mode in ("keep", "drop")}
    procs = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "sandbox", "run", "--duration", f"{SECONDS}s",
             "--no-progress", "--runs-dir", str(path), "--",
             "python3", "-c", WORKLOAD, mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for mode, path in runs.items()
    }
    outcome = {mode: proc.communicate(timeout=300) for mode, proc in procs.items()}
    for mode, proc in procs.items():
        assert proc.returncode in (0, 1), outcome[mode]
    reports = {mode: json.loads(next(path.glob("*/report.json")).read_text())
               for mode, path in runs.items()}

    leak, clean = reports["keep"], reports["drop"]
    assert procs["keep"].returncode == 1, outcome["keep"]
    assert leak["verdict"]["outcome"] == "over" and leak["verdict"]["label"] == "leak"
    assert leak["status"] == "FAIL" and leak["verdict"]["budget"] == "0.1 MB/s"
    assert 0.8 < leak["verdict"]["slope_mb_per_second"] < 1.2
    assert procs["drop"].returncode == 0, outcome["drop"]
    assert clean["verdict"]["outcome"] in ("within", "inconclusive")
    assert clean["status"] in ("PASS", "INCONCLUSIVE")
    assert leak["sample_source"] == source
    # memory.peak, the kernel's watermark, is reported
    assert leak["memory_stats"]["kernel_peak_mb"] >= SECONDS
    assert clean["memory_stats"]["kernel_peak_mb"] < SECONDS


def test_leaking_command_detected_clean_not(needs_cgroups, runs_dir: Path) -> None:
    mode = needs_cgroups.cgroup.mode
    check_command_leak(runs_dir, "cgroup-v2" if mode == "v2" else "cgroup-v1")
