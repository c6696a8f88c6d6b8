"""A run's slice on pure cgroup v2, in the test's own delegated scope: create, place, account
(memory.current, memory.peak, pids.current), cgroup.kill, remove."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from sandbox.host import open_slice
from tests.guest.probe import HOLD

pytestmark = pytest.mark.guest
MB = 1 << 20


def read_int(path: Path | None) -> int:
    assert path is not None
    return int(path.read_text())


def cgroup_of(pid: int) -> Path:
    rel = Path(f"/proc/{pid}/cgroup").read_text().split("::", 1)[1].strip()
    return Path("/sys/fs/cgroup") / rel.lstrip("/")


def hold(slice_, mb: int) -> subprocess.Popen:
    proc = slice_.spawn([sys.executable, "-c", HOLD, str(mb)], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def test_slice_places_and_accounts(delegated) -> None:
    parent = delegated.cgroup.parents["unified"]
    with open_slice(f"t-{uuid.uuid4().hex[:8]}", delegated.cgroup) as slice_:
        unified = slice_.dirs["unified"]
        assert unified.parent == parent
        assert {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text().split())
        assert slice_.harness_leaf is not None and cgroup_of(os.getpid()) == slice_.harness_leaf

        big = hold(slice_, 64)
        assert cgroup_of(big.pid) == unified
        assert read_int(slice_.path("unified", "memory.current")) >= 64 * MB
        assert read_int(slice_.path("unified", "pids.current")) == 1
        small = hold(slice_, 1)
        assert read_int(slice_.path("unified", "pids.current")) == 2
        assert slice_.pids() == {big.pid, small.pid}

        big.stdin.close()
        big.wait(timeout=30)
        # The peak is the kernel's watermark: it keeps the 64 MB the slice no longer holds.
        assert read_int(slice_.path("unified", "memory.current")) < 32 * MB
        assert read_int(slice_.path("unified", "memory.peak")) >= 64 * MB
        small.stdin.close()
    assert not unified.exists()
    assert cgroup_of(os.getpid()) == parent and slice_.harness_leaf is None


def test_cgroup_kill_empties_the_slice(delegated) -> None:
    with open_slice(f"t-{uuid.uuid4().hex[:8]}", delegated.cgroup) as slice_:
        # A shell with a background child and a daemonised (setsid) grandchild: not one tree.
        slice_.spawn(["/bin/sh", "-c", "sleep 300 & setsid sleep 300 & echo started; wait"],
                     stdout=subprocess.PIPE).stdout.readline()
        members = slice_.pids()
        assert len(members) == 3
        events = slice_.path("unified", "cgroup.events")
        assert "populated 1" in events.read_text()
        slice_.kill()
        assert slice_.wait_empty(10.0)
        assert "populated 0" in events.read_text().splitlines()
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                       for p in members)
        assert slice_.teardown() == set()
    assert not slice_.dirs["unified"].exists()
