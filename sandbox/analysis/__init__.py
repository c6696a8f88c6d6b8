"""Regression analysis of a run: the seed's rule plus a robust leak verdict (docs/statistics.md)."""

from sandbox.analysis.core import analyze
from sandbox.analysis.result import AnalysisResult, Finding, Verdict
from sandbox.analysis.trend import TrendParams, TrendResult, trend_test
from sandbox.analysis.verdict import Thresholds, exit_code

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
