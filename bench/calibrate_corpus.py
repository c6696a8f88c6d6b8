"""Trace-driven calibration of the memory verdict on the real Chromium corpus (bench/corpus).

Clean traces are cut into 2, 5 and 10 minute windows (a window starts where a run would: with
the browser's start-up). To each window a known ramp (0.02-0.5 MB/s, from the first operation
on) or a one-off step (40-60 MB at a random point of the middle) is added to anon, and the
verdict of sandbox.analysis.budget is taken against the default budget (0.1 MB/s) and a tight
one (0.03 MB/s). The real leak traces are judged as recorded. Prints the share of windows
over budget, within and inconclusive per cell, the exit codes the whole analysis (memory,
process and temp-file counts) gives the clean windows, and each leak trace's verdict.

    .venv/bin/python bench/calibrate_corpus.py [--corpus bench/corpus] [--seed 1] [--markdown]

``--markdown`` prints the tables of docs/statistics.md instead. ``--until-decided`` simulates
``sandbox run --until-decided`` on windows of the clean traces (a window every 30 s, capped at
5 minutes) with 0, 1, 1.25 and 2 times the budget added: the time to a decision and the
share decided wrongly over all looks, with the floors and, where the traces have them, the
settle points.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_io import driver_semi_space_mb, load_trace, workload_window  # noqa: E402

from sandbox.analysis import analyze, sequential  # noqa: E402
from sandbox.analysis.budget import (  # noqa: E402
    BROWSER,
    DEFAULT_BUDGET,
    FROM_START,
    Budget,
    BudgetVerdict,
    Startup,
    browser_startup,
    estimate_growth,
    judge_budget,
    judge_memory,
)
from sandbox.analysis.checks import FULL_RECORD_SHARE  # noqa: E402
from sandbox.analysis.core import judge_run_memory  # noqa: E402
from sandbox.model.cleanup import CleanupFacts  # noqa: E402
from sandbox.model.operation import JsHeapMeasurement, Operation  # noqa: E402
from sandbox.model.role_sweep import RoleSweep  # noqa: E402
from sandbox.model.run_info import RunInfo  # noqa: E402
from sandbox.runreader import RunData  # noqa: E402

MB = 2**20
LENGTHS_S = (120, 300, 600)
RAMPS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5)
BUDGETS = (Budget(0.1), Budget(0.03))


@dataclass
class Window:
    """A stretch of a real trace as one run of ``length`` seconds would have seen it."""

    name: str
    t: np.ndarray  # s, from the window's start
    anon_mb: np.ndarray
    op_times: np.ndarray  # s, from the window's start
    columns: dict[str, np.ndarray]  # every stored sample column, same rows as t
    roles: list[dict] = field(default_factory=list)  # roles.jsonl records, t from the start
    js_heap: list[dict] = field(default_factory=list)  # jsheap records, t from the start
    workload: str = "builtin"  # builtin (operations.jsonl) or user-script (a command run)
    node_semi_space_mb: int | None = None  # the Playwright driver's young generation cap

    @property
    def startup(self) -> Startup:
        """The browser start-up its run is judged with (run.json env.node_semi_space_mb)."""
        return browser_startup(self.node_semi_space_mb)

    def as_run(self) -> RunData:
        """The window as the run directory analyze() reads (cleanup verified and clean): a
        built-in window with its operations, a user script's as the command run it was (no
        operations.jsonl: the whole window is judged, start-up included)."""
        samples = {k: np.asarray([np.nan if v is None else v for v in col], float)
                   for k, col in self.columns.items()}
        samples["t"] = self.t
        command = self.workload != "builtin"
        ops = [] if command else [Operation(op=i, t=float(x), ok=True)
                                  for i, x in enumerate(self.op_times)]
        cleanup = CleanupFacts(available=True, cleanup_successful=True)
        info = RunInfo.from_dict({"run_id": self.name, "started": 0.0,
                                  "workload": "command" if command else "screenshot",
                                  "config": {"command": ["python3"]} if command else {},
                                  "env": {"node_semi_space_mb": self.node_semi_space_mb},
                                  "workload_end_t": float(self.t[-1]) if len(self.t) else None})
        roles = [sweep for r in self.roles if (sweep := RoleSweep.from_record(r)) is not None]
        heap = [JsHeapMeasurement(t=r["t"], used_bytes=r.get("used_bytes"),
                                  dom_nodes=r.get("dom_nodes")) for r in self.js_heap]
        return RunData(Path(self.name), run=info, samples=samples, operations=ops,
                       cleanup=cleanup, sample_source="cgroup-v1", roles=roles, js_heap=heap)

    @property
    def op_interval(self) -> float | None:
        return float(np.median(np.diff(self.op_times))) if len(self.op_times) > 2 else None


def _columns(trace: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = trace["samples"]
    t = np.asarray(s["t"], float)
    anon = np.asarray([np.nan if v is None else v for v in s["anon"]], float) / MB
    ops = np.asarray(sorted(o["t"] for o in trace["operations"]), float)
    return t, anon, ops


def windows(trace: dict, length_s: float, as_recorded: bool = False) -> Iterator[Window]:
    """Consecutive windows of ``length_s`` of a trace's workload span (the first with the
    start-up, as a run of that length would have it). ``as_recorded``: a user script's
    windows as the command run would see them: the first from the harness's start (browser
    launch included), each ``length_s`` plus the harness's slack."""
    t, anon, ops = _columns(trace)
    lo, hi = workload_window(trace)
    command = as_recorded and trace["workload"] != "builtin"
    start = float(t[0]) if command else lo
    while start + 0.97 * length_s <= hi:  # a run of that length: its window ends early
        end = start + length_s
        inside = (t >= start) & (t <= end)
        ops_in = ops[(ops >= start) & (ops <= end)]
        columns = {k: np.asarray(v, dtype=object)[inside] for k, v in trace["samples"].items()}
        roles = [{**r, "t": r["t"] - start} for r in trace.get("roles", ())
                 if start <= r["t"] <= end]
        heap = [{**r, "t": r["t"] - start} for r in trace.get("js_heap", ())
                if start <= r["t"] <= end]
        yield Window(trace["name"], t[inside] - start, anon[inside], ops_in - start, columns,
                     roles, heap, trace["workload"] if as_recorded else "builtin",
                     driver_semi_space_mb(trace))
        start = end


