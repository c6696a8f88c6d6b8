"""Benchmark: how long a slice's teardown takes (kill requested -> cgroup empty -> all reaped),
as every run records it in cleanup.json (``after_teardown.timing``).

Each round starts a workload in a fresh slice, waits until its process count is stable,
tears the slice down and reads ``Slice.teardown_timing``. Workloads: ``chromium`` (headless
Chromium with N pages, ~20 processes at 12 pages) or ``sleep`` (N sleeping processes in a tree,
for hosts without Chromium, like the v2 guest).

    sudo .venv/bin/python bench/teardown.py [--workload chromium] [--pages 12] [--rounds 10]
    sudo .venv/bin/python bench/teardown.py --workload sleep --processes 20
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sampler import start_pages, wait_stable  # noqa: E402

from sandbox.host import discover, open_slice  # noqa: E402

SLEEPERS = ("import os, sys, time\n"
            "for _ in range(int(sys.argv[1]) - 1):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(600)\n"
            "        os._exit(0)\n"
            "time.sleep(600)\n")


def one_round(facts, args, work: Path, n: int) -> dict:
    with open_slice(f"bench-teardown-{n}-{int(time.time())}", facts.cgroup) as slice_:
        if args.workload == "chromium":
            profile = work / f"profile-{n}"
            profile.mkdir()
            start_pages(slice_, facts.chromium, profile, args.pages)
        else:
            slice_.spawn([sys.executable, "-c", SLEEPERS, str(args.processes)])
        processes = wait_stable(slice_)
        slice_.teardown()
        timing = dict(slice_.teardown_timing or {})
    shutil.rmtree(work / f"profile-{n}", ignore_errors=True)
    timing["stable_processes"] = processes
    return timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("chromium", "sleep"), default="chromium")
    parser.add_argument("--pages", type=int, default=12, help="Chromium pages (default 12)")
    parser.add_argument("--processes", type=int, default=20, help="sleep: processes")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the rounds here")
    args = parser.parse_args()
    facts = discover()
    if facts.cgroup.mode == "none":
        print(f"error: needs a cgroup ({facts.cgroup.reason})", file=sys.stderr)
        return 3
    if args.workload == "chromium" and not facts.chromium:
        print("error: no Chromium; use --workload sleep", file=sys.stderr)
        return 3
    print(f"# {platform.node()} kernel {platform.release()}, cgroup mode {facts.cgroup.mode}, "
          f"workload {args.workload}")
    print("round | processes | kill -> empty ms | kill -> reaped ms")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        for n in range(args.rounds):
            r = one_round(facts, args, Path(tmp), n)
            rounds.append(r)
            print(f"{n} | {r.get('processes')} | {r.get('kill_to_empty_ms')} | "
                  f"{r.get('kill_to_reaped_ms')}", flush=True)
    empty = [r["kill_to_empty_ms"] for r in rounds]
    reaped = [r["kill_to_reaped_ms"] for r in rounds]
    print(f"median: {statistics.median([r['processes'] for r in rounds]):.0f} processes, "
          f"kill -> empty {statistics.median(empty):.1f} ms (max {max(empty):.1f}), "
          f"kill -> reaped {statistics.median(reaped):.1f} ms (max {max(reaped):.1f})")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
