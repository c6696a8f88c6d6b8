"""Memory growth against a budget: the verdict that decides the exit code.

A screenshot loop is a spike per operation on a steady floor; a leak raises the floor. So the
growth rate is measured on the **floor**: the minimum of each window (a window holds at least
two operation gaps), after the start-up of the workload's kind (:class:`Startup`: Chromium's
floor climbs ~20 MB in its first 30-60 s and falls back; a command's start is its imports) and
before the shutdown (a floor below half the median at the end), by least squares with up to
:data:`MAX_STEPS` level shifts (a one-off allocation, a spare renderer, the GC settling
after start-up: each one shift, not growth), with an autocorrelation-robust (Newey-West)
standard error.

Against a budget (the seed's 0.1 MB/s by default; MB/s, MB/h or MB per operation):

- *within budget*: the rate's upper 95% bound is below the budget;
- *over budget*: its lower 95% bound is above the budget (critical from the seed's 0.5 MB/s);
- *inconclusive*: the bounds hold the budget; the verdict says how many minutes of a run
  this noisy would tell (the interval shrinks with length to the power 1.5).

Statistics only: no I/O, no policy on exit codes (analysis.verdict has that).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np

MB = 2**20
#: Seed table: growth >= 0.1 MB/s is a warning, >= 0.5 MB/s critical.
DEFAULT_BUDGET_MB_S = 0.1
CRITICAL_MB_S = 0.5
Z = NormalDist().inv_cdf(0.975)  # two-sided 95% interval: each end errs 2.5% of the time
#: The budget's decisions use one-sided 95% bounds: "over" errs (a rate exactly at the budget
#: called over) at most 5% of the time, and so does "within" (equivalence testing's two
#: one-sided tests; the bounds are a 90% two-sided interval).
Z_BOUND = NormalDist().inv_cdf(0.95)
MAX_STEPS = 2
#: A level shift is kept when it lowers the residual sum of squares by this many
#: noise variances times ln(n) (a BIC-like penalty, as the change-point search had).
STEP_PENALTY = 12.0
#: A smaller level shift is not a step: Chromium's floor moves by 1-3 MB now and then, and a
#: leak's staircase is made of such shifts; one-off allocations and spare renderers are
#: larger (the corpus: 5 MB recovers 0.131 MB/s for a 0.133 MB/s JS-heap leak that 2-3 MB
#: "steps" had cut to 0.170 or hidden).
MIN_STEP_MB = 5.0
MIN_WINDOWS = 8
MAX_MINUTES_NEEDED = 24 * 60


@dataclass(frozen=True)
class Startup:
    """How runs of one workload kind start, so their start-up is not taken for growth:
    ``cut_s`` seconds are cut at the start (at most ``share`` of a run), and less steady state
    than ``min_tested_s`` after it gives no verdict. ``noise_k`` (MB s^0.5): a clean run's
    standard error times its tested seconds^1.5 (the 90th percentile on the corpus), which says
    how long a run of this kind must be before it can tell."""

    kind: str
    cut_s: float
    share: float
    min_tested_s: float
    noise_k: float
    #: growth from the very start whose lower bound is above this (MB/s) is more than any
    #: start-up of this kind makes: over the budget however short the run (None: no such rule)
    start_growth_mb_s: float | None = None
    #: MB s^0.5: the rate measured over ``T`` tested seconds strays from the run's long-run
    #: rate by ``wander_k / T^1.5`` (one standard error) at least, whatever the fit says: a
    #: browser's floor wanders for minutes (GC, caches, spare renderers), which the fit's
    #: error, made for noise about a line, understates 2-3 times
    wander_k: float = 0.0

    def cut(self, span_s: float) -> float:
        """Seconds cut at the start of a run whose samples span ``span_s``."""
        return float(min(self.cut_s, self.share * span_s))

    def shortest_s(self, limit_mb_s: float, z: float = Z_BOUND) -> float:
        """The shortest run (s, start-up included) whose bounds (rate -/+ ``z`` se), at this
        kind's typical noise and no growth, fall below ``limit_mb_s``: what a run too short to
        measure would need."""
        tested = max(self.min_tested_s, (z * self.noise_k / limit_mb_s) ** (2 / 3))
        whole = tested + self.cut_s
        return float(whole if self.share * whole >= self.cut_s else tested / (1 - self.share))


#: A browser's floor climbs ~20 MB in its first 30-60 s and falls back: a shorter cut gave
#: clean corpus runs of 30-70 s "over" verdicts, so the whole 45 s is cut from any run.
#: Its growth from 10 s on stays below 0.84 MB/s (lower bound) in the corpus's clean starts
#: (bench/calibrate_corpus.py --starts prints both); noise_k: the 90th percentile of its
#: 10-minute windows.
BROWSER = Startup("browser", 45.0, 1.0, 15.0, noise_k=17.5, start_growth_mb_s=1.5,
                  wander_k=14.0)
#: A browser whose Playwright driver keeps V8's young generation at 1 MB
#: (workloads.environment.DRIVER_NODE_OPTIONS, the built-in workload's own): the climb and
#: drop above is the driver's young generation growing and being given back; without it the
#: floor rises for 10-20 s and is level after, so a 2-minute run tests 100 s, not 75 s.
LEAN_DRIVER_BROWSER = replace(BROWSER, cut_s=20.0)
#: The young generation (MB per semi-space) of a driver whose browser starts as
#: LEAN_DRIVER_BROWSER does
LEAN_SEMI_SPACE_MB = 1
#: A command without a browser (a Python or Node program): its start-up is its imports.
COMMAND = Startup("command", 3.0, 0.2, 10.0, noise_k=2.0)
#: A pytest test body (the plugin): short by nature, its own bounds say how sure.
TEST_BODY = Startup("test body", 45.0, 0.4, 1.0, noise_k=2.0)
#: A page's JS heap after a forced GC (--js-heap): no browser start-up in it, only the page's
#: own load and first scripts.
PAGE = Startup("page", 10.0, 0.2, 10.0, noise_k=0.0)
#: A run's first seconds only (a browser's floor jumps 20 MB in them), for the growth no
#: start-up can explain (``Startup.start_growth_mb_s``).
FROM_START = Startup("run", 10.0, 0.5, 8.0, noise_k=0.0)


def browser_startup(node_semi_space_mb: int | None) -> Startup:
    """A browser's start-up, by its Playwright driver's young-generation cap (run.json's
    ``env.node_semi_space_mb``)."""
    return LEAN_DRIVER_BROWSER if node_semi_space_mb == LEAN_SEMI_SPACE_MB else BROWSER


_BUDGET = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(kb|mb|gb)\s*/\s*(s|sec|min|h|op)\s*",
                     re.IGNORECASE)
_SIZE = {"kb": 1 / 1024, "mb": 1.0, "gb": 1024.0}
_PER = {"s": "s", "sec": "s", "min": "min", "h": "h", "op": "op"}


@dataclass(frozen=True)
class Budget:
    """A growth budget as the user wrote it: ``value`` MB per ``per`` (s, min, h or op)."""

    value: float
    per: str = "s"

    def mb_per_s(self, ops_per_s: float | None) -> float | None:
        """The budget in MB/s; per operation needs the run's operation rate (None without)."""
        if self.per == "op":
            return self.value * ops_per_s if ops_per_s else None
        return self.value / {"s": 1.0, "min": 60.0, "h": 3600.0}[self.per]

    def __str__(self) -> str:
        return f"{self.value:g} MB/{self.per}"


