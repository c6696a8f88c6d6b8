"""Read the stored Chromium memory traces of bench/corpus (format 1, bench/corpus/README.md)
and the one measurement the recorder adds to each: the least-squares slope of the per-window
minimum of anon over the workload's window.

    from corpus_io import load_trace, anon_min_slope
    trace = load_trace("bench/corpus/user-driver-300k-20pm.json.gz")
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from sandbox.workloads.environment import node_semi_space_mb

FORMAT = 3
#: Format 2 added ``roles``, ``js_heap``, ``nominal_count_per_s``, ``count_per_op`` and the
#: ``tmp_bytes`` column; format 3 the ``settle`` column (the settle point's number, null
#: elsewhere), ``settle_every`` and operations' ``settle_s``; earlier traces are read as
#: they are (a ``settle`` column of nulls, ``settle_every`` 0).
READABLE_FORMATS = (1, 2, 3)
MIB = 1024 * 1024
#: Sample columns a trace stores, bytes (memory) or counts; ``t`` in seconds.
SAMPLE_COLUMNS = ("t", "anon", "working_set", "memory_current", "file", "nprocs",
                  "pids_current", "tmp_files", "tmp_bytes", "settle")


def load_trace(path: str | Path) -> dict[str, Any]:
    """The trace as a dict; raises ValueError for an unknown format or ragged columns."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        trace = json.load(fh)
    if trace.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{path}: trace format {trace.get('format')!r}, expected one of "
                         f"{READABLE_FORMATS}")
    trace.setdefault("roles", [])
    trace.setdefault("js_heap", [])
    trace.setdefault("settle_every", 0)
    samples = trace["samples"]
    samples.setdefault("settle", [None] * len(samples.get("t", [])))
    lengths = {len(v) for v in samples.values()}
    if len(lengths) > 1:
        raise ValueError(f"{path}: sample columns of different lengths {sorted(lengths)}")
    return trace


def save_trace(trace: dict[str, Any], path: str | Path) -> None:
    """Write a trace as compact gzipped JSON (mtime 0, so equal traces give equal files)."""
    data = json.dumps(trace, separators=(",", ":")).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(data)


def driver_semi_space_mb(trace: dict[str, Any]) -> int | None:
    """The young-generation cap of the trace's Playwright driver (format 3 traces from the
    sixth session of issue 27 say; earlier ones had Node's default)."""
    return node_semi_space_mb({"NODE_OPTIONS": trace.get("driver_node_options") or ""})


def workload_window(trace: dict[str, Any]) -> tuple[float, float]:
    """First operation start to last operation end; the whole trace when it has none."""
    ops = trace.get("operations") or []
    t = trace["samples"]["t"]
    if not ops:
        return (t[0], t[-1]) if t else (0.0, 0.0)
    ends = [o["t"] + (o.get("latency_s") or 0.0) for o in ops]
    return min(o["t"] for o in ops), max(ends)


def anon_min_slope(trace: dict[str, Any], window_s: float = 10.0) -> float | None:
    """OLS slope (MiB/s) of min(anon) per ``window_s`` window over the workload's window,
    each minimum placed at its window's centre; None with fewer than 3 full windows."""
    lo, hi = workload_window(trace)
    t, anon = trace["samples"]["t"], trace["samples"]["anon"]
    xs, ys = [], []
    start = lo
    while start + window_s <= hi + 1e-9:
        vals = [a for ti, a in zip(t, anon, strict=True)
                if start <= ti < start + window_s and a is not None]
        if vals:
            xs.append(start + window_s / 2)
            ys.append(min(vals) / MIB)
        start += window_s
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
