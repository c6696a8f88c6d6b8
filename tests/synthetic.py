"""Seeded synthetic memory series for calibrating and testing the trend test.

Model (MB): baseline + warm-up ramp + GC sawtooth + AR(1) noise + optional leak and step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.config import RunConfig
from sandbox.model.operation import Operation
from sandbox.model.run_info import RunInfo

MB = 1024 * 1024


def series(
    rng: np.random.Generator,
    duration_s: float,
    *,
    leak_mb_s: float = 0.0,
    step_mb: float = 0.0,
    noise_sd: float = 5.0,
    interval_s: float = 0.5,
    phi: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """One series: returns (t seconds, memory MB).

    Warm-up ramp of 20-80 MB with a time constant of 5-30 s, GC sawtooth of 3-15 MB over a 10-60 s
    period, AR(1) noise with lag-1 correlation ``phi`` and marginal sd ``noise_sd``, a linear leak
    of ``leak_mb_s``, and a step of ``step_mb`` at a random time in the middle 40% of the run.
    """
    t = np.arange(0.0, duration_s, interval_s)
    n = len(t)
    y = 300.0 + rng.uniform(20, 80) * (1 - np.exp(-t / rng.uniform(5, 30)))
    period = rng.uniform(10, 60)
    y += rng.uniform(3, 15) * (((t + rng.uniform(0, period)) % period) / period)
    e = rng.normal(0.0, noise_sd * np.sqrt(1 - phi**2), n)
    e[0] = rng.normal(0.0, noise_sd)
    for i in range(1, n):
        e[i] += phi * e[i - 1]
    y += e + leak_mb_s * t
    if step_mb:
        y += step_mb * (t >= rng.uniform(0.3, 0.7) * duration_s)
    return t, y


def write_run(
    run_dir: Path,
    t: np.ndarray,
    anon_mb: np.ndarray,
    *,
    file_mb: float = 200.0,
    pids: int = 21,
    ops_every_s: float = 3.0,
    cleanup: dict[str, Any] | None = None,
    run_extra: dict[str, Any] | None = None,
) -> Path:
    """Write a run directory (run.json, samples.jsonl, operations.jsonl, cleanup.json) for tests;
    ``run_extra`` adds keys to run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunInfo(run_id=run_dir.name, config=RunConfig(scenario="synthetic"),
                  host={"name": "test"}, started=1_764_000_000.0, workload="screenshot",
                  backend={"cgroup": "synthetic", "sampler": "cgroup", "tracer": None})
    (run_dir / "run.json").write_text(json.dumps({**run.to_dict(), **(run_extra or {})}))
    with (run_dir / "samples.jsonl").open("w") as f:
        for ti, a in zip(t, anon_mb, strict=True):
            anon, file = int(a * MB), int(file_mb * MB)
            f.write(json.dumps({
                "t": float(ti), "source": "cgroup-v2", "memory_current": anon + file,
                "anon": anon, "file": file, "inactive_file": file // 2,
                "working_set": anon + file // 2, "peak": None, "pids_current": pids,
                "nprocs": pids, "tmp_bytes": 4096, "tmp_files": 3, "oom_kill": 0,
            }) + "\n")
    with (run_dir / "operations.jsonl").open("w") as f:
        for i, ti in enumerate(np.arange(ops_every_s, t[-1], ops_every_s)):
            f.write(json.dumps(Operation(op=i, t=float(ti), latency_s=0.4,
                                         ok=True).to_record()) + "\n")
    if cleanup is not None:
        (run_dir / "cleanup.json").write_text(json.dumps(cleanup))
    return run_dir
