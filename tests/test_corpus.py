"""The memory verdict on the real Chromium corpus (bench/corpus, recorded on the project's
host): the results docs/statistics.md reports, pinned. Seeded and in-process: no browser."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sandbox.analysis.budget import Budget

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench_module():
    """bench/calibrate_corpus.py, the script that prints the table (one code path for both)."""
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("calibrate_corpus",
                                                  BENCH / "calibrate_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cal = _bench_module()
TRACES = cal.load_corpus(BENCH / "corpus")
CLEAN = [tr for tr in TRACES if tr["kind"] == "clean"]
LEAKS = [tr for tr in TRACES if tr["kind"] != "clean"]
DEFAULT, TIGHT = Budget(0.1), Budget(0.03)


def clean_windows(length_s: int):
    return [w for tr in CLEAN for w in cal.windows(tr, length_s)]


def test_the_corpus_is_there():
    minutes = sum(tr["duration_s"] for tr in CLEAN) / 60
    assert minutes >= 120 and len(LEAKS) >= 10, f"{minutes:.0f} min clean, {len(LEAKS)} leaks"


@pytest.mark.parametrize("length_s", cal.LENGTHS_S)
def test_clean_real_runs_are_never_over_the_default_budget(length_s):
    outcomes = Counter(cal.judge(w, DEFAULT).outcome for w in clean_windows(length_s))
    assert outcomes["over"] == 0, outcomes


@pytest.mark.parametrize("length_s", cal.LENGTHS_S)
def test_clean_real_runs_exit_zero_through_the_whole_analysis(length_s):
    codes = {w.name: cal.analyze(w.as_run()).exit_code for w in clean_windows(length_s)}
    assert set(codes.values()) <= {0}, codes


@pytest.mark.parametrize(("length_s", "rate", "budget"), [
    (120, 0.25, DEFAULT), (300, 0.15, DEFAULT), (600, 0.1, DEFAULT), (600, 0.05, TIGHT),
])
def test_added_ramps_are_over_budget(length_s, rate, budget):
    windows = clean_windows(length_s)
    if not windows:
        pytest.skip(f"no clean trace of {length_s} s yet")
    over = [cal.judge(w, budget, cal.ramp(w, rate)).outcome == "over" for w in windows]
    assert np.mean(over) >= 0.95, over


def test_tight_budget_slow_leak_false_alarms():
    """Endurance with a 0.03 MB/s budget: at most 5% of clean windows over it."""
    over = [cal.judge(w, TIGHT).outcome == "over" for w in clean_windows(600)]
    assert np.mean(over) <= 0.05, over


def test_quick_runs_that_cannot_tell_say_how_long_would():
    """Quick (2 min) with 0.1 MB/s added, at the budget: many cannot tell (48% on the corpus
    of 2026-12-03; Chromium's own drift of ~0.01 MB/s tips the rest over), and each of those
    names the minutes a run would need."""
    verdicts = [cal.judge(w, DEFAULT, cal.ramp(w, 0.1)) for w in clean_windows(120)]
    undecided = [v for v in verdicts if v.outcome == "inconclusive"]
    assert len(undecided) >= 0.4 * len(verdicts)
    assert all(v.minutes_needed and v.minutes_needed > 2 for v in undecided)


@pytest.mark.parametrize("length_s", cal.LENGTHS_S)
def test_one_off_steps_are_not_growth(length_s):
    rng = np.random.default_rng(1)
    outcomes = Counter(cal.judge(w, DEFAULT, cal.step(w, rng)).outcome
                       for w in clean_windows(length_s))
    assert outcomes["over"] <= 0.03 * sum(outcomes.values()), outcomes


SUSTAINED = ("driver", "jsheap", "pages", "heap")  # leak mechanisms that keep growing


def test_recorded_leaks_at_or_above_the_budget_are_found():
    """Each real sustained leak whose nominal rate is at least 1.5x the default budget and
    that ran 5 minutes or more comes out over budget."""
    judged = {}
    for trace in LEAKS:
        if (trace["mechanism"] in SUSTAINED and (trace["nominal_mb_per_s"] or 0) >= 0.15
                and trace["duration_s"] >= 300):
            (w,) = cal.windows(trace, trace["duration_s"])
            judged[trace["name"]] = cal.judge(w, DEFAULT).outcome
    assert judged and set(judged.values()) == {"over"}, judged


def test_a_recorded_one_off_allocation_is_not_growth():
    for trace in (tr for tr in LEAKS if tr["mechanism"] == "step"):
        (w,) = cal.windows(trace, trace["duration_s"])
        assert cal.judge(w, DEFAULT).outcome == "within", trace["name"]


def test_recorded_sustained_leaks_are_measured_at_their_rate():
    """A leak of known size per operation (kept by the driving script or in a page's JS heap)
    is measured at its nominal rate, plus at most Chromium's own slow growth and the
    allocator's overhead (0.025 MB/s) and 10%."""
    measured = {}
    for trace in (tr for tr in LEAKS if tr["mechanism"] in ("driver", "jsheap")):
        (w,) = cal.windows(trace, trace["duration_s"])
        rate, nominal = cal.judge(w, DEFAULT).growth.rate, trace["nominal_mb_per_s"]
        measured[trace["name"]] = (round(rate, 3), nominal)
        assert -0.1 * nominal <= rate - nominal <= 0.1 * nominal + 0.025, measured
    assert len(measured) >= 4, measured


LEAN_SETTLED = [tr for tr in CLEAN if cal._has_settle_points(tr) and cal.driver_semi_space_mb(tr)]


def test_two_minute_runs_with_settle_points_and_a_lean_driver_tell_1_5x_the_budget():
    """Issue 27's figure: 2-minute windows of the clean traces recorded with settle points and
    the Playwright driver's young generation kept small (20 s start-up, so ~100 s tested):
    >= 95% within and none over when clean, >= 95% over with 0.15 MB/s added, judged as the
    runs are (on their settle samples where they have enough, else on their floors)."""
    table = cal.settle_table(LEAN_SETTLED, rates=(0.0, 0.15))
    for (length, _, on, rate), outcomes in table.items():
        if length != 120 or on != "as the run judges":
            continue
        n = sum(outcomes.values())
        assert n >= 20, (on, outcomes)
        if rate == 0.0:
            assert outcomes["over"] == 0 and outcomes["within"] >= 0.95 * n, (on, outcomes)
        else:
            assert outcomes["over"] >= 0.95 * n, (on, outcomes)


@pytest.mark.parametrize("length_s", [90, 120])
def test_a_lean_driver_start_up_is_over_in_twenty_seconds(length_s):
    """The first window of every clean lean-driver trace, with its real start-up, as the run
    recorded it: within the budget after the 20 s cut, never over."""
    outcomes = Counter(cal.analyze(next(cal.windows(tr, length_s, as_recorded=True)).as_run())
                       .verdict.outcome for tr in CLEAN if cal.driver_semi_space_mb(tr))
    assert outcomes and set(outcomes) == {"within"}, outcomes


UNTIL_DECIDED_GROUPS = {
    "lean driver (the ci scenario's)": lambda tr: cal.driver_semi_space_mb(tr)
    and not cal._has_settle_points(tr),
    "lean driver, settle points": lambda tr: cal.driver_semi_space_mb(tr)
    and cal._has_settle_points(tr),
    "default driver": lambda tr: not cal.driver_semi_space_mb(tr),
}


@pytest.mark.parametrize("group", UNTIL_DECIDED_GROUPS)
def test_until_decided_decides_soon_and_holds_its_error_rates(group):
    """Issue 27's --until-decided figures, simulated on the clean traces as
    `calibrate_corpus --until-decided` does (5-minute cap): clean windows and leaks of 2x the
    budget decided in a median of at most 2 minutes, 1.25x in at most 5; a leak of exactly
    the budget wrongly *over* and wrongly *within* in at most 5% of windows over all looks."""
    chosen = [tr for tr in CLEAN if UNTIL_DECIDED_GROUPS[group](tr)]
    results = cal.until_decided(chosen, 300.0)

    def median_s(multiple: float, outcome: str) -> float:
        runs = results[multiple]
        assert all(o == outcome for o, _ in runs), (multiple, Counter(o for o, _ in runs))
        return float(np.median([t for _, t in runs]))

    assert len(results[0.0]) >= 30, len(results[0.0])
    assert median_s(0.0, "within") <= 120 and median_s(2.0, "over") <= 120
    assert median_s(1.25, "over") <= 300
    at_budget = Counter(o for o, _ in results[1.0])
    n = len(results[1.0])
    assert at_budget["over"] <= 0.05 * n and at_budget["within"] <= 0.05 * n, at_budget