def judge(w: Window, budget: Budget, extra_mb: np.ndarray | None = None) -> BudgetVerdict:
    """The verdict on a window, with ``extra_mb`` added to its anon (a synthetic leak)."""
    y = w.anon_mb if extra_mb is None else w.anon_mb + extra_mb
    growth, why = estimate_growth(w.t, y, w.op_interval, startup=w.startup)
    rate = 1 / w.op_interval if w.op_interval else None
    return judge_budget(growth, budget, ops_per_s=rate, why_none=why)


def ramp(w: Window, rate_mb_s: float) -> np.ndarray:
    start = w.op_times[0] if len(w.op_times) else 0.0
    return rate_mb_s * np.clip(w.t - start, 0, None)


def step(w: Window, rng: np.random.Generator) -> np.ndarray:
    at = rng.uniform(0.2, 0.8) * w.t[-1]
    return rng.uniform(40, 60) * (w.t >= at)


def sliding_windows(trace: dict, length_s: float, every_s: float) -> Iterator[Window]:
    """Windows of ``length_s`` starting every ``every_s`` (the first with the start-up)."""
    lo, hi = workload_window(trace)
    start = lo
    while start + length_s <= hi + 1:
        shifted = {**trace, "operations": [o for o in trace["operations"] if o["t"] >= start]}
        yield next(windows(shifted, length_s))
        start += every_s


def _with_leak(w: Window, rate_mb_s: float, settled: bool) -> RunData:
    """The window as a run with ``rate_mb_s`` added to every memory signal (from its first
    operation), judged on its settle points or (``settled`` False) with them dropped."""
    base = w.as_run()
    samples = dict(base.samples)
    for signal in ("anon", "working_set", "memory_current"):
        if signal in samples:  # whichever the verdict reads
            samples[signal] = samples[signal] + ramp(w, rate_mb_s) * MB
    if not settled:
        samples.pop("settle", None)
    return RunData(base.path, run=base.run, operations=base.operations, roles=base.roles,
                   samples=samples)


def _has_settle_points(trace: dict) -> bool:
    """Whether the trace was recorded with settle points (format 3, settling)."""
    return any(v is not None for v in trace["samples"].get("settle", ()))


