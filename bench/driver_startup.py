"""The Playwright driver's (Node) memory over a run's first minute: where a browser run's
start-up climb-and-drop comes from (docs/settle-points.md).

Runs the corpus user script (bench/corpus_scripts/user_screenshots.py, fresh contexts,
24 screenshots/min) without the harness, with ``NODE_OPTIONS`` as given for its driver, and
prints the driver's RSS every 3 s:

    .venv/bin/python bench/driver_startup.py
    .venv/bin/python bench/driver_startup.py --node-options=--max-semi-space-size=1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

SCRIPT = Path(__file__).resolve().parent / "corpus_scripts" / "user_screenshots.py"


def driver_rss(node_options: str, duration_s: float) -> list[tuple[float, float]]:
    """(seconds from the script's start, the driver's RSS in MiB), once a second."""
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_OPTIONS", "SANDBOX_SETTLE_FD")}
    if node_options:
        env["NODE_OPTIONS"] = node_options
    script = subprocess.Popen([sys.executable, str(SCRIPT), "--duration", f"{duration_s:g}",
                               "--ops-per-minute", "24", "--context", "fresh"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start, points = time.monotonic(), []
    while script.poll() is None:
        try:  # the driver's main thread names the process node-MainThread
            driver = [p for p in psutil.Process(script.pid).children(recursive=True)
                      if p.name().startswith("node")]
            if driver:
                points.append((time.monotonic() - start, driver[0].memory_info().rss / 2**20))
        except psutil.Error:
            pass
        time.sleep(1)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-options", default="", help="NODE_OPTIONS for the driver")
    parser.add_argument("--duration", type=float, default=80, help="seconds of screenshots")
    args = parser.parse_args()
    points = driver_rss(args.node_options, args.duration)
    print(f"NODE_OPTIONS={args.node_options!r}: driver RSS MiB at s")
    print(" ".join(f"{t:.0f}:{rss:.0f}" for t, rss in points[::3]))


if __name__ == "__main__":
    main()