DEFAULT_BUDGET = Budget(DEFAULT_BUDGET_MB_S)


def parse_budget(text: str) -> Budget:
    """``0.03MB/s``, ``100MB/h``, ``0.5MB/op``, ``500KB/op``; raises ValueError otherwise."""
    match = _BUDGET.fullmatch(text)
    if not match:
        raise ValueError(f"not a budget: {text!r} (use e.g. 0.1MB/s, 100MB/h, 0.5MB/op)")
    value = float(match.group(1)) * _SIZE[match.group(2).lower()]
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"a budget must be positive: {text!r}")
    return Budget(value, _PER[match.group(3).lower()])


@dataclass
class Growth:
    """The floor's growth rate (MB/s) with its bounds (``ci``), and how it was measured."""

    rate: float
    se: float
    ci: tuple[float, float]
    z: float  # ci = rate -/+ z * se
    noise_mb: float
    window_s: float
    start_s: float
    end_s: float
    n_windows: int
    steps: list[dict[str, float]] = field(default_factory=list)  # {t, size MB}
    fit_line: list[tuple[float, float]] = field(default_factory=list)

    @property
    def span_s(self) -> float:
        return self.end_s - self.start_s


def floor_series(t: np.ndarray, y: np.ndarray, window_s: float, min_count: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The minimum of ``y`` in consecutive windows of ``window_s``, at each window's centre;
    windows with fewer than ``min_count`` samples are dropped."""
    from scipy import stats  # scipy and statsmodels load when a run is judged, not before

    edges = np.arange(t[0], t[-1] + window_s, window_s)
    if len(edges) < 2:
        return np.empty(0), np.empty(0)
    mins = stats.binned_statistic(t, y, statistic="min", bins=edges).statistic
    counts, _ = np.histogram(t, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    keep = np.isfinite(mins) & (counts >= min_count)
    return centres[keep], mins[keep]


def window_for(op_interval_s: float | None, span_s: float) -> float:
    """A window that holds at least two gaps between operations (so its minimum is a floor),
    at least 5 s, and leaves at least :data:`MIN_WINDOWS` * 2 windows in the run."""
    window = max(5.0, 2.0 * (op_interval_s or 0.0))
    return float(min(window, max(span_s / (2 * MIN_WINDOWS), 0.1)))


def drop_teardown(tw: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop trailing windows (or samples) below half the run's median: the workload shutting
    down (its browser closing, the slice emptying), which no leak or GC does."""
    if len(yw) == 0:
        return tw, yw
    half = 0.5 * float(np.median(yw))
    end = len(yw)
    while end > 0 and yw[end - 1] < half:
        end -= 1
    return tw[:end], yw[:end]


def _design(tc: np.ndarray, steps: list[float]) -> np.ndarray:
    cols = [np.ones_like(tc), tc, *((tc >= s).astype(float) for s in steps)]
    return np.column_stack(cols)


def _fit(tc: np.ndarray, y: np.ndarray, steps: list[float]) -> tuple[np.ndarray, float]:
    """Least-squares coefficients (intercept, rate, step sizes) and residual sum of squares."""
    design = _design(tc, steps)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return coef, float(resid @ resid)


def _find_steps(tc: np.ndarray, y: np.ndarray, noise: float, min_step: float
                ) -> list[float]:
    """Greedy level shifts (either sign) of at least ``min_step`` while each pays its
    penalty; two windows on each side and between two shifts."""
    steps: list[float] = []
    n = len(y)
    penalty = STEP_PENALTY * noise**2 * math.log(n)
    for _ in range(MAX_STEPS):
        base = _fit(tc, y, steps)[1]
        best, best_rss = None, base
        for k in range(2, n - 1):
            cand = float(tc[k])
            if any(abs(np.searchsorted(tc, s) - k) < 2 for s in steps):
                continue
            coef, rss = _fit(tc, y, [*steps, cand])
            if abs(coef[-1]) < min_step:
                continue
            if rss < best_rss:
                best, best_rss = cand, rss
        if best is None or base - best_rss < penalty:
            break
        steps.append(best)
    return sorted(steps)


def _noise(y: np.ndarray) -> float:
    """Robust window-to-window noise (normal-scaled MAD of first differences / sqrt 2)."""
    from scipy import stats

    if len(y) < 3:
        return 0.0
    return float(stats.median_abs_deviation(np.diff(y), scale="normal") / math.sqrt(2))


def estimate_growth(t: np.ndarray, y_mb: np.ndarray, op_interval_s: float | None = None,
                    resolution_mb: float = 0.05, startup: Startup = BROWSER,
                    min_step: float = MIN_STEP_MB, z: float = Z_BOUND, per_window: int = 1,
                    as_floors: bool = False) -> tuple[Growth | None, str | None]:
    """The growth rate of the floor of ``y_mb`` (MB, sampled at ``t`` s, the workload's
    window only; a count works too, with its own ``resolution_mb`` and ``min_step``); ``ci``
    is rate -/+ ``z`` standard errors (default: the budget's one-sided 95% bounds).
    ``per_window``: the samples a window needs to give a floor; the window then spans that
    many median sample gaps at least (sparse sweeps: one sweep alone is no floor, and a
    transient in it would pass for growth). ``as_floors``: ``y_mb`` is floors already (settle
    points: memory brought to its floor and measured there), each sample its own window.
    Returns (Growth, None), or (None, why it cannot be measured)."""
    from statsmodels.regression.linear_model import OLS  # not statsmodels.api: all of it

    ok = np.isfinite(t) & np.isfinite(y_mb)
    t, y_mb = np.asarray(t, float)[ok], np.asarray(y_mb, float)[ok]
    if len(t) < 2:
        return None, f"too few samples ({len(t)})"
    span = float(t[-1] - t[0])
    window = window_for(op_interval_s, span)
    if per_window > 1:
        window = max(window, per_window * float(np.median(np.diff(t))))
    keep = t >= t[0] + startup.cut(span)
    if as_floors:
        tw, yw = t[keep], y_mb[keep]
        window = float(np.median(np.diff(tw))) if len(tw) > 1 else 0.0
    else:
        tw, yw = floor_series(t[keep], y_mb[keep], window, per_window) if keep.sum() > 1 \
            else ([], [])
    tw, yw = drop_teardown(np.asarray(tw), np.asarray(yw))
    if len(tw) < MIN_WINDOWS or tw[-1] - tw[0] < startup.min_tested_s:
        tested = tw[-1] - tw[0] if len(tw) else 0.0
        what = "settle points" if as_floors else "windows"
        return None, (f"too short: {tested:.0f} s of steady state after the {startup.kind}'s "
                      f"start-up (need {startup.min_tested_s:.0f} s in {MIN_WINDOWS} {what})")
    tc = tw - tw[0]
    noise = max(_noise(yw), resolution_mb)
    steps = _find_steps(tc, yw, noise, min_step)
    exog = _design(tc, steps)
    maxlags = max(1, int(math.ceil(len(tw) ** (1 / 3))))
    with warnings.catch_warnings():  # a near-singular HAC matrix: its se is then unused
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = OLS(yw, exog).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
    rate = float(fit.params[1])
    # Never claim more precision than the noise of independent windows would give, nor than
    # the kind's floor wanders by over this length.
    floor_se = max(noise / math.sqrt(float(np.sum((tc - tc.mean()) ** 2))),
                   startup.wander_k / max(float(tc[-1]), 1.0) ** 1.5)
    hac_se = float(fit.bse[1])
    se = max(hac_se, floor_se) if math.isfinite(hac_se) else floor_se
    intercept = float(fit.params[0])
    growth = Growth(
        rate=rate, se=se, ci=(float(rate - z * se), float(rate + z * se)), z=z, noise_mb=noise,
        window_s=window,
        start_s=float(tw[0]), end_s=float(tw[-1]), n_windows=len(tw),
        steps=[{"t": float(tw[0] + s), "size": float(fit.params[2 + i])}
               for i, s in enumerate(steps)],
        fit_line=[(float(tw[0]), intercept), (float(tw[-1]), intercept + rate * tc[-1]
                                                + float(sum(fit.params[2:])))],
    )
    return growth, None


@dataclass
class BudgetVerdict:
    """Growth judged against a budget (rates MB/s)."""

    outcome: str  # within, over, inconclusive
    budget: str  # as written, e.g. "100 MB/h"
    budget_mb_s: float | None
    growth: Growth | None
    severity: str = "none"  # over budget: critical or warning; else none
    minutes_needed: float | None = None  # inconclusive: run length that would tell
    reasons: list[str] = field(default_factory=list)


def minutes_needed(growth: Growth, budget_mb_s: float, run_s: float) -> float:
    """Run length (minutes, start-up included) at which the interval, shrinking as
    length^-1.5, would no longer hold the budget, at the rate measured; at most a day."""
    gap = abs(growth.rate - budget_mb_s)
    tested = growth.span_s * (growth.z * growth.se / gap) ** (2 / 3) if gap > 0 else math.inf
    length = min(max(tested + (run_s - growth.span_s), run_s + 60), MAX_MINUTES_NEEDED * 60)
    return float(math.ceil(length / 60))


def _longer(minutes: float) -> str:
    return "more than a day" if minutes >= MAX_MINUTES_NEEDED else f"about {minutes:g} min"


def judge_budget(growth: Growth | None, budget: Budget, *, ops_per_s: float | None,
                 run_s: float | None = None, why_none: str | None = None,
                 critical_mb_s: float = CRITICAL_MB_S, startup: Startup = BROWSER,
                 z: float = Z_BOUND) -> BudgetVerdict:
    """Within, over or inconclusive; see the module docstring. ``run_s``: the length of the
    judged run, start-up included (for the minutes an inconclusive run would need; a run too
    short for any estimate gets its kind's typical figure)."""
    limit = budget.mb_per_s(ops_per_s)
    verdict = BudgetVerdict("inconclusive", str(budget), limit, growth)
    if limit is None:
        verdict.reasons.append(f"a budget per operation ({budget}) needs operations; "
                               "this run has none")
        return verdict
    if growth is None:
        verdict.minutes_needed = float(min(math.ceil(startup.shortest_s(limit, z) / 60),
                                           MAX_MINUTES_NEEDED))
        verdict.reasons.append(f"{why_none or 'no memory series'}; a {startup.kind} run of "
                               f"{_longer(verdict.minutes_needed)} would tell (typical noise)")
        return verdict
    low, high = growth.ci
    if high < limit:
        verdict.outcome = "within"
    elif low > limit:
        verdict.outcome = "over"
        verdict.severity = "critical" if growth.rate >= max(critical_mb_s, limit) \
            else "warning"
    else:
        verdict.minutes_needed = minutes_needed(growth, limit, run_s or growth.end_s)
        verdict.reasons.append(
            f"the rate's bounds {low:+.3f}..{high:+.3f} MB/s hold the budget "
            f"{limit:.3g} MB/s; a run of {_longer(verdict.minutes_needed)} this noisy would "
            "tell")
    return verdict


def judge_memory(t: np.ndarray, y_mb: np.ndarray, budget: Budget, *,
                 op_interval_s: float | None, startup: Startup, run_s: float | None = None,
                 critical_mb_s: float = CRITICAL_MB_S, z: float = Z_BOUND,
                 as_floors: bool = False) -> BudgetVerdict:
    """THE memory verdict of a run (every command and the pytest plugin reach it through
    analysis.core): the floor's growth after the start-up of its ``startup`` kind against the
    budget, or, where that does not say *over*, a growth from the very start faster than any
    start-up of that kind makes (``Startup.start_growth_mb_s``), which is over however short
    the run. ``z``: the bounds' width (a sequential run's boundary, analysis.sequential);
    ``as_floors``: the samples are settle points."""
    ops_per_s = 1 / op_interval_s if op_interval_s else None
    growth, why = estimate_growth(t, y_mb, op_interval_s, startup=startup, z=z,
                                  as_floors=as_floors)
    verdict = judge_budget(growth, budget, ops_per_s=ops_per_s, run_s=run_s, why_none=why,
                           critical_mb_s=critical_mb_s, startup=startup, z=z)
    limit = verdict.budget_mb_s
    if verdict.outcome == "over" or startup.start_growth_mb_s is None or limit is None:
        return verdict
    whole, _ = estimate_growth(t, y_mb, op_interval_s, startup=FROM_START, z=z,
                               as_floors=as_floors)
    if whole is None or whole.ci[0] <= max(startup.start_growth_mb_s, limit):
        return verdict
    over = judge_budget(whole, budget, ops_per_s=ops_per_s, run_s=run_s,
                        critical_mb_s=critical_mb_s, startup=startup, z=z)
    over.reasons.append(f"grew {whole.rate:.3f} MB/s from the start (lower bound "
                        f"{whole.ci[0]:.3f}): more than any {startup.kind} start-up makes "
                        f"({startup.start_growth_mb_s:g} MB/s), over the budget even in a "
                        "run this short")
    return over


def too_short(workload: str, duration_s: float, budget: Budget,
              ops_per_minute: float | None, driver_semi_space_mb: int | None = None
              ) -> str | None:
    """One line saying, before a run starts, that ``duration_s`` cannot give a verdict
    against ``budget`` for the workload (``screenshot``: a browser, its driver's young
    generation capped at ``driver_semi_space_mb``; ``command``: a browser or not), with the
    shortest duration that can; None when it can."""
    limit = budget.mb_per_s(ops_per_minute / 60 if ops_per_minute else None)
    if limit is None:
        return None
    starts = browser_startup(driver_semi_space_mb)
    browser = math.ceil(starts.shortest_s(limit))
    if workload == "screenshot":
        if duration_s >= browser:
            return None
        return (f"a {duration_s:g} s run of the screenshot workload is too short for a "
                f"verdict against {budget}: it needs {browser} s at least (--duration "
                f"{browser}s); this one will say inconclusive unless it grows faster than "
                f"{starts.start_growth_mb_s:g} MB/s")
    command = math.ceil(COMMAND.shortest_s(limit))
    if duration_s < command:
        return (f"a {duration_s:g} s run is too short for a verdict against {budget}: a "
                f"command needs {command} s at least, {browser} s if it starts a browser")
    if duration_s < browser:
        return (f"a {duration_s:g} s run can judge a command against {budget}, but not one "
                f"that starts a browser: that needs {browser} s at least")
    return None