def settle_table(traces: list[dict], rates: tuple[float, ...] = (0.0, 0.1, 0.15, 0.25)
                 ) -> dict[tuple[int, str, str, float], Counter]:
    """(length, driver start-up, judged on, added MB/s) -> outcomes over the windows of the
    clean traces recorded with settle points, judged as the run is (on its settle samples
    where it has enough, else on its floors), on their floors (the settle samples dropped)
    and on the settle samples alone."""
    table: dict[tuple[int, str, str, float], Counter] = defaultdict(Counter)
    for trace in (tr for tr in traces if tr["kind"] == "clean" and _has_settle_points(tr)):
        for length in LENGTHS_S:
            for w in windows(trace, length):
                driver = _driver(w)
                for rate in rates:
                    floors = judge_run_memory(_with_leak(w, rate, settled=False), DEFAULT_BUDGET)
                    table[(length, driver, "floors", rate)][floors.verdict.outcome] += 1
                    run = _with_leak(w, rate, settled=True)
                    as_run = judge_run_memory(run, DEFAULT_BUDGET).verdict.outcome
                    table[(length, driver, "as the run judges", rate)][as_run] += 1
                    t, y = run.samples["t"], run.samples["anon"] / MB
                    points = np.isfinite(run.samples["settle"]) & np.isfinite(y)
                    on_points = judge_memory(t[points], y[points], DEFAULT_BUDGET,
                                             op_interval_s=w.op_interval, startup=w.startup,
                                             as_floors=True)
                    table[(length, driver, "settle points", rate)][on_points.outcome] += 1
    return table


def _driver(w: Window) -> str:
    """The start-up a window's run is judged with, as the tables name it."""
    return f"lean ({w.startup.cut_s:g} s cut)" if w.node_semi_space_mb else \
        f"default ({w.startup.cut_s:g} s cut)"


def settle_lines(traces: list[dict]) -> list[str]:
    """The settle-point table of docs/statistics.md."""
    lines = ["| run | driver | judged on | windows | clean: within / over | +0.1 MB/s over | "
             "+0.15 MB/s over | +0.25 MB/s over |", "|---|---|---|---|---|---|---|---|"]
    table = settle_table(traces)
    drivers = sorted({driver for _, driver, _, _ in table})
    for length in LENGTHS_S:
        for driver in drivers:
            for on in ("as the run judges", "floors", "settle points"):
                clean = table.get((length, driver, on, 0.0))
                if not clean:
                    continue
                n = sum(clean.values())
                over = [table[(length, driver, on, r)]["over"] / n for r in (0.1, 0.15, 0.25)]
                lines.append(f"| {length // 60} min | {driver} | {on} | {n} | "
                             f"{clean['within'] / n:.0%} / {clean['over'] / n:.0%} | "
                             + " | ".join(f"{o:.0%}" for o in over) + " |")
    return lines


def until_decided(traces: list[dict], cap_s: float = 300.0, every_start_s: float = 30.0,
                  multiples: tuple[float, ...] = (0.0, 1.0, 1.25, 2.0)
                  ) -> dict[float, list[tuple[str, float]]]:
    """multiple of the budget -> (outcome, time of the deciding look or the cap) per window
    of the clean traces, looked at as an --until-decided run is. A clean window is judged as
    recorded (0); for a leak, its own drift over the whole window (Chromium's 0.01-0.03 MB/s)
    is taken out first and the multiple of the budget put in, so the window grows at exactly
    that rate with the real trace's noise. A trace with settle points is judged with them."""
    limit = DEFAULT_BUDGET.value
    out: dict[float, list[tuple[str, float]]] = defaultdict(list)
    for trace in (tr for tr in traces if tr["kind"] == "clean"):
        settled = _has_settle_points(trace)
        look_plan = sequential.plan(browser_startup(driver_semi_space_mb(trace)), cap_s, limit)
        for w in sliding_windows(trace, cap_s, every_start_s):
            for multiple in multiples:
                added = 0.0
                if multiple:
                    drift = estimate_growth(w.t, w.anon_mb, w.op_interval,
                                            startup=w.startup)[0]
                    added = multiple * limit - (drift.rate if drift else 0.0)
                run = _with_leak(w, added, settled)
                for at in look_plan.looks:
                    judged = judge_run_memory(run, DEFAULT_BUDGET, upto_s=at,
                                              boundary=look_plan.z)
                    outcome = judged.verdict.outcome
                    if outcome != "inconclusive" or at == look_plan.looks[-1]:
                        out[multiple].append((outcome, at))
                        break
    return out


