"""The command-leak positive control (tests/test_command_leak.py) on pure cgroup v2, where the
sampler reads memory.current, memory.stat and memory.peak."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_command_leak import check_command_leak

pytestmark = pytest.mark.guest


def test_leaking_command_detected_clean_not(delegated, runs_dir: Path) -> None:
    check_command_leak(runs_dir, "cgroup-v2")
