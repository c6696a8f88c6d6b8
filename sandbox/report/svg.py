"""A small inline SVG line plot of the run's memory and process count (no plotting library)."""

from __future__ import annotations

from html import escape

import numpy as np

from sandbox.analysis import AnalysisResult

COLORS = {"working_set": "#1f77b4", "anon": "#d62728", "file": "#2ca02c",
          "memory_current": "#7f7f7f", "pids": "#9467bd"}
W, H, L, R, T, B = 900, 380, 60, 60, 20, 40  # size and margins


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [float(x) for x in np.linspace(lo, hi, n)]


def _path(xs: list[float], ys: list[float | None]) -> str:
    parts, pen = [], "M"
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            pen = "M"
            continue
        parts.append(f"{pen}{x:.1f},{y:.1f}")
        pen = "L"
    return " ".join(parts)


def memory_svg(r: AnalysisResult) -> str:
    """SVG of working set, anon, file (MB, left axis) and pids (right axis) over time."""
    s = r.series
    t = s.get("t", [])
    mem_keys = [k for k in ("working_set", "anon", "file") if k in s] or (
        ["memory_current"] if "memory_current" in s else [])
    if not t or not mem_keys:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="60"><text x="10" ' \
               'y="30">no samples to plot</text></svg>'
    t0, t1 = t[0], max(t[-1], t[0] + 1e-9)
    vals = [v for k in mem_keys for v in s[k] if v is not None]
    y0, y1 = 0.0, max(vals) * 1.08 or 1.0
    pw, ph = W - L - R, H - T - B

    def sx(x: float) -> float:
        return L + (x - t0) / (t1 - t0) * pw

    def sy(y: float) -> float:
        return T + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="memory-plot" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for v in _ticks(y0, y1):
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" '
                   f'stroke="#eee"/><text x="{L - 5}" y="{sy(v) + 4:.1f}" '
                   f'text-anchor="end">{v:.0f}</text>')
    for v in _ticks(t0, t1):
        out.append(f'<text x="{sx(v):.1f}" y="{T + ph + 15}" text-anchor="middle">{v:.0f}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 5}" text-anchor="middle">time (s)</text>'
               f'<text x="14" y="{T + ph / 2}" transform="rotate(-90 14 {T + ph / 2})" '
               f'text-anchor="middle">memory (MB)</text>')
    xs = [sx(x) for x in t]
    for k in mem_keys:
        ys = [None if v is None else sy(v) for v in s[k]]
        out.append(f'<path d="{_path(xs, ys)}" fill="none" stroke="{COLORS[k]}" '
                   f'stroke-width="1.3" class="series-{k}"/>')
    if "pids" in s and any(v is not None for v in s["pids"]):
        p1 = max(v for v in s["pids"] if v is not None) * 1.1 or 1.0
        ys = [None if v is None else T + ph - v / p1 * ph for v in s["pids"]]
        out.append(f'<path d="{_path(xs, ys)}" fill="none" stroke="{COLORS["pids"]}" '
                   f'stroke-dasharray="4 2" stroke-width="1.2" class="series-pids"/>')
        for v in _ticks(0, p1):
            out.append(f'<text x="{L + pw + 5}" y="{T + ph - v / p1 * ph + 4:.1f}" '
                       f'fill="{COLORS["pids"]}">{v:.0f}</text>')
        out.append(f'<text x="{W - 10}" y="{T + ph / 2}" transform="rotate(90 {W - 10} '
                   f'{T + ph / 2})" text-anchor="middle" fill="{COLORS["pids"]}">pids</text>')
    v = r.verdict
    if v.warmup_cut_s is not None and v.warmup_cut_s > t0:
        x = sx(v.warmup_cut_s)
        out.append(f'<line id="warmup-cut" x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{T + ph}" '
                   f'stroke="#ff7f0e" stroke-dasharray="6 3"/><text x="{x + 4:.1f}" '
                   f'y="{T + ph - 12}" fill="#ff7f0e">warm-up cut</text>')
    for cp in v.change_points_s:
        out.append(f'<line x1="{sx(cp):.1f}" x2="{sx(cp):.1f}" y1="{T + ph - 8}" y2="{T + ph}" '
                   f'stroke="#444"/>')
    if v.trend.fit_line:
        (xa, ya), (xb, yb) = v.trend.fit_line
        out.append(f'<line id="trend-fit" x1="{sx(xa):.1f}" y1="{sy(ya):.1f}" x2="{sx(xb):.1f}" '
                   f'y2="{sy(yb):.1f}" stroke="#000" stroke-width="2"/>')
    legend = [*mem_keys, *(["pids"] if "pids" in s else [])]
    for i, k in enumerate(legend):
        x = L + 10 + i * 110
        out.append(f'<rect x="{x}" y="{T + 6}" width="12" height="3" fill="{COLORS[k]}"/>'
                   f'<text x="{x + 16}" y="{T + 11}">{escape(k)}</text>')
    if v.trend.fit_line:
        x = L + 10 + len(legend) * 110
        out.append(f'<rect x="{x}" y="{T + 6}" width="12" height="3" fill="#000"/>'
                   f'<text x="{x + 16}" y="{T + 11}">trend ({escape(str(v.signal))})</text>')
    out.append("</svg>")
    return "\n".join(out)