def until_decided_lines(traces: list[dict], cap_s: float = 300.0) -> list[str]:
    """The --until-decided table: per added growth, windows, median and 90th percentile
    time to a decision, and the shares decided within / over / not by the cap."""
    zs = {startup.cut_s: sequential.plan(startup, cap_s, DEFAULT_BUDGET.value).z
          for startup in {browser_startup(driver_semi_space_mb(tr)) for tr in traces}}
    lines = [f"| clean traces | added | windows | median s to decide | 90th pct s | within | "
             f"over | not decided by the {cap_s / 60:g} min cap |",
             "|---|---|---|---|---|---|---|---|"]
    groups = {"default driver": lambda tr: not _has_settle_points(tr)
              and not driver_semi_space_mb(tr),
              "default driver, settle points": lambda tr: _has_settle_points(tr)
              and not driver_semi_space_mb(tr),
              "lean driver (the ci scenario's)": lambda tr: not _has_settle_points(tr)
              and bool(driver_semi_space_mb(tr)),
              "lean driver, settle points": lambda tr: _has_settle_points(tr)
              and bool(driver_semi_space_mb(tr))}
    for group, member in groups.items():
        chosen = [tr for tr in traces if member(tr)]
        for multiple, results in sorted(until_decided(chosen, cap_s).items()):
            outcomes = Counter(o for o, _ in results)
            times = [t for o, t in results if o != "inconclusive"]
            n = len(results)
            p50, p90 = (f"{np.percentile(times, q):.0f}" if times else "n/a" for q in (50, 90))
            lines.append(f"| {group} | "
                         f"{multiple:g}x budget | {n} | {p50} | {p90} | "
                         f"{outcomes['within'] / n:.0%} | {outcomes['over'] / n:.0%} | "
                         f"{outcomes['inconclusive'] / n:.0%} |")
    bounds = ", ".join(f"±{z:.2f} se with the {cut:g} s start-up cut"
                       for cut, z in sorted(zs.items()))
    lines.append(f"\nBounds at every look: the Pocock boundary of the plan's looks ({bounds}; "
                 f"one look: 1.645).")
    return lines


def load_corpus(corpus: Path) -> list[dict]:
    return [load_trace(p) for p in sorted(corpus.glob("*.json.gz"))]


def clean_table(traces: list[dict], seed: int) -> dict[tuple, Counter]:
    """(length, added, budget) -> Counter of outcomes over all clean windows."""
    rng = np.random.default_rng(seed)
    table: dict[tuple, Counter] = defaultdict(Counter)
    for trace in (tr for tr in traces if tr["kind"] == "clean"):
        for length in LENGTHS_S:
            for w in windows(trace, length):
                for budget in BUDGETS:
                    for rate in RAMPS:
                        outcome = judge(w, budget, ramp(w, rate) if rate else None).outcome
                        table[(length, f"+{rate:g} MB/s", str(budget))][outcome] += 1
                    outcome = judge(w, budget, step(w, rng)).outcome
                    table[(length, "step 40-60 MB", str(budget))][outcome] += 1
    return table


def clean_exit_codes(traces: list[dict]) -> dict[int, Counter]:
    """length -> Counter of the exit codes analyze() gives the clean windows (cleanup
    verified and clean, so only memory and count findings can fail them)."""
    table: dict[int, Counter] = defaultdict(Counter)
    for trace in (tr for tr in traces if tr["kind"] == "clean"):
        for length in LENGTHS_S:
            for w in windows(trace, length):
                result = analyze(w.as_run())
                table[length][result.exit_code] += 1
                if result.exit_code:
                    print(f"  clean {w.name} {length}s window: exit {result.exit_code}: "
                          + "; ".join(f.message for f in result.findings
                                      if f.level != "note"))
    return table


#: What each check is called in the tables: a finding's check, or a role over the budget.
CHECK_COLUMNS = ("trend", "processes", "fds", "threads", "files", "js_heap", "roles")
#: The check a recorded leak's mechanism should trip.
EXPECTED_CHECK = {"driver": "trend", "jsheap": "trend", "pages": "trend", "cache": "trend",
                  "inject-heap": "trend", "fds": "fds", "threads": "threads",
                  "tmpfile": "files", "procs": "processes"}


def checks_fired(w: Window) -> tuple[set[str], int, list[str]]:
    """The checks that warn or fail on a window analysed as recorded (memory, counts, roles
    over the budget), the exit code, and the messages."""
    result = analyze(w.as_run())
    fired = {f.check for f in result.findings if f.level in ("warning", "critical")}
    if any(g.outcome == "over" for g in result.roles):
        fired.add("roles")
    messages = [f.message for f in result.findings if f.level in ("warning", "critical")]
    messages += [f"role {g.role} {g.measure} over the budget ({g.rate_mb_s:.3f} MB/s)"
                 for g in result.roles if g.outcome == "over"]
    return fired, result.exit_code, messages


