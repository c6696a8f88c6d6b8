"""Whether a count (processes, open fds, threads, temp files, DOM nodes) or a small size (temp
MB, JS heap MB after a GC) keeps growing, in a way a browser's own life cannot fake.

A browser's counts sit on a floor with transient peaks (each screenshot's context and renderer
come and go: +100..+265 fds in a sweep) and move to a new floor now and then (one persistent
process more: +31 fds, +8 threads, once). A least-squares slope through per-window minimums
mistook both for growth on clean runs (issue 24: 0.27 fds/s on a clean 5-minute run at 24
screenshots/min). So the rule is about the floor's shape, not a slope:

- the tested span (after the workload kind's start-up, before its teardown) is cut into
  :data:`PARTS` equal parts, and each part's **floor** is its minimum (a part holds many
  sweeps, so a transient cannot be its minimum);
- the count **keeps growing** when every part's floor is above the one before by at least
  ``resolution``, and the rise over the span is at least ``min_rate`` per second; a level
  shift raises one part boundary (two at most), never all of them;
- a rise in some parts only is a **step**; too few sweeps (fewer than :data:`MIN_PER_PART` a
  part) say **inconclusive**.

Calibrated on bench/corpus (clean runs at 10-30 screenshots/min, 2-10 minute windows: no
count grows; recorded leaks of one fd or one thread per screenshot: found in every window);
bench/calibrate_corpus.py --checks prints both. Statistics only, no I/O.
"""

from __future__ import annotations

import numpy as np

from sandbox.analysis.budget import Startup, drop_teardown
from sandbox.analysis.trend import TrendResult

PARTS = 5
MIN_PER_PART = 3


def count_growth(t: np.ndarray, y: np.ndarray, *, startup: Startup, resolution: float,
                 min_rate: float, min_per_part: int = MIN_PER_PART) -> TrendResult:
    """``leak`` (keeps growing), ``step``, ``none`` or ``inconclusive`` for a count or size
    ``y`` sampled at ``t`` s (the workload's window); see the module docstring. ``slope``: the
    rise from the first part's floor to the last one's, per second; ``min_per_part``: samples
    a part needs (fewer for a series without transients)."""
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = np.asarray(t, float)[ok], np.asarray(y, float)[ok]
    if len(t) < 2:
        return TrendResult(label="inconclusive", reasons=[f"too few samples ({len(t)})"])
    keep = t >= t[0] + startup.cut(float(t[-1] - t[0]))
    t, y = drop_teardown(t[keep], y[keep])
    if len(t) < PARTS * min_per_part:
        return TrendResult(label="inconclusive", n_samples=len(t),
                           reasons=[f"too few samples after the {startup.kind}'s start-up "
                                    f"({len(t)}; {PARTS * min_per_part} needed)"])
    edges = np.linspace(t[0], t[-1], PARTS + 1)
    part = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, PARTS - 1)
    counts = np.bincount(part, minlength=PARTS)
    if counts.min() < min_per_part:
        return TrendResult(label="inconclusive", n_samples=len(t),
                           reasons=[f"a part of the run has {counts.min()} samples "
                                    f"({min_per_part} needed)"])
    floors = np.array([y[part == k].min() for k in range(PARTS)])
    centres = (edges[:-1] + edges[1:]) / 2
    rises = np.diff(floors)
    slope = float((floors[-1] - floors[0]) / (centres[-1] - centres[0]))
    if np.all(rises >= resolution) and slope >= min_rate:
        label = "leak"
    elif np.any(rises >= resolution):
        label = "step"
    else:
        label = "none"
    return TrendResult(
        label=label, slope=slope, ols_slope=slope, warmup_cut_s=float(t[0]),
        test_start_s=float(t[0]), test_end_s=float(t[-1]), n_samples=len(t),
        n_test_samples=len(t), growth_total=float(floors[-1] - floors[0]),
        steps=[{"t": float(edges[k + 1]), "size": float(r)} for k, r in enumerate(rises)
               if r >= resolution],
        fit_line=[(float(c), float(f)) for c, f in zip(centres, floors, strict=True)],
        reasons=[f"floors of {PARTS} parts: " + ", ".join(f"{f:g}" for f in floors)])
