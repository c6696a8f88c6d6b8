"""Calibration of the robust verdict on seeded synthetic series (docs/statistics.md).

Series: warm-up ramp + GC sawtooth + AR(1) noise (lag-1 correlation 0.9 at 0.5 s sampling).
Prints the measured share of series labelled ``leak`` per cell; asserts the false-positive rate on
clean and step 5-minute series and the recall of a 0.1 MB/s leak over 5 minutes.
"""

from collections import Counter

import numpy as np
import pytest

from sandbox.analysis import trend_test
from tests.synthetic import series

N = 100
REFERENCE_NOISE_MB = 5.0


def leak_share(duration_s: float, noise_sd: float, leak: float = 0.0, step: float = 0.0,
               n: int = N) -> tuple[float, Counter]:
    """Share of ``n`` seeded series labelled leak, and the label counts."""
    rng = np.random.default_rng([int(duration_s), int(noise_sd * 10), int(leak * 1000), int(step)])
    labels = Counter(
        trend_test(*series(rng, duration_s, leak_mb_s=leak, step_mb=step, noise_sd=noise_sd)).label
        for _ in range(n)
    )
    return labels["leak"] / n, labels


@pytest.fixture(scope="module")
def report_line(pytestconfig):
    """Print a line to the terminal even when output is captured."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")

    def emit(text: str) -> None:
        with capman.global_and_fixture_disabled():
            print(text)

    return emit


@pytest.mark.parametrize("noise_sd", [2.0, REFERENCE_NOISE_MB])
@pytest.mark.parametrize(("kind", "step"), [("clean", 0.0), ("step 40 MB", 40.0)])
def test_false_positives_5_min(kind, step, noise_sd, report_line):
    share, labels = leak_share(300, noise_sd, step=step)
    report_line(f"\ncalibration 5 min {kind:<10} noise {noise_sd:g} MB: leak {share:.0%} "
                f"{dict(labels)}")
    assert share < 0.05


def test_recall_0_1_mb_s_over_5_min(report_line):
    share, labels = leak_share(300, REFERENCE_NOISE_MB, leak=0.1)
    report_line(f"\ncalibration 5 min leak 0.1 MB/s noise 5 MB: recall {share:.0%} {dict(labels)}")
    assert share >= 0.90


@pytest.mark.slow  # figures, not a check the suite needs: pytest -m slow tests/test_calibration.py
def test_calibration_table(report_line):
    """Measured figures for docs/statistics.md; loose sanity bounds only."""
    rows = []
    for duration, leak, n in [(300, 0.02, N), (300, 0.05, N), (300, 0.5, N),
                              (900, 0.0, 50), (900, 0.05, 50)]:
        share, _ = leak_share(duration, REFERENCE_NOISE_MB, leak=leak, n=n)
        rows.append((duration, leak, share))
        report_line(f"\ncalibration {duration // 60} min leak {leak} MB/s noise 5 MB: "
                    f"leak {share:.0%} of {n}")
    shares = {(d, leak): s for d, leak, s in rows}
    assert shares[(300, 0.5)] >= 0.95
    assert shares[(900, 0.0)] <= 0.05
    assert shares[(900, 0.05)] >= 0.9
    assert shares[(300, 0.02)] < shares[(300, 0.05)]  # recall grows with the rate
