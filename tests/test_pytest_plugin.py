"""The pytest plugin, for real: a marked test passes on a clean body and fails on a body that
leaks memory, orphans a process or leaves a temp file."""

from __future__ import annotations

pytest_plugins = ["pytester"]

BODIES = '''
import os, subprocess, tempfile, time
import pytest

@pytest.mark.sandbox(max_growth_mb_per_s=10, max_growth_mb=60)
def test_clean():
    for _ in range(30):
        block = bytearray(5 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        del block
        time.sleep(0.05)

KEEP = []

@pytest.mark.sandbox(max_growth_mb_per_s=10, max_growth_mb=60)
def test_leaks():
    for _ in range(30):
        block = bytearray(5 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        KEEP.append(block)
        time.sleep(0.05)

@pytest.mark.sandbox(budget="100MB/s")
def test_within_budget():
    for _ in range(30):
        KEEP.append(bytearray(b"y" * 2**20))
        time.sleep(0.05)

@pytest.mark.sandbox(budget="1MB/s")
def test_over_budget():
    for _ in range(60):
        KEEP.append(bytearray(b"z" * 2**20))
        time.sleep(0.05)

@pytest.mark.sandbox
def test_orphans():
    subprocess.Popen(["sleep", "300"], start_new_session=True)

@pytest.mark.sandbox
def test_leaves_file():
    fd, _ = tempfile.mkstemp(prefix="forgotten-")
    os.close(fd)

@pytest.mark.sandbox
def test_body_failure_is_reported():
    assert 1 + 1 == 3
'''


def test_marker_judges_bodies(pytester, needs_cgroups):
    pytester.makepyfile(test_bodies=BODIES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines([
        "sandbox: memory grew at * MB/s (limit 10 MB/s)*",
        "sandbox: memory grew * MB/s, over the budget 1 MB/s*",
        "sandbox: orphaned processes left in the slice: * (sleep 300)",
        "sandbox: temp files left behind: forgotten-*",
        "AssertionError: assert (1 + 1) == 3",
    ])
    assert "FAILED test_bodies.py::test_clean" not in result.stdout.str()
    assert "FAILED test_bodies.py::test_within_budget" not in result.stdout.str()
