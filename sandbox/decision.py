"""The looks of an ``--until-decided`` run: at each planned time the runner asks for the
memory verdict so far (the same judgement every reader of the run directory reaches, with
the plan's sequential bounds) and stops the workload once it is *within* or *over*."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.analysis.budget import COMMAND, browser_startup, parse_budget
from sandbox.analysis.core import MemoryJudgement, judge_run_memory
from sandbox.analysis.sequential import LookPlan, plan, time_to_decision
from sandbox.config import RunConfig
from sandbox.runreader import RunReadError, read_run
from sandbox.workloads.environment import driver_semi_space_mb

log = logging.getLogger("sandbox.decision")

DECIDED = ("within", "over")


@dataclass
class Look:
    """What the latest look saw, for the progress line."""

    at_s: float
    outcome: str
    bounds: tuple[float, float] | None
    limit_mb_s: float | None
    eta_s: float | None  # seconds more until a decision at the rate measured

    def line(self) -> str:
        if self.bounds is None:
            return f"look at {self.at_s:.0f} s: {self.outcome}"
        lo, hi = self.bounds
        eta = "" if self.eta_s is None or self.outcome in DECIDED else \
            f", decided in ~{math.ceil(self.eta_s / 15) * 15:.0f} s"
        return (f"bounds {lo:+.3f}..{hi:+.3f} MB/s vs {self.limit_mb_s:g}: "
                f"{self.outcome}{eta}")


class DecisionWatch:
    """Looks at the run in ``run_dir`` as :attr:`plan` says; ``config.duration_s`` is the cap."""

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        budget = parse_budget(config.budget)
        screenshots = config.workload == "screenshot"
        limit = budget.mb_per_s(config.operations_per_minute / 60 if screenshots else None)
        if limit is None:  # RunConfig.validate refuses it
            raise ValueError(f"--until-decided needs a budget per time, not {budget}")
        self.run_dir = run_dir
        startup = browser_startup(driver_semi_space_mb(config)) if screenshots else COMMAND
        self.plan: LookPlan = plan(startup, config.duration_s, limit)
        self._looks = self.plan.looks
        self.taken = 0
        self.latest: Look | None = None
        self.decided: MemoryJudgement | None = None

    def due(self, now_s: float) -> bool:
        """Whether a planned look (before the cap: the cap's look is the run's own end) is
        due at ``now_s`` (seconds since the sampler started)."""
        return self.taken < len(self._looks) - 1 and now_s >= self._looks[self.taken]

    def look(self, now_s: float) -> bool:
        """Judge the run up to ``now_s``; True when the verdict is decided."""
        now_s = round(now_s, 3)  # as run.json keeps it: a re-read judges the same samples
        self.taken += 1
        try:
            judged = judge_run_memory(read_run(self.run_dir, events=False), upto_s=now_s,
                                      boundary=self.plan.z)
        except RunReadError as exc:  # the run's files are the runner's own; say and go on
            log.warning("look at %.0f s: %s", now_s, exc)
            return False
        verdict = judged.verdict
        growth = verdict.growth
        eta = None
        if growth is not None and verdict.budget_mb_s is not None:
            eta = time_to_decision(growth.rate, growth.se, growth.span_s, verdict.budget_mb_s,
                                   growth.z)
        self.latest = Look(now_s, verdict.outcome, growth.ci if growth else None,
                           verdict.budget_mb_s, eta)
        log.info("%s", self.latest.line())
        if verdict.outcome in DECIDED:
            self.decided = judged
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        """run.json's ``decision``: the plan, the looks taken, the deciding one."""
        doc: dict[str, Any] = {**self.plan.to_dict(), "looks": self.taken}
        if self.decided is not None and self.latest is not None:
            doc |= {"decided_at_s": self.latest.at_s,
                    "outcome": self.decided.verdict.outcome}
        return doc
