"""Whatever a run left, analysis and every report format finish: generated runs with sparse,
irregular and partly missing series (samples, operations, role sweeps a role is absent from or
that read no PSS, JS-heap lines without values). A crash here turns a finished run into a
harness error (exit 3); the clean-clone CI once met one, a role that no PSS sweep found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.analysis import analyze
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.model.role_sweep import RoleSweep, RoleTotals
from sandbox.report import FORMATS, render
from sandbox.runreader import RunData

MB = 2**20
SERIES = ("anon", "working_set", "file", "memory_current", "nprocs", "pids_current",
          "tmp_bytes", "tmp_files", "peak", "oom_kill")
ROLES = ("browser", "renderer", "gpu", "utility")

gaps = st.lists(st.floats(0.05, 6.0), max_size=250)
maybe = st.one_of(st.none(), st.integers(0, 4000 * MB))


@st.composite
def sample_arrays(draw) -> dict[str, np.ndarray]:
    t = np.cumsum(np.asarray(draw(gaps), float))
    out = {"t": t}
    for name in draw(st.sets(st.sampled_from(SERIES))):
        values = draw(st.lists(st.one_of(st.floats(0, 4000 * MB), st.just(np.nan)),
                               min_size=len(t), max_size=len(t)))
        out[name] = np.asarray(values, float)
    return out


@st.composite
def sweeps(draw) -> list[RoleSweep]:
    """Every ``every``-th sweep a memory sweep; each role in all sweeps, in memory sweeps
    only, in count sweeps only or in sweeps at random."""
    every = draw(st.integers(1, 6))
    presence = {name: draw(st.sampled_from(("all", "memory", "count", "random")))
                for name in ROLES}
    out = []
    for i, t in enumerate(np.cumsum(draw(gaps))):
        roles = {}
        memory_sweep = i % every == 0
        kind = "memory" if memory_sweep else "count"
        for name in [r for r, p in presence.items()
                     if p in ("all", kind) or (p == "random" and draw(st.booleans()))]:
            roles[name] = RoleTotals(
                processes=draw(st.integers(0, 5)), fds=draw(st.integers(0, 500)),
                threads=draw(st.integers(0, 200)), rss=draw(maybe),
                pss=draw(maybe) if memory_sweep else None)
        out.append(RoleSweep(t=float(t), roles=roles))
    return out


@st.composite
def operations(draw) -> list[Operation]:
    starts = np.cumsum(draw(st.lists(st.floats(0.1, 10.0), max_size=80)))
    return [Operation(op=i, t=float(t), latency_s=draw(st.one_of(st.none(), st.floats(0, 5))),
                      ok=draw(st.one_of(st.none(), st.booleans())))
            for i, t in enumerate(starts)]


@st.composite
def heap(draw) -> list[JsHeapMeasurement]:
    return [JsHeapMeasurement(t=float(t), pages=1, used_bytes=draw(maybe),
                              dom_nodes=draw(st.one_of(st.none(), st.integers(0, 10**5))))
            for t in np.cumsum(draw(gaps))]


@settings(max_examples=100, deadline=None, database=None, derandomize=True,  # the same runs
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(samples=sample_arrays(), roles=sweeps(), ops=operations(), js_heap=heap())
def test_analysis_and_reports_finish_on_any_run(samples, roles, ops, js_heap):
    run = RunData(path=Path("/nonexistent/run"), samples=samples, operations=ops, roles=roles,
                  js_heap=js_heap)
    result = analyze(run)
    assert result.exit_code in (0, 1, 2, 3)
    for fmt in FORMATS:
        assert render(result, fmt)
