"""What every report format says alike: how long an inconclusive run should have been, the
note beside the seed's rule, and whether operations apply to the run's workload."""

from __future__ import annotations

import math

from sandbox.analysis import Verdict

# shows_operations: the reports' own name for analysis.checks' rule
from sandbox.analysis.checks import shows_operations as shows_operations

DAY_MIN = 1440
#: Beside the seed's keys (memory_trend.leak_severity, overall_success...): they do not decide.
LEGACY_NOTE = ("The seed's rule (an OLS slope of the whole series and its leak_severity) is "
               "reported for comparison only: it does not decide the exit code; the memory "
               "verdict against the budget does.")


def minutes_needed(v: Verdict) -> str:
    """How long a run would need to give a verdict: ``run about N min``, ``longer than a
    day``, or that it could not be estimated."""
    n = v.minutes_needed
    if n is None or not math.isfinite(n):
        return "the minutes needed could not be estimated"
    if n >= DAY_MIN:
        return "longer than a day"
    return f"run about {max(1, math.ceil(n))} min"


def measured_on(v: Verdict) -> str:
    """What the rate was measured on: ``floor`` or ``N settle points``."""
    return f"{v.settle_points} settle points" if v.measured_on == "settle points" else "floor"


def decided(v: Verdict, decision: dict) -> str:
    """An --until-decided run's line: at which look it was decided, or that the cap came
    first, and the bounds' width over all looks."""
    looks = decision.get("looks", 0)
    z = f"bounds ±{v.z:.2f} se over all looks"
    if v.decided_at_s is not None:
        return f"Until decided: {v.outcome} at {v.decided_at_s:.0f} s (look {looks}; {z})"
    return f"Until decided: not decided by the cap ({looks} looks; {z})"
