"""Record the corpus of real Chromium memory traces in bench/corpus: for each PLAN entry run
``sandbox run`` (this checkout's venv, as root), keep a small trace of what the analysis reads,
delete the run directory. One Chromium run at a time; entries already stored are skipped.

    sudo .venv/bin/python bench/record_corpus.py                 # everything not yet stored
    sudo .venv/bin/python bench/record_corpus.py --list
    sudo .venv/bin/python bench/record_corpus.py --only user-driver-300k-20pm --force
    .venv/bin/python bench/record_corpus.py --table               # markdown table of the corpus

Trace format: bench/corpus/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from corpus_io import FORMAT, SAMPLE_COLUMNS, anon_min_slope, load_trace, save_trace

from sandbox.workloads.environment import DRIVER_NODE_OPTIONS

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CORPUS = BENCH / "corpus"
SCRIPT = BENCH / "corpus_scripts" / "user_screenshots.py"
SANDBOX = Path(os.path.abspath(sys.executable)).parent / "sandbox"
PYTHON = Path(os.path.abspath(sys.executable))
#: The user script stops by itself after --duration; the harness gets this much more.
COMMAND_SLACK_S = 30
BUILT_IN_SHAPES = {"smoke": (20, 30), "quick": (120, 30), "medium": (300, 20),
                   "endurance": (600, 15)}
MB_PER_CHROMIUM_PAGE = 40.0  # smoke run of --leak pages: +240 MiB anon for 6 pages left open


@dataclass
class Entry:
    """One recording. ``scenario`` set: the built-in screenshot workload with that shape;
    else the user script with ``script_args`` (its duration, rate and context added here)."""

    name: str
    kind: str  # clean | leak
    mechanism: str  # none | driver | pages | jsheap | step | cache | inject-heap
    duration_s: float
    ops_per_minute: float
    context_policy: str
    scenario: str | None = None
    script_args: list[str] = field(default_factory=list)
    kb_per_op: float | None = None  # KiB retained per screenshot
    inject_rate_mb: float | None = None  # built-in --inject heap, MiB per screenshot
    pages_every: int | None = None
    builtin_args: list[str] = field(default_factory=list)  # more `sandbox run` flags
    count_per_op: float | None = None  # fds / threads leaks: files or threads kept per op
    note: str = ""
    settle_every: int = 0  # a settle point every N screenshots (format 3); 0: none
    #: the Playwright driver's NODE_OPTIONS: the built-in workload's own since issue 27's
    #: sixth session; a user script's passed with --env
    driver_node_options: str = ""

    @property
    def nominal_mb_per_s(self) -> float | None:
        """kb_per_op * ops_per_minute / 60 / 1000 (the corpus's nominal unit)."""
        if self.kind == "clean":
            return 0.0
        if self.kb_per_op is not None:
            return round(self.kb_per_op * self.ops_per_minute / 60 / 1000, 4)
        if self.inject_rate_mb is not None:
            return round(self.inject_rate_mb * 1024 * self.ops_per_minute / 60 / 1000, 4)
        if self.pages_every:
            return round(MB_PER_CHROMIUM_PAGE / self.pages_every * self.ops_per_minute / 60, 4)
        return None  # step, fds, threads: no memory rate

    @property
    def nominal_count_per_s(self) -> float | None:
        """fds / threads leaks: files or threads kept per second; clean runs 0."""
        if self.kind == "clean":
            return 0.0
        if self.count_per_op is None:
            return None
        return round(self.count_per_op * self.ops_per_minute / 60, 4)

    def command(self, runs_dir: Path) -> list[str]:
        argv = [str(SANDBOX), "run", "--runs-dir", str(runs_dir), "--no-progress", "-q"]
        if self.scenario:
            argv += ["--scenario", self.scenario, "--context-policy", self.context_policy]
            if self.duration_s != BUILT_IN_SHAPES[self.scenario][0]:
                argv += ["--duration", f"{self.duration_s:g}s"]
            if self.ops_per_minute != BUILT_IN_SHAPES[self.scenario][1]:
                argv += ["--ops-per-minute", f"{self.ops_per_minute:g}"]
            if self.inject_rate_mb:
                argv += ["--inject", "heap", "--inject-rate", f"{self.inject_rate_mb:g}"]
            return argv + ["--settle-every", str(self.settle_every)] + self.builtin_args
        if self.driver_node_options:
            argv += ["--env", f"NODE_OPTIONS={self.driver_node_options}"]
        return argv + [
            "--duration", f"{self.duration_s + COMMAND_SLACK_S:g}s", "--",
            str(PYTHON), str(SCRIPT), "--duration", f"{self.duration_s:g}",
            "--ops-per-minute", f"{self.ops_per_minute:g}", "--context", self.context_policy,
            *self.script_args,
            *(["--settle-every", str(self.settle_every)] if self.settle_every else []),
        ]


def _user(name, kind, mech, minutes, opm, ctx, *extra, kb=None, every=None, note="",
          count=None, settle=0, node_options=""):
    args = list(extra)
    if mech != "none":
        args = ["--leak", mech, *args]
    if kb is not None:
        args += ["--kb-per-op", str(kb)]
    if every is not None:
        args += ["--pages-every", str(every)]
    return Entry(name, kind, mech, minutes * 60, opm, ctx, script_args=args, kb_per_op=kb,
                 pages_every=every, note=note, count_per_op=count, settle_every=settle,
                 driver_node_options=node_options)


def _builtin(name, scenario, ctx, inject_rate=None, note="", opm=None, extra=(), settle=0,
             node_options=""):
    duration, default_opm = BUILT_IN_SHAPES[scenario]
    return Entry(name, "leak" if inject_rate else "clean",
                 "inject-heap" if inject_rate else "none", duration, opm or default_opm, ctx,
                 scenario=scenario, inject_rate_mb=inject_rate, note=note,
                 builtin_args=list(extra), settle_every=settle,
                 driver_node_options=node_options)


PLAN: list[Entry] = [
    _builtin("builtin-medium-fresh", "medium", "fresh"),
    _user("user-driver-300k-20pm", "leak", "driver", 5, 20, "fresh", kb=300),
    _user("user-clean-fresh-15pm", "clean", "none", 10, 15, "fresh"),
    _user("user-jsheap-200k-15pm", "leak", "jsheap", 10, 15, "fresh", kb=200),
    _builtin("builtin-quick-reuse", "quick", "reuse"),
    _user("user-pages-every10-15pm", "leak", "pages", 5, 15, "fresh", every=10,
          note="one page and its context left open every 10th screenshot; nominal rate from "
               "the smoke run's ~40 MB anon per page left open"),
    _builtin("builtin-endurance-reuse", "endurance", "reuse"),
    _user("user-step-50mb-20pm", "leak", "step", 5, 20, "fresh", "--step-mb", "50",
          note="50 MiB Uint8Array written in the long-lived page's JS at half-time"),
    _user("user-clean-reuse-12pm", "clean", "none", 10, 12, "reuse"),
    _user("user-cache-600k-cap30mb-20pm", "leak", "cache", 5, 20, "fresh",
          "--cache-cap-mb", "30", kb=600,
          note="cap 30 MB (not 60) so the plateau is reached at half-time, after 50 ops"),
    _builtin("builtin-quick-inject-heap-0.5", "quick", "reuse", inject_rate=0.5),
    _user("user-driver-600k-20pm", "leak", "driver", 5, 20, "fresh", kb=600),
    _builtin("builtin-medium-reuse", "medium", "reuse"),
    _user("user-clean-fresh-20pm", "clean", "none", 10, 20, "fresh"),
    _user("user-driver-150k-12pm", "leak", "driver", 10, 12, "fresh", kb=150),
    _builtin("builtin-endurance-fresh", "endurance", "fresh"),
    _user("user-jsheap-400k-20pm", "leak", "jsheap", 5, 20, "reuse", kb=400),
    _user("user-clean-fresh-12pm", "clean", "none", 10, 12, "fresh"),
    _user("user-driver-150k-20pm-reuse", "leak", "driver", 5, 20, "reuse", kb=150),
    _builtin("builtin-quick-fresh", "quick", "fresh"),
    # second session: more clean recording (issue 12 asks for about 2 hours)
    _user("user-clean-reuse-20pm", "clean", "none", 10, 20, "reuse"),
    _user("user-clean-fresh-30pm", "clean", "none", 10, 30, "fresh"),
    _builtin("builtin-endurance-fresh-2", "endurance", "fresh"),
    _user("user-clean-reuse-15pm", "clean", "none", 10, 15, "reuse"),
    _user("user-clean-fresh-10pm", "clean", "none", 10, 10, "fresh"),
    _builtin("builtin-medium-fresh-2", "medium", "fresh"),
    # third session (issue 24): format 2 (role sweeps, JS heap) to calibrate every check,
    # at 24 and 30 screenshots/min, and real fd and thread leaks
    _user("user-clean-fresh-24pm", "clean", "none", 10, 24, "fresh"),
    _user("user-fds-24pm", "leak", "fds", 5, 24, "fresh", count=1,
          note="one more /dev/null kept open by the script per screenshot"),
    _user("user-threads-24pm", "leak", "threads", 5, 24, "fresh", count=1,
          note="one more idle thread kept by the script per screenshot"),
    _user("user-clean-reuse-24pm", "clean", "none", 10, 24, "reuse"),
    _builtin("builtin-endurance-fresh-24pm-jsheap", "endurance", "fresh", opm=24,
             extra=["--js-heap"], note="--js-heap: the watch page's JS heap after a forced GC"),
    _user("user-clean-reuse-30pm", "clean", "none", 10, 30, "reuse"),
    _user("user-churn40-fresh-30pm", "clean", "none", 5, 30, "fresh", "--churn-mb", "40",
          note="the script allocates, writes and frees 40 MB per screenshot (clean)"),
    _user("user-procs-24pm", "leak", "procs", 3, 24, "fresh", count=1,
          note="one more `sleep` child started and kept by the script per screenshot"),
    # positive controls of the other checks, the built-in workload's injections
    Entry("builtin-quick-inject-tmpfile", "leak", "tmpfile", 120, 30, "reuse",
          scenario="quick", builtin_args=["--inject", "tmpfile"], count_per_op=1,
          note="--inject tmpfile: one temp file left per screenshot"),
    Entry("builtin-quick-inject-heap-0.2-jsheap", "leak", "inject-heap", 120, 30, "reuse",
          scenario="quick", inject_rate_mb=0.2, builtin_args=["--js-heap"],
          note="--inject heap 0.2 MB per screenshot in a long-lived page, with --js-heap"),
    # fourth session (issue 27): format 3, settle points (a GC in every page, a memory-pressure
    # signal, a sample at once) every 2-3 screenshots
    _builtin("builtin-settle3-fresh-24pm", "endurance", "fresh", opm=24, settle=3),
    _builtin("builtin-settle3-inject-heap-0.375-24pm", "endurance", "fresh", opm=24,
             inject_rate=0.375, settle=3,
             note="--inject heap 0.375 MB per screenshot (0.15 MB/s) in a long-lived page"),
    _user("user-settle3-clean-reuse-30pm", "clean", "none", 10, 30, "reuse", settle=3),
    _builtin("builtin-settle2-reuse-12pm", "endurance", "reuse", opm=12, settle=2),
    _user("user-settle3-driver-450k-20pm", "leak", "driver", 10, 20, "fresh", kb=450,
          settle=3),
    # fifth session (issue 27): a settle point after every screenshot, with the GC alone and
    # with the pressure signal too: does the signal make the floor wander?
    _user("user-settle1gc-clean-fresh-24pm", "clean", "none", 10, 24, "fresh",
          "--settle-gc-only", settle=1, note="sandbox.settle(browser, pressure=False)"),
    _user("user-settle1-clean-fresh-24pm", "clean", "none", 10, 24, "fresh", settle=1),
    # sixth session (issue 27): the Playwright driver's young generation kept small (the
    # built-in workload's own DRIVER_NODE_OPTIONS since): is the floor level sooner?
    _builtin("builtin-settle3-fresh-24pm-semi1", "endurance", "fresh", opm=24, settle=3,
             node_options=DRIVER_NODE_OPTIONS),
    _user("user-settle1-clean-fresh-24pm-semi1", "clean", "none", 10, 24, "fresh", settle=1,
          node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-settle3-reuse-20pm-semi1", "endurance", "reuse", opm=20, settle=3,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-settle3-fresh-12pm-semi1", "endurance", "fresh", opm=12, settle=3,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-settle3-fresh-30pm-semi1", "endurance", "fresh", opm=30, settle=3,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-settle3-inject-heap-0.375-24pm-semi1", "endurance", "fresh", opm=24,
             inject_rate=0.375, settle=3, node_options=DRIVER_NODE_OPTIONS,
             note="--inject heap 0.375 MB per screenshot (0.15 MB/s) in a long-lived page"),
    _user("user-settle3-clean-reuse-30pm-semi1", "clean", "none", 10, 30, "reuse", settle=3,
          node_options=DRIVER_NODE_OPTIONS),
    # seventh session (issue 27): the built-in workload as the `ci` scenario runs it (its lean
    # driver, no settle points), for the --until-decided error rates of that configuration
    _builtin("builtin-fresh-24pm-semi1", "endurance", "fresh", opm=24,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-reuse-20pm-semi1", "endurance", "reuse", opm=20,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-fresh-12pm-semi1", "endurance", "fresh", opm=12,
             node_options=DRIVER_NODE_OPTIONS),
    _builtin("builtin-fresh-30pm-semi1", "endurance", "fresh", opm=30,
             node_options=DRIVER_NODE_OPTIONS),
]

SHOT_LINE = re.compile(r"^shot (\d+) (ok|FAILED).*?latency=([\d.]+)s"
                       r"(?:.*settle=([\d.]+)s)?.*wall=([\d.]+)\s*$")


def host_facts(run: dict[str, Any]) -> dict[str, Any]:
    host = run.get("host", {})
    try:
        chromium = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "chromium"],
                                  capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        chromium = None
    # the last commit that changed the harness (what gave the verdict), not bench/
    commit = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%H", "--",
                             "sandbox", "pyproject.toml"], capture_output=True, text=True,
                            check=False).stdout.strip()
    return {"chromium": chromium or None, "kernel": host.get("kernel") or platform.release(),
            "cgroup_mode": host.get("cgroup", {}).get("mode"),
            "sample_source": None, "playwright": host.get("playwright_version"),
            "cpus": os.cpu_count(), "harness_commit": commit or None}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def _column(rows: list[dict[str, Any]], key: str) -> list:
    out = []
    for r in rows:
        v = r.get(key)
        if key == "t":
            out.append(round(v, 3))
        else:
            out.append(int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None)
    return out


