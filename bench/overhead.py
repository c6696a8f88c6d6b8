"""Benchmark: what the harness costs the workload. The same screenshot workload (built-in
site, fixed pace) runs bare (``python -m sandbox.workloads.screenshot`` as a plain process, host
network) and under ``sandbox run`` (slice, sampler at its default rate, per-role sweeps, eBPF
tracer, private tmpfs, its own UID) with ``--network host`` (like for like) and with its
default isolated network namespace, interleaved for several rounds on the same machine. Per
run: the median screenshot latency and the operations per minute achieved; then the ratios
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


def harnessed(duration: float, opm: float, runs_dir: Path, network: str) -> list[dict]:
    subprocess.run([SANDBOX, "run", "--scenario", "smoke", "--duration", f"{duration:g}s",
                    "--ops-per-minute", f"{opm:g}", "--context-policy", "fresh",
                    "--network", network, "--runs-dir", str(runs_dir), "--no-progress", "-q"],
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
    print("round | bare p50 s | harness p50 s | ratio | isolated-net p50 s | ratio "
          "| bare ops/min | harness ops/min | throughput ratio")
    ratios: dict[str, list[float]] = {"host": [], "isolated": [], "throughput": []}
    for n in range(args.rounds):
        runs = {}
        order = ["bare", "host", "isolated"]
        for name in order[n % 3:] + order[:n % 3]:  # rotate, so warming favours none
            with tempfile.TemporaryDirectory(prefix="sandbox-overhead-", dir="/var/tmp") as tmp:
                Path(tmp).chmod(0o755)
                ops = (bare(args.duration, args.ops_per_minute) if name == "bare" else
                       harnessed(args.duration, args.ops_per_minute, Path(tmp), name))
            runs[name] = summary(ops, args.duration)
        (a, a_opm), (b, b_opm), (c, _) = runs["bare"], runs["host"], runs["isolated"]
        ratios["host"].append(b / a)
        ratios["isolated"].append(c / a)
        ratios["throughput"].append(b_opm / a_opm)
        print(f"{n} | {a:.3f} | {b:.3f} | {b / a:.3f} | {c:.3f} | {c / a:.3f} | {a_opm:.1f} | "
              f"{b_opm:.1f} | {b_opm / a_opm:.3f}", flush=True)
    host, isolated = statistics.median(ratios["host"]), statistics.median(ratios["isolated"])
    print(f"median of ratios: latency {host:.3f} ({(host - 1) * 100:+.1f}%) with the host's "
          f"network, {isolated:.3f} ({(isolated - 1) * 100:+.1f}%) in the isolated network "
          f"namespace; throughput {statistics.median(ratios['throughput']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
