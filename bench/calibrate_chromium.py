"""Leak-verdict calibration on real Chromium: clean runs must not be called leaks; runs whose
page retains a set amount per screenshot (--inject heap) must be. Prints each run's verdict
and the false-positive and recall rates.

    sudo .venv/bin/python bench/calibrate_chromium.py [--runs 3] [--duration 2m] [--rate 0.5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(runs_dir: Path, duration: str, inject_rate: float | None) -> dict:
    args = [sys.executable, "-m", "sandbox", "run", "--scenario", "quick", "--duration", duration,
            "--runs-dir", str(runs_dir), "--no-progress", "-q"]
    if inject_rate:
        args += ["--inject", "heap", "--inject-rate", str(inject_rate)]
    code = subprocess.run(args, capture_output=True, check=False).returncode
    report = json.loads(max(runs_dir.glob("*/report.json"), key=lambda p: p.stat().st_mtime)
                        .read_text())
    verdict = report["verdict"]
    return {"exit": code, "label": verdict["label"], "slope": verdict["slope_mb_per_second"],
            "limit": verdict["detection_limit_mb_per_second"],
            "mb_per_op": verdict["mb_per_operation"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per kind")
    parser.add_argument("--duration", default="2m")
    parser.add_argument("--rate", type=float, default=0.5, help="MB retained per screenshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        Path(tmp).chmod(0o755)
        rows = {"clean": [], "heap": []}
        for i in range(args.runs):
            for kind, rate in (("clean", None), ("heap", args.rate)):
                row = one_run(Path(tmp) / f"{kind}{i}", args.duration, rate)
                rows[kind].append(row)
                print(f"{kind:5} run {i}: exit {row['exit']} {row['label']:12} slope "
                      f"{row['slope']} MB/s, limit {row['limit']}, {row['mb_per_op']} MB/op",
                      flush=True)
    fp = sum(r["label"] == "leak" for r in rows["clean"])
    found = sum(r["label"] == "leak" for r in rows["heap"])
    print(f"clean runs called leak: {fp}/{args.runs}; heap {args.rate} MB/op found: "
          f"{found}/{args.runs} ({args.duration} runs, quick scenario rate)")


if __name__ == "__main__":
    main()
