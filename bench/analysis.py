"""How long analyze() takes on long runs (seeded synthetic samples at 0.5 s).

    .venv/bin/python bench/analysis.py [--minutes 60 120 240]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sandbox.analysis import analyze

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ (its synthetic runs)

from sandbox.runreader import read_run
from tests.synthetic import series, write_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[15, 60, 240])
    args = parser.parse_args()
    print(f"{'run':>8} {'samples':>8} {'read s':>8} {'analyze s':>10} verdict")
    for minutes in args.minutes:
        t, y = series(np.random.default_rng(1), minutes * 60, leak_mb_s=0.02, noise_sd=5)
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = write_run(Path(tmp) / "run", t, y)
            start = time.perf_counter()
            run = read_run(run_dir)
            read_s = time.perf_counter() - start
            start = time.perf_counter()
            result = analyze(run)
            analyze_s = time.perf_counter() - start
        print(f"{minutes:>6g} m {len(t):>8} {read_s:>8.2f} {analyze_s:>10.2f} "
              f"{result.verdict.label} {result.verdict.severity}")


if __name__ == "__main__":
    main()
