"""Which process role's memory grows: the budget's trend test on each role's PSS (roles.jsonl).

Statistics only: the same floor-growth estimate and budget judgement as the whole slice
(analysis.budget), per role; no I/O. PSS is read every 10 s at best (and less often when the
sweeps are dear); when a run has too few PSS sweeps for a growth estimate, a role is judged
on its RSS, which every 2 s sweep reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sandbox.analysis.budget import BROWSER, Budget, Startup, estimate_growth, judge_budget
from sandbox.model.role_sweep import RoleSweep, RoleTotals

MB = 2**20
_ABSENT = RoleTotals()  # a role a sweep did not find
#: A role judged on its memory is in at least this share of the sweeps.
MIN_PRESENCE = 0.8


@dataclass
class RoleGrowth:
    """One role over the workload's window: its PSS growth against the budget, and the most
    processes, open fds and threads it had at once (a command's last sweep may come after
    its browser closed)."""

    role: str
    processes: int
    pss_first_mb: float | None  # None: no PSS sweep in the window
    pss_last_mb: float | None
    fds: int
    threads: int
    #: within, over, inconclusive (against the run's budget), or transient: the role's
    #: processes come and go (absent from more than a fifth of the sweeps), so the sum of
    #: their memory is no floor to judge (fresh contexts' renderers)
    outcome: str
    measure: str = "pss"  # the series judged: pss, or rss when too few PSS sweeps
    rate_mb_s: float | None = None
    ci_mb_s: tuple[float, float] | None = None
    mb_per_op: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "processes": self.processes,
                "pss_first_mb": _round(self.pss_first_mb),
                "pss_last_mb": _round(self.pss_last_mb), "fds": self.fds,
                "threads": self.threads, "outcome": self.outcome, "measure": self.measure,
                "rate_mb_s": self.rate_mb_s,
                "ci_mb_s": list(self.ci_mb_s) if self.ci_mb_s else None,
                "mb_per_op": self.mb_per_op}


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _inside(sweeps: list[RoleSweep], window: tuple[float, float],
            field: str | None = None) -> list[RoleSweep]:
    """Sweeps inside ``window``; with ``field``, only those that read it (``pss``: the
    memory sweeps; ``rss``: every sweep of format 2)."""
    return [s for s in sweeps if window[0] <= s.t <= window[1]
            and (field is None or s.reads(field))]


def role_series(sweeps: list[RoleSweep], window: tuple[float, float],
                measure: str = "pss") -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """(t, role -> field -> values) of the sweeps inside ``window`` that read ``measure``
    (``pss`` or ``rss``); a role absent from a sweep counts 0 there."""
    inside = _inside(sweeps, window, measure)
    t = np.asarray([s.t for s in inside], float)
    names = sorted({r for s in inside for r in s.roles})
    series = {name: {key: np.asarray([getattr(s.roles.get(name, _ABSENT), key) or 0
                                      for s in inside], float)
                     for key in ("processes", measure, "fds", "threads")} for name in names}
    return t, series


def count_totals(sweeps: list[RoleSweep], window: tuple[float, float]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(t, {"fds": ..., "threads": ...}) summed over every role, from every sweep."""
    inside = _inside(sweeps, window)
    t = np.asarray([s.t for s in inside], float)
    return t, {key: np.asarray([s.total(key) for s in inside], float)
               for key in ("fds", "threads")}


def role_growth(sweeps: list[RoleSweep], window: tuple[float, float],
                op_interval: float | None, budget: Budget, startup: Startup = BROWSER
                ) -> list[RoleGrowth]:
    """Each role's PSS growth (RSS where PSS was swept too rarely to estimate one), largest
    rate first (roles that cannot be measured last)."""
    t, series = role_series(sweeps, window)
    rss_t, rss_series = role_series(sweeps, window, "rss")
    ops_per_s = 1 / op_interval if op_interval else None
    out = []
    for name in sorted(set(series) | set(rss_series)):
        values = series.get(name) or rss_series[name]
        if name in series:
            pss_mb = series[name]["pss"] / MB
            growth, why = estimate_growth(t, pss_mb, op_interval, startup=startup)
        else:
            pss_mb, growth, why = np.zeros(0), None, "no PSS sweep found this role"
        measure = "pss"
        if growth is None and name in rss_series:
            rss_growth, _ = estimate_growth(rss_t, rss_series[name]["rss"] / MB, op_interval,
                                            startup=startup)
            if rss_growth is not None:
                growth, why, measure, values = rss_growth, None, "rss", rss_series[name]
        present = float(np.mean(values["processes"] > 0)) if len(values["processes"]) else 0
        transient = present < MIN_PRESENCE
        if transient:
            growth = None
        verdict = judge_budget(growth, budget, ops_per_s=ops_per_s, why_none=why,
                               startup=startup)
        out.append(RoleGrowth(
            role=name, processes=int(values["processes"].max()),
            pss_first_mb=float(pss_mb[0]) if len(pss_mb) else None,
            pss_last_mb=float(pss_mb[-1]) if len(pss_mb) else None,
            fds=int(values["fds"].max()), threads=int(values["threads"].max()),
            outcome="transient" if transient else verdict.outcome, measure=measure,
            rate_mb_s=growth.rate if growth else None, ci_mb_s=growth.ci if growth else None,
            mb_per_op=growth.rate * op_interval if growth and op_interval else None))
    return sorted(out, key=lambda g: -np.inf if g.rate_mb_s is None else -g.rate_mb_s)