def operations(run_dir: Path, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """operations.jsonl (built-in workload), else the user script's ``shot`` lines in
    workload.log, their wall times put on the samples' clock."""
    rows = _jsonl(run_dir / "operations.jsonl")
    if rows:
        return [{"t": round(o["t"], 3), "ok": bool(o.get("ok")),
                 "latency_s": round(o.get("latency_s") or 0.0, 3),
                 **({"settle_s": round(o["settle_s"], 3)} if o.get("settle_s") else {})}
                for o in rows]
    offsets = [s["wall"] - s["t"] for s in samples if "wall" in s]
    if not offsets or not (run_dir / "workload.log").exists():
        return []
    origin = median(offsets)
    ops = []
    for line in (run_dir / "workload.log").read_text(errors="replace").splitlines():
        if m := SHOT_LINE.match(line):
            ops.append({"t": round(float(m[5]) - origin, 3), "ok": m[2] == "ok",
                        "latency_s": round(float(m[3]), 3),
                        **({"settle_s": round(float(m[4]), 3)} if m[4] else {})})
    return ops


ROLE_KEYS = ("processes", "fds", "threads", "rss", "pss")


def role_sweeps(run_dir: Path) -> list[dict[str, Any]]:
    """roles.jsonl, each sweep's roles cut to ROLE_KEYS (uss dropped)."""
    return [{"t": round(r["t"], 3),
             "roles": {name: {k: v for k, v in row.items() if k in ROLE_KEYS}
                       for name, row in r["roles"].items() if isinstance(row, dict)}}
            for r in _jsonl(run_dir / "roles.jsonl")
            if isinstance(r.get("t"), int | float) and isinstance(r.get("roles"), dict)]


def js_heap(run_dir: Path) -> list[dict[str, Any]]:
    """jsheap.jsonl (built-in workload with --js-heap): t, used_bytes, dom_nodes."""
    return [{"t": round(r["t"], 3), "used_bytes": r.get("used_bytes"),
             "dom_nodes": r.get("dom_nodes")}
            for r in _jsonl(run_dir / "jsheap.jsonl") if isinstance(r.get("t"), int | float)]


VERDICT_KEYS = ("label", "severity", "signal", "slope_mb_per_second", "slope_ci_mb_per_second",
                "p_value", "detection_limit_mb_per_second", "mb_per_operation", "warmup_cut_s",
                "change_points_s", "steps", "reasons")


def make_trace(entry: Entry, run_dir: Path, argv: list[str], exit_code: int,
               started: float, other_chromium: int) -> dict[str, Any]:
    run = json.loads((run_dir / "run.json").read_text())
    rows = [r for r in _jsonl(run_dir / "samples.jsonl") if isinstance(r.get("t"), int | float)]
    rows.sort(key=lambda r: r["t"])
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    verdict = {k: report.get("verdict", {}).get(k) for k in VERDICT_KEYS}
    made = {"command": argv, "date": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(
        timespec="seconds"), "host": host_facts(run),
        "other_chromium_processes_at_start": other_chromium}
    made["host"]["sample_source"] = ",".join(sorted({str(r.get("source")) for r in rows}))
    trace = {
        "format": FORMAT, "name": entry.name, "made": made, "kind": entry.kind,
        "mechanism": entry.mechanism, "nominal_mb_per_s": entry.nominal_mb_per_s,
        "kb_per_op": entry.kb_per_op, "inject_rate_mb": entry.inject_rate_mb,
        "pages_every": entry.pages_every, "note": entry.note,
        "ops_per_minute": entry.ops_per_minute, "context_policy": entry.context_policy,
        "duration_s": entry.duration_s, "workload": "builtin" if entry.scenario else "user-script",
        "scenario": entry.scenario, "exit_code": exit_code, "verdict": verdict,
        "workload_end_t": run.get("workload_end_t"),
        "samples": {k: _column(rows, k) for k in SAMPLE_COLUMNS},
        "operations": operations(run_dir, rows),
        "nominal_count_per_s": entry.nominal_count_per_s, "count_per_op": entry.count_per_op,
        "roles": role_sweeps(run_dir), "js_heap": js_heap(run_dir),
        "settle_every": entry.settle_every, "driver_node_options": entry.driver_node_options,
    }
    slope = anon_min_slope(trace)
    trace["measured"] = {"anon_min_ols_mib_per_s": None if slope is None else round(slope, 5),
                         "window_s": 10.0}
    return trace


def chromium_count() -> int:
    out = subprocess.run(["pgrep", "-c", "chromium"], capture_output=True, text=True,
                         check=False).stdout.strip()
    return int(out or 0)


def wait_for_no_chromium(limit_s: float = 120) -> int:
    """Wait until no chromium process runs (at most limit_s); return the count left."""
    end = time.monotonic() + limit_s
    while (n := chromium_count()) and time.monotonic() < end:
        time.sleep(5)
    return n


def record(entry: Entry, runs_root: Path, wait_s: float = 120) -> tuple[int, Path | None]:
    runs_dir = runs_root / entry.name
    if runs_dir.exists():
        shutil.rmtree(runs_dir)
    runs_dir.mkdir(parents=True)
    runs_dir.chmod(0o755)
    other = wait_for_no_chromium(wait_s)
    argv = entry.command(runs_dir)
    started = time.time()
    print(f"[{time.strftime('%H:%M:%S')}] {entry.name}: {' '.join(argv)}", flush=True)
    with open(runs_dir / "harness.out", "wb") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    dirs = [d for d in runs_dir.iterdir() if d.is_dir()]
    if code == 3 or len(dirs) != 1:
        print(f"  harness exit {code}; run kept in {runs_dir} (not stored)", flush=True)
        return code, None
    trace = make_trace(entry, dirs[0], argv, code, started, other)
    path = CORPUS / f"{entry.name}.json.gz"
    save_trace(trace, path)
    shutil.rmtree(runs_dir)
    v = trace["verdict"]
    print(f"  exit {code}, verdict {v['label']} slope {v['slope_mb_per_second']} MB/s, "
          f"anon-min OLS {trace['measured']['anon_min_ols_mib_per_s']} MiB/s, "
          f"{len(trace['operations'])} ops, {path.stat().st_size} bytes", flush=True)
    return code, path


def store_kept_run(entry: Entry, run_dir: Path) -> int:
    """Store ``entry`` from a run directory its recording kept (the harness exited 3 after
    the workload's samples were all taken): the exit code is the re-rendered report's."""
    report = json.loads((run_dir / "report.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    trace = make_trace(entry, run_dir, entry.command(run_dir.parent), int(report["exit_code"]),
                       float(run["started"]), 0)
    trace["made"]["stored_from_kept_run"] = True
    path = CORPUS / f"{entry.name}.json.gz"
    save_trace(trace, path)
    write_index()
    print(f"stored {path} from {run_dir}: exit {trace['exit_code']}, "
          f"{len(trace['operations'])} ops", flush=True)
    return 0


def index_rows() -> list[dict[str, Any]]:
    rows = []
    for path in sorted(CORPUS.glob("*.json.gz")):
        t = load_trace(path)
        rows.append({
            "name": t["name"], "file": path.name, "bytes": path.stat().st_size,
            "kind": t["kind"], "mechanism": t["mechanism"], "workload": t["workload"],
            "nominal_mb_per_s": t["nominal_mb_per_s"], "duration_s": t["duration_s"],
            "ops_per_minute": t["ops_per_minute"], "context_policy": t["context_policy"],
            "operations": len(t["operations"]),
            "failed_operations": sum(not o["ok"] for o in t["operations"]),
            "exit_code": t["exit_code"], "verdict_label": t["verdict"]["label"],
            "verdict_slope_mb_per_s": t["verdict"]["slope_mb_per_second"],
            "anon_min_ols_mib_per_s": t["measured"]["anon_min_ols_mib_per_s"],
            "recorded": t["made"]["date"],
        })
    return rows


def write_index() -> None:
    (CORPUS / "index.json").write_text(json.dumps(index_rows(), indent=1) + "\n")


def table() -> str:
    head = ("| trace | kind | mechanism | nominal MB/s | duration s | ops/min | context | exit "
            "| verdict | verdict slope MB/s | anon-min OLS MiB/s |\n" + "|---" * 11 + "|\n")
    return head + "".join(
        f"| {r['name']} | {r['kind']} | {r['mechanism']} | {r['nominal_mb_per_s']} | "
        f"{r['duration_s']:g} | {r['ops_per_minute']:g} | {r['context_policy']} | "
        f"{r['exit_code']} | {r['verdict_label']} | {r['verdict_slope_mb_per_s']} | "
        f"{r['anon_min_ols_mib_per_s']} |\n" for r in index_rows())


def commit(entry: Entry, path: Path) -> None:
    files = [str(path.relative_to(REPO)), "bench/corpus/index.json"]
    subprocess.run(["git", "-C", str(REPO), "add", *files], check=True)
    subprocess.run(["git", "-C", str(REPO), "commit", "-q", "-m",
                    f"bench/corpus: {entry.name} trace", "--", *files], check=True)


def _clock(value: str) -> float:
    """HH:MM UTC today as a Unix time."""
    hour, minute = map(int, value.split(":"))
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="record these entries")
    parser.add_argument("--list", action="store_true", help="list the plan and exit")
    parser.add_argument("--table", action="store_true", help="print the corpus table, exit")
    parser.add_argument("--runs-dir", type=Path, default=Path("/var/tmp/corpus-runs"),
                        help="where run directories go (readable by nobody)")
    parser.add_argument("--force", action="store_true", help="re-record stored entries")
    parser.add_argument("--from-run", type=Path, metavar="RUN_DIR",
                        help="store the one --only entry from this run directory, kept after "
                             "a harness error once `sandbox report` re-rendered its report")
    parser.add_argument("--wait-chromium", type=float, default=120, metavar="SECONDS",
                        help="wait this long at most for other Chromium processes to end")
    parser.add_argument("--commit", action="store_true", help="git commit each trace")
    parser.add_argument("--start-by", type=_clock, metavar="HH:MM",
                        help="start no entry at or after this UTC time")
    parser.add_argument("--finish-by", type=_clock, metavar="HH:MM",
                        help="start no entry that would end after this UTC time")
    args = parser.parse_args()
    by_name = {e.name: e for e in PLAN}
    if args.list:
        for e in PLAN:
            stored = "stored" if (CORPUS / f"{e.name}.json.gz").exists() else "-"
            print(f"{e.name:34} {e.kind:5} {e.mechanism:11} {e.duration_s:5g}s "
                  f"{e.ops_per_minute:3g}/min {e.context_policy:5} nominal "
                  f"{e.nominal_mb_per_s} MB/s  {stored}")
        return 0
    if args.table:
        print(table(), end="")
        return 0
    if unknown := [n for n in args.only or [] if n not in by_name]:
        parser.error(f"unknown entries: {', '.join(unknown)}")
    if args.from_run:
        if len(args.only or ()) != 1:
            parser.error("--from-run needs exactly one --only entry")
        return store_kept_run(by_name[args.only[0]], args.from_run)
    if os.geteuid() != 0:
        parser.error("sandbox run needs root")
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    args.runs_dir.chmod(0o755)
    CORPUS.mkdir(exist_ok=True)
    failed = []
    for entry in [by_name[n] for n in args.only] if args.only else PLAN:
        if (CORPUS / f"{entry.name}.json.gz").exists() and not args.force:
            continue
        now = time.time()
        if args.start_by and now >= args.start_by:
            print(f"start-by time reached, stopping before {entry.name}", flush=True)
            break
        if args.finish_by and now + entry.duration_s + 90 > args.finish_by:
            print(f"{entry.name} would end after the finish-by time, skipped", flush=True)
            continue
        code, path = record(entry, args.runs_dir, args.wait_chromium)
        if path is None:
            failed.append(entry.name)
            continue
        write_index()
        if args.commit:
            commit(entry, path)
    if failed:
        print(f"not stored: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
