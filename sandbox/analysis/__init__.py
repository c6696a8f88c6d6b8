"""Regression analysis of a run: the seed's rule plus a robust leak verdict (docs/statistics.md).

The names below load their modules when first used: importing a part of the analysis (the
budget's constants, the cleanup policy) does not load scipy and statsmodels, which the
harness needs only once its run is judged.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.analysis.core import analyze
    from sandbox.analysis.result import AnalysisResult, Finding, Verdict
    from sandbox.analysis.trend import TrendParams, TrendResult, trend_test
    from sandbox.analysis.verdict import Thresholds, exit_code

_WHERE = {
    "analyze": "core", "AnalysisResult": "result", "Finding": "result", "Verdict": "result",
    "TrendParams": "trend", "TrendResult": "trend", "trend_test": "trend",
    "Thresholds": "verdict", "exit_code": "verdict",
}
__all__ = [
    "AnalysisResult",
    "Finding",
    "Thresholds",
    "TrendParams",
    "TrendResult",
    "Verdict",
    "analyze",
    "exit_code",
    "trend_test",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
