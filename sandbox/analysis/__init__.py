"""Regression analysis of a run: the seed's rule plus a robust leak verdict (docs/statistics.md)."""

from sandbox.analysis.core import AnalysisResult, Verdict, analyze
from sandbox.analysis.trend import TrendParams, TrendResult, trend_test
from sandbox.analysis.verdict import Finding, Thresholds, exit_code

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
