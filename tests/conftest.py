"""Shared fixtures: host facts, root/cgroup requirements, and a guard that no run leaves
a cgroup directory or a marked process behind."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host import discover
from sandbox.host.registry import SLICE_PREFIX
from tests import servers
from tests.rejudge import rejudged

REPO = Path(__file__).resolve().parent.parent
CGROUP_ROOT = Path("/sys/fs/cgroup")


def run_slices_on_disk() -> list[Path]:
    """Every cgroup directory named sandbox-* in any hierarchy (ours or a leftover)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        if hierarchy.is_dir():
            found += [p for p in hierarchy.rglob(f"{SLICE_PREFIX}*") if p.is_dir()]
    return found


@pytest.fixture(scope="session")
def facts():
    return discover()


@pytest.fixture
def needs_cgroups(facts):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if facts.cgroup.mode == "none":
        pytest.skip(f"no usable cgroup hierarchy: {facts.cgroup.reason}")
    return facts


@pytest.fixture
def needs_chromium(facts):
    if not facts.chromium:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return facts


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on a free loopback port (its URL), stopped after the test."""
    with servers.pushgateway(tmp_path) as url:
        yield url


@pytest.fixture
def runs_dir():
    """A runs directory the workload's unprivileged user (nobody) can reach: pytest's own
    tmp_path lives under /tmp/pytest-of-root (mode 700)."""
    path = Path("/var/tmp") / f"sandbox-tests-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir(mode=0o755)
    yield path
    differ = rejudged(path)  # every run a test makes, read back as `sandbox report` reads it
    shutil.rmtree(path, ignore_errors=True)
    assert not differ, "; ".join(differ)


@pytest.fixture(autouse=True, scope="session")
def private_state_dir(tmp_path_factory):
    """Slice records of the test session live apart from a real harness's /run/sandbox."""
    state = tmp_path_factory.mktemp("state")
    os.environ["SANDBOX_STATE_DIR"] = str(state)
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leftover_slices(private_state_dir):
    """Fail any test that leaves a cgroup directory of a run behind. A slice is this
    session's when its record is in the session's state directory (a slice keeps its record
    until its directories are gone); others belong to another harness on the machine."""
    before = set(run_slices_on_disk())
    yield
    left = {p for p in set(run_slices_on_disk()) - before
            if (private_state_dir / f"{p.name}.json").exists()}
    assert not left, f"cgroup directories left behind: {sorted(map(str, left))}"
