"""Benchmark: what the harness costs the workload. The same screenshot workload (built-in
site, fixed pace) runs bare (``python -m sandbox.workloads.screenshot`` as a plain process)
and under ``sandbox run`` (slice, sampler at its default rate, per-role sweeps, eBPF tracer,
private tmpfs, its own UID), interleaved A/B for several rounds on the same machine. Per run:
the median screenshot latency and the operations per minute achieved; then the ratios
(harness / bare) per round and their median.

    sudo .venv/bin/python bench/overhead.py [--rounds 4] [--duration 60] [--ops-per-minute 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
SANDBOX = str(Path(PYTHON).parent / "sandbox")


def _ops(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "op" in record and record.get("ok"):
            out.append(record)
    return out


def bare(duration: float, opm: float) -> list[dict]:
    config = json.dumps({"duration_s": duration, "operations_per_minute": opm,
                         "context_policy": "fresh"})
    done = subprocess.run([PYTHON, "-m", "sandbox.workloads.screenshot", "--config", config],
                          capture_output=True, text=True, timeout=duration + 120, check=False)
    return _ops(done.stdout.splitlines())


def harnessed(duration: float, opm: float, runs_dir: Path) -> list[dict]:
    subprocess.run([SANDBOX, "run", "--scenario", "smoke", "--duration", f"{duration:g}s",
                    "--ops-per-minute", f"{opm:g}", "--context-policy", "fresh",
                    "--runs-dir", str(runs_dir), "--no-progress", "-q"],
                   capture_output=True, text=True, timeout=duration + 180, check=False)
    (run_dir,) = runs_dir.iterdir()
    return _ops((run_dir / "operations.jsonl").read_text().splitlines())


def summary(ops: list[dict], duration: float) -> tuple[float, float]:
    """(median latency s, operations per minute)"""
    return statistics.median(o["latency_s"] for o in ops), len(ops) / duration * 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ops-per-minute", type=float, default=30.0)
    args = parser.parse_args()
    print(f"# {platform.node()} kernel {platform.release()}; built-in site, context fresh, "
          f"{args.ops_per_minute:g} ops/min, {args.duration:g} s per run")
    print("round | bare p50 s | harness p50 s | latency ratio | bare ops/min | harness ops/min "
          "| throughput ratio")
    latency_ratios, throughput_ratios = [], []
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="sandbox-overhead-", dir="/var/tmp") as tmp:
            Path(tmp).chmod(0o755)
            # alternate which goes first, so a warming cache favours neither
            if n % 2 == 0:
                a = summary(bare(args.duration, args.ops_per_minute), args.duration)
                b = summary(harnessed(args.duration, args.ops_per_minute, Path(tmp)),
                            args.duration)
            else:
                b = summary(harnessed(args.duration, args.ops_per_minute, Path(tmp)),
                            args.duration)
                a = summary(bare(args.duration, args.ops_per_minute), args.duration)
        latency_ratios.append(b[0] / a[0])
        throughput_ratios.append(b[1] / a[1])
        print(f"{n} | {a[0]:.3f} | {b[0]:.3f} | {b[0] / a[0]:.3f} | {a[1]:.1f} | {b[1]:.1f} | "
              f"{b[1] / a[1]:.3f}", flush=True)
    print(f"median of ratios: latency {statistics.median(latency_ratios):.3f} "
          f"({(statistics.median(latency_ratios) - 1) * 100:+.1f}%), throughput "
          f"{statistics.median(throughput_ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
