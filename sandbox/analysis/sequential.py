"""Runs that stop once the memory verdict is decided (``--until-decided``), with the error
rates held over all looks.

Looking at a growing run every few seconds and stopping at the first look whose bounds leave
the budget would call a leak exactly at the budget *over* (or *within*) far more often than
the 5% one look allows. A :class:`LookPlan` fixes the looks before the run starts (every
:data:`LOOK_EVERY_S` from the kind's shortest judgeable length to the cap) and widens the
bounds at every look to one constant ``z`` (Pocock's boundary): the chance that *any* look's
bound crosses the budget when the rate is exactly at it is ``alpha``. ``z`` comes from the
joint law of the least-squares slope's z-statistics over the growing windows (white noise:
they are correlated as the windows nest), by simulation with a fixed seed, so a plan always
gets the same ``z``. A browser's floor is not white noise about a line; its wander is in the
standard error (``Startup.wander_k``), and docs/statistics.md shows the error rates on real
traces.

Statistics only: no I/O (the runner looks, analysis.core judges).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from sandbox.analysis.budget import Z_BOUND, Startup

#: Seconds between looks.
LOOK_EVERY_S = 15.0
ALPHA = 0.05
#: Simulated runs behind a boundary, and the grid step (s) of their windows' floors.
_SIMULATIONS = 20_000
_GRID_S = 3.0


@dataclass(frozen=True)
class LookPlan:
    """When a run is looked at (seconds from the workload's start) and the ``z`` every look's
    bounds use."""

    first_s: float
    cap_s: float
    every_s: float
    cut_s: float  # the start-up cut before the tested window
    z: float

    @property
    def looks(self) -> list[float]:
        return look_times(self.first_s, self.cap_s, self.every_s)

    def to_dict(self) -> dict[str, float]:
        return {"first_s": self.first_s, "cap_s": self.cap_s, "every_s": self.every_s,
                "cut_s": self.cut_s, "z": round(self.z, 4)}


def look_times(first_s: float, cap_s: float, every_s: float) -> list[float]:
    """The looks: ``first_s``, then every ``every_s``, and the cap last."""
    first = min(first_s, cap_s)
    times = list(np.arange(first, cap_s, every_s)) if cap_s > first else []
    return [float(t) for t in times] + [float(cap_s)]


def plan(startup: Startup, cap_s: float, limit_mb_s: float, every_s: float = LOOK_EVERY_S,
         alpha: float = ALPHA) -> LookPlan:
    """The looks of a run of ``startup``'s kind capped at ``cap_s``: the first where a run of
    typical noise could be decided (:meth:`Startup.shortest_s`), then every ``every_s``."""
    first = min(startup.shortest_s(limit_mb_s), cap_s)
    cut = startup.cut_s
    tested = tuple(round(max(t - cut, _GRID_S), 1) for t in look_times(first, cap_s, every_s))
    return LookPlan(first, cap_s, every_s, cut, boundary_z(tested, alpha))


@functools.lru_cache(maxsize=64)
def boundary_z(tested_s: tuple[float, ...], alpha: float = ALPHA) -> float:
    """The constant z whose one-sided crossing at any of the looks (each judging the slope
    of the floors of its first ``tested_s`` seconds) has probability ``alpha`` when the true
    rate is the budget; one look: the single-look bound."""
    if len(tested_s) <= 1:
        return float(Z_BOUND)
    rng = np.random.default_rng(20261203)
    n_points = np.maximum(np.round(np.asarray(tested_s) / _GRID_S).astype(int), 3)
    n_max = int(n_points.max())
    t = np.arange(n_max, dtype=float)
    s1, s2 = np.cumsum(t), np.cumsum(t * t)
    n = np.arange(1, n_max + 1, dtype=float)
    idx = n_points - 1
    denom = n[idx] * s2[idx] - s1[idx] ** 2
    maxima = []
    for _ in range(_SIMULATIONS // 5000):
        y = rng.standard_normal((5000, n_max))
        sy, sty = np.cumsum(y, axis=1)[:, idx], np.cumsum(y * t, axis=1)[:, idx]
        slope = (n[idx] * sty - s1[idx] * sy) / denom
        z = slope / np.sqrt(n[idx] / denom)
        maxima.append(z.max(axis=1))
    return float(np.quantile(np.concatenate(maxima), 1 - alpha))


def time_to_decision(rate: float, se: float, tested_s: float, limit: float, z: float
                     ) -> float | None:
    """Seconds more of testing until bounds ``rate -/+ z se`` (shrinking as length^-1.5)
    leave ``limit`` at the rate measured; None when they already have or never would."""
    gap = abs(rate - limit)
    if gap == 0 or not math.isfinite(se) or se <= 0:
        return None
    needed = tested_s * (z * se / gap) ** (2 / 3)
    return max(needed - tested_s, 0.0) or None