def clean_checks(traces: list[dict], verbose: bool = False) -> dict[int, Counter]:
    """length -> Counter of the checks that fired on clean windows as recorded ("windows":
    how many; "exit 0": how many passed)."""
    table: dict[int, Counter] = defaultdict(Counter)
    for trace in (tr for tr in traces if tr["kind"] == "clean"):
        for length in LENGTHS_S:
            for w in windows(trace, length, as_recorded=True):
                fired, code, messages = checks_fired(w)
                table[length]["windows"] += 1
                table[length]["exit 0"] += code == 0
                table[length]["with roles"] += bool(w.roles)
                table[length].update(fired)
                if verbose and fired:
                    print(f"  clean {w.name} {length}s: exit {code}: " + "; ".join(messages))
    return table


def leak_recall(traces: list[dict]) -> list[tuple[str, str, int, int, int, str]]:
    """(trace, expected check, length, windows it fired on, windows, the other checks that
    fired) for each recorded leak and run length (whole recordings as one run; shorter windows
    as recorded)."""
    rows = []
    for trace in (tr for tr in traces if tr["kind"] == "leak"):
        expected = "js_heap" if trace.get("js_heap") else EXPECTED_CHECK.get(trace["mechanism"])
        if expected is None:
            continue
        for length in (*LENGTHS_S, None):
            span = length or trace["duration_s"]
            if length and length >= trace["duration_s"]:
                continue
            fired = [checks_fired(w)[0] for w in windows(trace, span, as_recorded=True)]
            if fired:
                others = set().union(*fired) - {expected}
                rows.append((trace["name"], expected, int(span),
                             sum(expected in f for f in fired), len(fired),
                             ", ".join(sorted(others)) or "none"))
    return rows


def checks_markdown(traces: list[dict]) -> str:
    """The per-check tables of docs/statistics.md."""
    table = clean_checks(traces)
    lines = ["| run | clean windows (with role sweeps) | exit 0 | "
             + " | ".join(CHECK_COLUMNS) + " |", "|---|---|---|" + "---|" * len(CHECK_COLUMNS)]
    for length in LENGTHS_S:
        c = table[length]
        lines.append(f"| {length // 60} min | {c['windows']} ({c['with roles']}) | "
                     f"{c['exit 0']} | " + " | ".join(str(c[k]) for k in CHECK_COLUMNS) + " |")
    lines += ["", "| recorded leak | nominal | check | run | found | other checks that fired |",
              "|---|---|---|---|---|---|"]
    nominal = {tr["name"]: _nominal(tr) for tr in traces}
    for name, check, span, hits, n, others in leak_recall(traces):
        lines.append(f"| {name} | {nominal[name]} | {check} | {span / 60:g} min | {hits}/{n} | "
                     f"{others} |")
    return "\n".join(lines)


START_LENGTHS_S = (20, 30, 45, 60, 90)


def starts(traces: list[dict]) -> tuple[dict[int, float], dict[int, float]]:
    """What the browser kind's constants rest on: per run length, the highest lower bound of
    growth from the 10th second (FROM_START) over the clean traces' starts, as recorded
    (``Startup.start_growth_mb_s`` must stay well above it); per window length, the 90th
    percentile of a clean window's standard error times its tested seconds^1.5
    (``Startup.noise_k``)."""
    highest: dict[int, float] = {}
    for length in START_LENGTHS_S:
        lows = []
        for trace in (tr for tr in traces if tr["kind"] == "clean"):
            w = next(windows(trace, length, as_recorded=True))
            g, _ = estimate_growth(w.t, w.anon_mb, w.op_interval if w.workload == "builtin"
                                   else None, startup=FROM_START)
            if g is not None:
                lows.append(g.ci[0])
        highest[length] = max(lows)
    noise: dict[int, float] = {}
    for length in LENGTHS_S:
        ks = []
        for trace in (tr for tr in traces if tr["kind"] == "clean"):
            for w in windows(trace, length, as_recorded=True):
                g, _ = estimate_growth(w.t, w.anon_mb, w.op_interval, startup=w.startup)
                if g is not None:
                    ks.append(g.se * g.span_s ** 1.5)
        noise[length] = float(np.percentile(ks, 90))
    return highest, noise


CUTS_S = (10.0, 15.0, 20.0, 25.0, 30.0)


