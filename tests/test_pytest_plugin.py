"""The pytest plugin, for real: a marked test passes on a clean body and fails on a body that
leaks memory, orphans a process or leaves a temp file; it is opt-in, keeps a failed test's
samples, awaits async bodies, and runs marked tests with a warning where no slice can be had."""

from __future__ import annotations

import json

import psutil
import pytest

from .cli_helpers import sandbox

pytest_plugins = ["pytester"]

ESCAPE_BODY = '''
import subprocess, time
import pytest
from sandbox.host import discover

@pytest.mark.sandbox
def test_escapes():
    procs = discover().cgroup.unified_mount / "cgroup.procs"
    subprocess.Popen(["sh", "-c", f"echo $$ > {procs} && exec sleep 301"],
                     start_new_session=True)
    time.sleep(0.5)
'''


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


ASYNC_BODIES = '''
import asyncio
import pytest

KEEP = []

@pytest.mark.sandbox(max_growth_mb=60)
async def test_async_clean():
    await asyncio.sleep(0.5)

@pytest.mark.sandbox(max_growth_mb=60)
async def test_async_leaks():
    for _ in range(30):
        KEEP.append(bytearray(b"a" * 5 * 2**20))
        await asyncio.sleep(0.05)
'''


def test_marker_judges_bodies(pytester, needs_cgroups):
    pytester.makepyfile(test_bodies=BODIES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--sandbox",
                                           "--sandbox-dir", "kept")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines([
        "sandbox: memory grew at * MB/s (limit 10 MB/s)*",
        "sandbox: anon grows * MB/s (* MB/h), over the budget 1 MB/s*",
        "sandbox: orphaned processes left in the slice: * (sleep 300)",
        "sandbox: temp files left behind: forgotten-*",
        "AssertionError: assert (1 + 1) == 3",
    ])
    assert "FAILED test_bodies.py::test_clean" not in result.stdout.str()
    assert "FAILED test_bodies.py::test_within_budget" not in result.stdout.str()

    # the session summary names every marked test; failed ones keep their run directory:
    # each test was one run of the runner, as `sandbox run` makes them
    result.stdout.fnmatch_lines(["*= sandbox =*", "test_bodies.py::test_clean: passed",
                                 "test_bodies.py::test_leaks: memory grew * (samples: *)"])
    assert len(list((pytester.path / "kept").iterdir())) == 5
    leaks = next(p for p in (pytester.path / "kept").iterdir() if "test_leaks" in p.name)
    assert len((leaks / "samples.jsonl").read_text().splitlines()) > 10
    assert "memory grew" in (leaks / "findings.json").read_text()
    info = json.loads((leaks / "run.json").read_text())
    assert (info["workload"], info["config"]["test"]) == ("test", "test_bodies.py::test_leaks")
    assert info["backend"]["tracer"]["backend"] == "proc-connector"
    orphans = next(p for p in (pytester.path / "kept").iterdir() if "test_orphans" in p.name)
    report = json.loads((orphans / "report.json").read_text())
    assert [o["cmdline"] for o in report["process_cleanup"]["orphans"]] == [["sleep", "300"]]
    # one verdict: `sandbox report` on the kept run directory says what the plugin said
    over = next(p for p in (pytester.path / "kept").iterdir() if "test_over_budget" in p.name)
    reread = sandbox("report", str(over), "-o", str(pytester.path / "re"))
    assert reread.returncode == 1, reread.stdout + reread.stderr
    verdict = json.loads((pytester.path / "re" / "report.json").read_text())["verdict"]
    assert verdict["outcome"] == "over" and verdict["workload_kind"] == "test body", verdict


def test_an_escape_is_found_and_killed(pytester, needs_cgroups):
    """A body whose child moves itself out of the slice: the verifier finds it by the run's
    marker, the test fails naming it, and it is killed."""
    if needs_cgroups.cgroup.unified_mount is None:
        pytest.skip("needs a unified hierarchy to escape into")
    pytester.makepyfile(test_escape=ESCAPE_BODY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--sandbox")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["sandbox: processes escaped the slice: * (sleep 301)*"])
    assert not [p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] == ["sleep", "301"]]


def test_marked_tests_are_plain_tests_without_opt_in(pytester):
    pytester.makepyfile(test_bodies=BODIES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6, failed=1)  # only the failing assertion fails
    result.stdout.fnmatch_lines(["*marked sandbox ran as plain tests: pass --sandbox*"])
    assert not (pytester.path / ".sandbox-pytest").exists()


def test_ini_opt_in_and_async_bodies_are_awaited(pytester, needs_cgroups):
    pytester.makeini("[pytest]\nsandbox = true\n")
    pytester.makepyfile(test_async=ASYNC_BODIES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_async_leaks*memory grew by * MB (limit 60 MB)*"])
    assert "never awaited" not in result.stdout.str() + result.stderr.str()
    assert (pytester.path / ".sandbox-pytest").is_dir()


def test_without_a_slice_marked_tests_fail_unless_allowed(pytester, monkeypatch):
    """No slice: a marked test is never a silent pass (a leak would go unseen); with
    --sandbox-allow-unsandboxed it runs as a plain test, with a warning."""
    monkeypatch.setenv("SANDBOX_CGROUP_MODE", "none")  # no usable cgroup hierarchy
    pytester.makepyfile(test_bodies=BODIES)
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--sandbox")
    strict.assert_outcomes(failed=7)
    strict.stdout.fnmatch_lines(["*sandbox: no usable cgroup hierarchy*the test cannot be "
                                 "judged without its slice (--sandbox-allow-unsandboxed*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--sandbox",
                                           "--sandbox-allow-unsandboxed")
    result.assert_outcomes(passed=6, failed=1, warnings=7)
    result.stdout.fnmatch_lines([
        "*PytestWarning: sandbox: no usable cgroup hierarchy*the test ran without its slice",
        "7 marked test(s) ran without a slice: no usable cgroup hierarchy*",
    ])


def test_pytest_asks_for_a_delegated_scope_as_sandbox_run_does(pytester, needs_cgroups):
    """With --sandbox, pytest goes through the same delegated-scope step as ``sandbox run``
    (sandbox.host.systemd.ensure_delegated_scope, proven under systemd in the v2 guest), with
    an argv that re-runs the same pytest command."""
    pytester.makeconftest("""
import sandbox.host.systemd as systemd

def _record(facts, argv):
    print("SCOPE-ARGV", argv[1:])

systemd.ensure_delegated_scope = _record
""")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--sandbox",
                                           "test_one.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["SCOPE-ARGV ?'-m', 'pytest', *'--sandbox', 'test_one.py'?"])
