"""Density: the harness's own CPU and memory per run with 1, 2 and 4 command runs at once.

Each run is ``sandbox run --duration 60s -- python3 -c STEADY`` (a steady workload: 50 MB held,
a little CPU every 0.1 s). Per run it measures:

- CPU: the harness's whole process tree (from ``wait4``'s rusage: the harness, its helpers
  such as bpftrace, and the reaped workload) minus the workload's own CPU (the slice's
  ``cpu_usage_usec``, last sample), i.e. sampling, tracing, verifying and writing reports;
- memory: the PSS of the harness's processes outside the run's slice, once a second
  (mean over the run and peak).

    sudo .venv/bin/python bench/density.py [--duration 60s] [--concurrency 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
STEADY = ("import time\nheld = bytearray(50 << 20)\nwhile True:\n"
          "    sum(range(20000)); time.sleep(0.1)")


@dataclass
class Measured:
    """One run's harness cost."""

    exit_code: int = -1
    wall_s: float = 0.0
    tree_cpu_s: float = 0.0
    workload_cpu_s: float = 0.0
    pss_mb: list[float] = field(default_factory=list)

    @property
    def harness_cpu_s(self) -> float:
        return self.tree_cpu_s - self.workload_cpu_s


def in_a_slice(pid: int) -> bool:
    """The process is in a run's slice (the workload), not the harness's own cgroup."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return True
    return any("/sandbox-" in line and "/sandbox-harness-" not in line
               for line in text.splitlines())


def harness_pss_mb(pid: int) -> float | None:
    """PSS of the harness and its descendants outside the slice, MB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0
    for proc in procs:
        if in_a_slice(proc.pid):
            continue
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def workload_cpu_s(runs_dir: Path) -> float:
    """The slice's CPU time (last sample of cpu_usage_usec) of the one run in ``runs_dir``."""
    (run_dir,) = [d for d in runs_dir.iterdir() if d.is_dir()]
    usec = 0
    with open(run_dir / "samples.jsonl") as f:
        for line in f:
            value = json.loads(line).get("cpu_usage_usec")
            if value:
                usec = max(usec, value)
    return usec / 1e6


def run_and_measure(duration: str, runs_dir: Path) -> Measured:
    """Start one run, sample its harness's PSS each second, reap it with wait4 for its CPU."""
    result = Measured()
    argv = [sys.executable, "-m", "sandbox", "run", "--duration", duration, "--no-progress",
            "--runs-dir", str(runs_dir), "--", "python3", "-c", STEADY]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if (pss := harness_pss_mb(proc.pid)) is not None:
            result.pss_mb.append(pss)
        time.sleep(1.0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result.exit_code = proc.returncode
    result.wall_s = time.monotonic() - start
    result.tree_cpu_s = usage.ru_utime + usage.ru_stime
    result.workload_cpu_s = workload_cpu_s(runs_dir)
    return result


def measure(concurrency: int, duration: str) -> list[Measured]:
    """``concurrency`` runs started together; each one's harness cost."""
    results: list[Measured] = [Measured() for _ in range(concurrency)]
    with tempfile.TemporaryDirectory(prefix="density-") as tmp:
        dirs = [Path(tmp) / f"runs{i}" for i in range(concurrency)]
        for d in dirs:
            d.mkdir(mode=0o755)
        Path(tmp).chmod(0o755)

        def target(i: int) -> None:
            results[i] = run_and_measure(duration, dirs[i])

        threads = [threading.Thread(target=target, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--concurrency", default="1,2,4")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("must run as root (sandbox run needs it)")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, kernel {platform.release()}, duration {args.duration}")
    print("| runs at once | exit codes | wall s | harness CPU s per run | harness CPU % of a "
          "core | harness PSS MB mean | harness PSS MB peak | load avg 1 min after |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.concurrency.split(",")):
        results = measure(n, args.duration)
        cpu = statistics.mean(r.harness_cpu_s for r in results)
        wall = statistics.mean(r.wall_s for r in results)
        pss_mean = statistics.mean(statistics.mean(r.pss_mb) for r in results if r.pss_mb)
        pss_peak = max(max(r.pss_mb) for r in results if r.pss_mb)
        print(f"| {n} | {','.join(str(r.exit_code) for r in results)} | {wall:.0f} | "
              f"{cpu:.1f} | {100 * cpu / wall:.1f} | {pss_mean:.0f} | {pss_peak:.0f} | "
              f"{os.getloadavg()[0]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
