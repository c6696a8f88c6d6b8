"""Which process role's memory grows: the budget's trend test on each role's PSS (roles.jsonl).

Statistics only: the same floor-growth estimate and budget judgement as the whole slice
(analysis.budget), per role; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sandbox.analysis.budget import Budget, estimate_growth, judge_budget

MB = 2**20


@dataclass
class RoleGrowth:
    """One role over the workload's window: its PSS growth against the budget, and the most
    processes, open fds and threads it had at once (a command's last sweep may come after
    its browser closed)."""

    role: str
    processes: int
    pss_first_mb: float
    pss_last_mb: float
    fds: int
    threads: int
    outcome: str  # within, over, inconclusive (against the run's budget)
    rate_mb_s: float | None = None
    ci_mb_s: tuple[float, float] | None = None
    mb_per_op: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "processes": self.processes,
                "pss_first_mb": round(self.pss_first_mb, 3),
                "pss_last_mb": round(self.pss_last_mb, 3), "fds": self.fds,
                "threads": self.threads, "outcome": self.outcome, "rate_mb_s": self.rate_mb_s,
                "ci_mb_s": list(self.ci_mb_s) if self.ci_mb_s else None,
                "mb_per_op": self.mb_per_op}


def _inside(sweeps: list[dict[str, Any]], window: tuple[float, float], memory: bool
            ) -> list[dict[str, Any]]:
    """Sweeps inside ``window``; ``memory``: only those that read memory (every 10 s)."""
    return [s for s in sweeps if window[0] <= s.get("t", -np.inf) <= window[1]
            and (not memory or any("pss" in row for row in s["roles"].values()))]


def role_series(sweeps: list[dict[str, Any]], window: tuple[float, float]
                ) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """(t, role -> field -> values) of the memory sweeps inside ``window``; a role absent
    from a sweep counts 0 there."""
    inside = _inside(sweeps, window, memory=True)
    t = np.asarray([s["t"] for s in inside], float)
    names = sorted({r for s in inside for r in s["roles"]})
    series = {name: {key: np.asarray([s["roles"].get(name, {}).get(key, 0) for s in inside],
                                     float)
                     for key in ("processes", "pss", "fds", "threads")} for name in names}
    return t, series


def count_totals(sweeps: list[dict[str, Any]], window: tuple[float, float]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(t, {"fds": ..., "threads": ...}) summed over every role, from every sweep."""
    inside = _inside(sweeps, window, memory=False)
    t = np.asarray([s["t"] for s in inside], float)
    return t, {key: np.asarray([sum(row.get(key, 0) for row in s["roles"].values())
                                for s in inside], float) for key in ("fds", "threads")}


def role_growth(sweeps: list[dict[str, Any]], window: tuple[float, float],
                op_interval: float | None, budget: Budget) -> list[RoleGrowth]:
    """Each role's PSS growth, largest rate first (roles that cannot be measured last)."""
    t, series = role_series(sweeps, window)
    ops_per_s = 1 / op_interval if op_interval else None
    out = []
    for name, values in series.items():
        pss_mb = values["pss"] / MB
        growth, why = estimate_growth(t, pss_mb, op_interval)
        verdict = judge_budget(growth, budget, ops_per_s=ops_per_s, why_none=why)
        out.append(RoleGrowth(
            role=name, processes=int(values["processes"].max()),
            pss_first_mb=float(pss_mb[0]), pss_last_mb=float(pss_mb[-1]),
            fds=int(values["fds"].max()), threads=int(values["threads"].max()),
            outcome=verdict.outcome,
            rate_mb_s=growth.rate if growth else None, ci_mb_s=growth.ci if growth else None,
            mb_per_op=growth.rate * op_interval if growth and op_interval else None))
    return sorted(out, key=lambda g: -np.inf if g.rate_mb_s is None else -g.rate_mb_s)