def cut_lines(traces: list[dict], lengths: tuple[int, ...] = (60, 90, 120)) -> list[str]:
    """What LEAN_DRIVER_BROWSER's cut rests on: the first window of every clean trace whose
    driver kept a small young generation, as recorded (its real start-up), judged with each
    candidate cut: the windows over, and the highest rate measured (MB/s)."""
    lean = [tr for tr in traces if tr["kind"] == "clean" and driver_semi_space_mb(tr)]
    lines = [f"first windows of {len(lean)} clean lean-driver traces, as recorded: over / "
             "within / windows, highest rate (MB/s)",
             "| cut | " + " | ".join(f"{n} s run" for n in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    for cut in CUTS_S:
        startup = replace(browser_startup(1), cut_s=cut)
        cells = []
        for length in lengths:
            outcomes: Counter = Counter()
            rates = []
            for trace in lean:
                w = next(windows(trace, length, as_recorded=True))
                op_interval = w.op_interval if w.workload == "builtin" else None
                g, why = estimate_growth(w.t, w.anon_mb, op_interval, startup=startup)
                outcomes[judge_budget(g, DEFAULT_BUDGET, ops_per_s=None, why_none=why).outcome] += 1
                if g is not None:
                    rates.append(g.rate)
            top = f"{max(rates):+.3f}" if rates else "n/a"
            cells.append(f"{outcomes['over']} / {outcomes['within']} / {len(lean)}, {top}")
        lines.append(f"| {cut:g} s | " + " | ".join(cells) + " |")
    return lines


WANDER_LENGTHS_S = (45, 60, 90, 120, 180, 240)


def _settled(w: Window) -> tuple[np.ndarray, np.ndarray]:
    """A window's settle samples: (t, anon MB)."""
    settle = np.asarray([np.nan if v is None else v for v in w.columns["settle"]], float)
    points = np.isfinite(settle) & np.isfinite(w.anon_mb)
    return w.t[points], w.anon_mb[points]


def wander(traces: list[dict], settled: bool = False,
           lengths: tuple[int, ...] = WANDER_LENGTHS_S) -> dict[int, tuple[int, float, float]]:
    """What ``Startup.wander_k`` rests on: per tested length T, over stretches of the clean
    traces (one every 15 s, each after its own start-up cut), how far the stretch's rate
    strays from its whole trace's rate: (stretches, the fit's own median error x T^1.5, the
    90th percentile of |stray| / 1.645 x T^1.5), both MB s^0.5. ``settled``: on the settle
    samples alone (traces recorded with them)."""
    strays: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for trace in (tr for tr in traces if tr["kind"] == "clean" and tr["duration_s"] >= 290):
        (w,) = windows(trace, workload_window(trace)[1] - workload_window(trace)[0])
        fit_only = replace(w.startup, wander_k=0.0)
        if settled:
            t, y = _settled(w)
        else:
            t = w.t
            y = w.anon_mb if np.isfinite(w.anon_mb).mean() >= FULL_RECORD_SHARE else np.asarray(
                [np.nan if v is None else v for v in w.columns["working_set"]], float) / MB
        whole, _ = estimate_growth(t, y, w.op_interval, startup=fit_only, as_floors=settled)
        for length in lengths:
            for start in np.arange(45, w.t[-1] - length, 15):
                inside = (t >= start - fit_only.cut_s) & (t <= start + length)
                g, _ = estimate_growth(t[inside], y[inside], w.op_interval, startup=fit_only,
                                       as_floors=settled)
                if g is not None and whole is not None:
                    strays[length].append((abs(g.rate - whole.rate), g.span_s, g.se))
    out = {}
    for length, rows in strays.items():
        stray, span, se = (np.asarray(col) for col in zip(*rows, strict=True))
        t15 = float(np.median(span)) ** 1.5
        out[length] = (len(rows), float(np.median(se)) * t15,
                       float(np.percentile(stray, 90)) / 1.645 * t15)
    return out


def shortest_lines(traces: list[dict], lengths: tuple[int, ...] = (120, 150, 180)
                   ) -> list[str]:
    """Per run length and driver start-up, over the windows of every clean trace judged on
    their floors: within and over when clean, over with a leak of exactly the budget and of
    1.5x added: which length is the shortest that tells 1.5x the budget from clean."""
    limit = DEFAULT_BUDGET.value
    lines = ["| run | driver | windows | clean: within / over | at the budget: over | "
             "1.5x: over |", "|---|---|---|---|---|---|"]
    for length in lengths:
        counts: dict[tuple[str, float], Counter] = defaultdict(Counter)
        for trace in (tr for tr in traces if tr["kind"] == "clean"):
            for w in windows(trace, length):
                for multiple in (0.0, 1.0, 1.5):
                    extra = ramp(w, multiple * limit) if multiple else None
                    outcome = judge(w, DEFAULT_BUDGET, extra).outcome
                    counts[(_driver(w), multiple)][outcome] += 1
        for driver in sorted({d for d, _ in counts}):
            clean, at, over = (counts[(driver, m)] for m in (0.0, 1.0, 1.5))
            n = sum(clean.values())
            lines.append(f"| {length / 60:g} min | {driver} | {n} | "
                         f"{clean['within'] / n:.1%} / {clean['over']} | "
                         f"{at['over'] / n:.1%} | {over['over'] / n:.1%} |")
    return lines


def settle_wander_lines(traces: list[dict], lengths: tuple[int, ...] = (60, 90, 120)
                        ) -> list[str]:
    """Per clean trace recorded with settle points: the wander (90th percentile stray / 1.645
    x T^1.5, MB s^0.5) of its floors and of its settle samples, side by side."""
    lines = ["| trace | settle | " + " | ".join(f"{n} s: floors / settle" for n in lengths)
             + " |", "|---|---|" + "---|" * len(lengths)]
    for trace in traces:
        if trace["kind"] != "clean" or not _has_settle_points(trace):
            continue
        floors, settled = (wander([trace], s, lengths) for s in (False, True))
        how = f"every {trace.get('settle_every') or '?'}" + (
            ", GC only" if "pressure=False" in trace.get("note", "") else "")
        cells = [f"{floors[n][2]:.1f} / {settled[n][2]:.1f}" if n in floors and n in settled
                 else "n/a" for n in lengths]
        lines.append(f"| `{trace['name']}` | {how} | " + " | ".join(cells) + " |")
    return lines


def _nominal(trace: dict) -> str:
    """A leak's nominal rate: MB/s, fds or threads per second, or one-off (a step)."""
    if trace.get("nominal_count_per_s"):
        return f"{trace['nominal_count_per_s']:g} {trace['mechanism']}/s"
    nominal = trace["nominal_mb_per_s"]
    return f"{nominal:g} MB/s" if nominal is not None else "one-off"


def _share(counts: Counter, outcome: str) -> str:
    n = sum(counts.values())
    return f"{100 * counts[outcome] / n:5.1f}%" if n else "  n/a"


def markdown(traces: list[dict], seed: int) -> str:
    """Share of clean windows over budget per added ramp or step, one row per length and
    budget; then each recorded leak's verdict."""
    table = clean_table(traces, seed)
    codes = clean_exit_codes(traces)
    added = [f"+{r:g} MB/s" for r in RAMPS] + ["step 40-60 MB"]
    lines = ["| run | budget | windows | " + " | ".join(a.replace("+0 MB/s", "clean")
                                                       for a in added) + " | clean exit 0 |",
             "|---|---|---|" + "---|" * (len(added) + 1)]
    for length in LENGTHS_S:
        for budget in BUDGETS:
            cells = [table[(length, a, str(budget))] for a in added]
            n = sum(cells[0].values())
            if not n:
                continue
            exits = codes[length]
            zero = f"{exits[0]}/{sum(exits.values())}" if budget == BUDGETS[0] else ""
            lines.append(f"| {length // 60} min | {budget} | {n} | "
                         + " | ".join(_share(c, "over").strip() for c in cells)
                         + f" | {zero} |")
    lines += ["", "| recorded leak | nominal | run | budget 0.1 MB/s | budget 0.03 MB/s | "
              "measured MB/s [95% bounds] |", "|---|---|---|---|---|---|"]
    for trace in (tr for tr in traces if tr["kind"] != "clean"):
        span = workload_window(trace)[1] - workload_window(trace)[0]
        (w,) = windows(trace, span)
        verdicts = [judge(w, b) for b in BUDGETS]
        g = verdicts[0].growth
        lines.append(f"| {trace['name']} | {_nominal(trace)}"
                     + f" | {trace['duration_s'] / 60:g} min | {verdicts[0].outcome} | "
                     f"{verdicts[1].outcome} | "
                     + (f"{g.rate:.3f} [{g.ci[0]:.3f}, {g.ci[1]:.3f}] |" if g else "n/a |"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(__file__).resolve().parent / "corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", action="store_true", help="docs/statistics.md tables")
    parser.add_argument("--starts", action="store_true",
                        help="only what the browser kind's start-up constants rest on")
    parser.add_argument("--checks", action="store_true",
                        help="only the per-check tables: false warnings on clean windows as "
                             "recorded, recall on the recorded leaks")
    parser.add_argument("--settle", action="store_true",
                        help="only the settle-point table (traces recorded with them)")
    parser.add_argument("--until-decided", action="store_true",
                        help="only the --until-decided simulation (time to a decision, errors)")
    args = parser.parse_args()
    traces = load_corpus(args.corpus)
    if args.until_decided:
        print("\n".join(until_decided_lines(traces)))
        return
    if args.settle:
        print("\n".join(settle_lines(traces)))
        print()
        print("\n".join(settle_wander_lines(traces)))
        print()
        print("\n".join(shortest_lines(traces)))
        return
    if args.markdown:
        print(markdown(traces, args.seed))
        print()
        print(checks_markdown(traces))
        return
    if args.starts:
        highest, noise = starts(traces)
        print(f"growth from the 10th second, highest lower bound over clean starts (rule: "
              f"{BROWSER.start_growth_mb_s} MB/s):")
        for length, low in highest.items():
            print(f"  {length:>3} s runs: {low:.3f} MB/s")
        print(f"se x tested_s^1.5 of clean windows, 90th percentile (noise_k: "
              f"{BROWSER.noise_k}):")
        for length, k in noise.items():
            print(f"  {length // 60:>2} min windows: {k:.1f} MB s^0.5")
        print(f"the rate of a stretch against its run's long-run rate (wander_k: "
              f"{BROWSER.wander_k}), MB s^0.5:")
        for length, (n, fit, stray) in wander(traces).items():
            print(f"  {length:>3} s tested: {n} stretches, fit's error x T^1.5 {fit:.1f}, "
                  f"90th pct stray / 1.645 x T^1.5 {stray:.1f}")
        print("\n".join(cut_lines(traces)))
        return
    if args.checks:
        print("checks that warn on clean windows as recorded (user scripts as command runs):")
        for length, c in sorted(clean_checks(traces, verbose=True).items()):
            print(f"  {length // 60:>2} min: {c['windows']} windows ({c['with roles']} with "
                  f"role sweeps), exit 0 on {c['exit 0']}; "
                  + ", ".join(f"{k} {c[k]}" for k in CHECK_COLUMNS))
        print("recall on the recorded leaks:")
        for name, check, span, hits, n, others in leak_recall(traces):
            print(f"  {name:34} {check:8} {span / 60:4.1f} min: {hits}/{n}  (others: "
                  f"{others})")
        return
    clean = [tr for tr in traces if tr["kind"] == "clean"]
    minutes = sum(tr["duration_s"] for tr in clean) / 60
    print(f"corpus {args.corpus}: {len(traces)} traces, {len(clean)} clean "
          f"({minutes:.0f} min of clean recording)")
    print(f"{'length':>6} {'added':>15} {'budget':>10} {'n':>4} {'over':>7} {'within':>7} "
          f"{'inconcl':>7}")
    for (length, added, budget), counts in sorted(clean_table(traces, args.seed).items()):
        print(f"{length // 60:>4} m {added:>15} {budget:>10} {sum(counts.values()):>4} "
              f"{_share(counts, 'over'):>7} {_share(counts, 'within'):>7} "
              f"{_share(counts, 'inconclusive'):>7}")
    print("\nexit codes of the clean windows through the whole analysis:")
    for length, codes in sorted(clean_exit_codes(traces).items()):
        print(f"  {length // 60:>2} min: " + ", ".join(f"exit {c}: {n}"
                                                     for c, n in sorted(codes.items())))
    print("\nreal leaks as recorded (whole run):")
    for trace in (tr for tr in traces if tr["kind"] != "clean"):
        (w,) = windows(trace, workload_window(trace)[1] - workload_window(trace)[0])
        for budget in BUDGETS:
            v = judge(w, budget)
            g = v.growth
            rate = f"{g.rate:.3f} [{g.ci[0]:.3f}, {g.ci[1]:.3f}]" if g else "n/a"
            nominal = trace["nominal_mb_per_s"]
            nominal = f"{nominal:.3f} MB/s" if nominal is not None else "(one-off)"
            print(f"  {trace['name']:32} nominal {nominal:>10} "
                  f"{trace['duration_s'] / 60:4.1f} min  budget {budget}: {v.outcome:12} "
                  f"rate {rate} MB/s" + (f", needs {v.minutes_needed:g} min"
                                         if v.minutes_needed else ""))


if __name__ == "__main__":
    main()
