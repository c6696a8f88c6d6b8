"""Soak: one long ``sandbox run`` of the screenshot workload (default 1 hour), watched from
outside: the harness's RSS every 30 s, the size of its samples, and at the end the time the
analysis of the whole run takes. Everything should be flat (RSS) or linear (files).

    sudo .venv/bin/python bench/soak.py [--duration 1h] [--ops-per-minute 6] [--json FILE]

The figures it prints (RSS growth after the first 2 minutes, MB of samples per hour, analysis
seconds) are what tests/test_soak.py (marker ``slow``) checks.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from sandbox.analysis import analyze
from sandbox.durations import parse_duration
from sandbox.runreader import read_run

SANDBOX = str(Path(sys.executable).parent / "sandbox")
WATCH_S = 30.0
SETTLE_S = 120.0  # RSS after this much is the baseline (imports, first allocations done)


def soak(duration_s: float, ops_per_minute: float, runs_dir: Path) -> dict:
    """Run, watch, analyse; the figures as a dict."""
    proc = subprocess.Popen([SANDBOX, "run", "--scenario", "endurance",
                             "--duration", f"{duration_s:g}s", "--ops-per-minute",
                             f"{ops_per_minute:g}", "--runs-dir", str(runs_dir),
                             "--no-progress", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    harness = psutil.Process(proc.pid)
    start = time.monotonic()
    rss: list[tuple[float, float]] = []
    while proc.poll() is None:
        try:
            rss.append((time.monotonic() - start, harness.memory_info().rss / 2**20))
        except psutil.Error:
            break
        time.sleep(WATCH_S)
    stderr = proc.communicate()[1]
    (run_dir,) = runs_dir.iterdir()
    began = time.perf_counter()
    result = analyze(read_run(run_dir))
    analysis_s = time.perf_counter() - began
    settled = [m for t, m in rss if t >= SETTLE_S] or [m for _, m in rss]
    hours = duration_s / 3600
    files = {name: (run_dir / name).stat().st_size / 2**20
             for name in ("samples.jsonl", "roles.jsonl", "events.jsonl", "operations.jsonl")
             if (run_dir / name).exists()}
    return {
        "duration_s": duration_s, "exit_code": proc.returncode, "status": result.status,
        "stderr": stderr.strip().splitlines()[-3:],
        "samples": result.n_samples, "operations": result.operations.count,
        "rss_first_mb": settled[0], "rss_last_mb": settled[-1], "rss_max_mb": max(settled),
        "rss_growth_mb": settled[-1] - settled[0],
        "files_mb_per_hour": {k: round(v / hours, 2) for k, v in files.items()},
        "analysis_s": analysis_s, "rss_series": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--ops-per-minute", type=float, default=6.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    duration = parse_duration(args.duration)
    with tempfile.TemporaryDirectory(prefix="sandbox-soak-", dir="/var/tmp") as tmp:
        Path(tmp).chmod(0o755)
        r = soak(duration, args.ops_per_minute, Path(tmp))
    print(f"# {platform.node()} kernel {platform.release()}; endurance workload at "
          f"{args.ops_per_minute:g} ops/min for {duration / 60:.0f} min")
    print(f"exit {r['exit_code']} ({r['status']}), {r['samples']} samples, "
          f"{r['operations']} operations")
    print(f"harness RSS after {SETTLE_S:.0f} s: {r['rss_first_mb']:.1f} MB -> "
          f"{r['rss_last_mb']:.1f} MB at the end (max {r['rss_max_mb']:.1f}): "
          f"{r['rss_growth_mb']:+.1f} MB")
    print("files, MB per hour: " + ", ".join(f"{k} {v}" for k, v in
                                             r["files_mb_per_hour"].items()))
    print(f"analysis of the whole run: {r['analysis_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
