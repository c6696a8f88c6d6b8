"""The run's plot for report.html: an inline SVG drawn by matplotlib (no pyplot state).

Memory (MB) on top: the sampled series, the floor trend the verdict measured, the budget
drawn from the trend's start, and the 95% bounds of the rate as a band; start-up cut and
level shifts marked. The process count below on its own small axis. Only the workload's
window is drawn: teardown (the slice emptying) is not data.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sandbox.analysis import AnalysisResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SERIES = {"working_set": ("working set", "#1f77b4"), "anon": ("anon", "#d62728"),
          "file": ("file cache", "#2ca02c"), "memory_current": ("memory.current", "#7f7f7f")}
PLOT_ID = "memory-plot"
ROLES_PLOT_ID = "roles-plot"
RC = {"svg.fonttype": "none", "svg.hashsalt": "sandbox", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}


@dataclass
class PlotData:
    """What the plot draws: arrays inside the workload's window (teardown dropped)."""

    t: np.ndarray
    memory: dict[str, np.ndarray]  # series name -> MB
    processes: np.ndarray | None


def plot_data(r: AnalysisResult) -> PlotData:
    """The report's plot series, cut to the workload's window."""
    s = r.series
    t = np.asarray(s.get("t", []), float)
    lo, hi = r.workload_window_s
    keep = (t >= (lo if lo is not None else -math.inf) - 60) & \
        (t <= (hi if hi is not None else math.inf))  # start-up stays: it is cut visibly

    def arr(name: str) -> np.ndarray:
        return np.asarray([np.nan if v is None else v for v in s[name]], float)[keep]

    names: list[str] = [k for k in ("working_set", "anon", "file") if k in s] or \
        [k for k in ("memory_current",) if k in s]
    return PlotData(t[keep], {k: arr(k) for k in names},
                    arr("pids") if "pids" in s else None)


def memory_svg(r: AnalysisResult) -> str:
    """The plot as an ``<svg id="memory-plot">`` element."""
    data = plot_data(r)
    if not len(data.t) or not data.memory:
        return f'<svg xmlns="http://www.w3.org/2000/svg" id="{PLOT_ID}" width="900" ' \
               'height="40"><text x="10" y="25">no samples to plot</text></svg>'
    matplotlib, figure, _ = _matplotlib()
    with matplotlib.rc_context(RC):
        fig = figure(figsize=(9.6, 5.4), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        _memory_axis(top, data, r)
        _process_axis(bottom, data)
        return _svg(fig, PLOT_ID)


def _matplotlib() -> tuple[Any, Any, Any]:
    """matplotlib, its Figure and MaxNLocator, imported on first use (0.3 s; only reports
    that draw need it)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    return matplotlib, Figure, MaxNLocator


def _svg(fig: Figure, plot_id: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    return svg.replace("<svg ", f'<svg id="{plot_id}" ', 1)


def roles_svg(r: AnalysisResult) -> str:
    """PSS per process role over the workload's window, as ``<svg id="roles-plot">``;
    empty when roles were not sampled."""
    series = r.role_pss_mb
    if len(series.get("t", [])) < 2:
        return ""
    matplotlib, figure, locator = _matplotlib()
    with matplotlib.rc_context(RC):
        fig = figure(figsize=(9.6, 2.8), layout="constrained")
        ax = fig.subplots()
        for name, mb in series.items():
            if name != "t":
                ax.plot(series["t"], mb, lw=1.2, label=name, gid=f"role-{name}")
        ax.set_ylabel("PSS (MB)")
        ax.set_xlabel("time since the harness started (s)")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(locator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        ax.xaxis.set_major_locator(locator(nbins=10, steps=[1, 2, 2.5, 5, 10]))
        ax.legend(loc="upper left", fontsize=8, ncols=5, frameon=False)
        ax.grid(axis="y", color="#eee")
        return _svg(fig, ROLES_PLOT_ID)


def _memory_axis(ax, data: PlotData, r: AnalysisResult) -> None:
    for name, mb in data.memory.items():
        label, color = SERIES[name]
        ax.plot(data.t, mb, color=color, lw=1.0, label=label, gid=f"series-{name}")
    v = r.verdict
    if v.warmup_cut_s is not None and len(data.t) and v.warmup_cut_s > data.t[0]:
        ax.axvline(v.warmup_cut_s, color="#ff7f0e", ls="--", lw=1, label="start-up cut",
                   gid="startup-cut")
    for step in v.steps:
        ax.axvline(step["t"], color="#444", ls=":", lw=1, gid="level-shift")
    if v.trend.fit_line:
        (xa, ya), (xb, yb) = v.trend.fit_line
        ax.plot([xa, xb], [ya, yb], color="black", lw=2,
                label=f"floor trend ({v.signal}, {v.slope_mb_s:+.3f} MB/s)", gid="trend-fit")
        x = np.linspace(xa, xb, 50)
        if v.slope_ci_mb_s:
            low, high = v.slope_ci_mb_s
            ax.fill_between(x, ya + low * (x - xa), ya + high * (x - xa), color="black",
                            alpha=0.12, lw=0, label="95% bounds of the rate",
                            gid="rate-interval")
        if v.budget_mb_s is not None:
            ax.plot(x, ya + v.budget_mb_s * (x - xa), color="#b00", ls="--", lw=1.2,
                    label=f"budget {v.budget}", gid="budget-line")
    ax.set_ylabel("memory (MB)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(_matplotlib()[2](nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.legend(loc="lower right", fontsize=8, ncols=2, frameon=False)
    ax.grid(axis="y", color="#eee")


def _process_axis(ax, data: PlotData) -> None:
    ax.set_gid("processes")
    if data.processes is not None:
        ax.step(data.t, data.processes, where="post", color="#9467bd", lw=1,
                gid="series-processes")
    ax.set_ylabel("processes")
    ax.set_ylim(bottom=0)
    locator = _matplotlib()[2]
    ax.yaxis.set_major_locator(locator(nbins=3, steps=[1, 2, 5, 10], integer=True))
    ax.xaxis.set_major_locator(locator(nbins=10, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel("time since the harness started (s)")
    ax.grid(axis="y", color="#eee")
