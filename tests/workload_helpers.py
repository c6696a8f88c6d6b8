"""Run the real screenshot workload in a real slice for a test, then tear everything down:
slice, network namespace, escaped processes (found by the run's marker), /dev/shm files and
the run directory."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from sandbox.host import HostFacts, Slice, open_slice
from sandbox.host.isolation import PrivateFs, RunUser, allocate_user, release_user
from sandbox.host.reaper import reap
from sandbox.host.slice import marked_pids
from sandbox.workloads.launcher import Workload, launch_screenshot
from sandbox.workloads.network import NETNS_DIR
from sandbox.workloads.screenshot import ScreenshotSpec
from sandbox.workloads.screenshot.inject import SHM_DIR


@dataclass
class Run:
    run_id: str
    run_dir: Path
    slice: Slice
    workload: Workload
    user: RunUser
    private_fs: PrivateFs

    def operations(self) -> list[dict]:
        path = self.run_dir / "operations.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() \
            else []

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """The workload's ``ready`` line (its browser is up)."""
        found = wait_for(lambda: next(
            (r for r in self.workload.records if r.get("kind") == "ready"), None), timeout)
        assert found, f"workload never became ready; log: {self.log()}"
        return found

    def wait_exit(self, timeout: float) -> int:
        code = self.workload.proc.wait(timeout=timeout)
        for reader in self.workload.readers:
            reader.join(10)
        return code

    def log(self) -> str:
        path = self.run_dir / "workload.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def new_run_dir() -> Path:
    """A run directory the workload's user can reach (pytest's tmp_path is 0700) and see (not
    under /tmp, which its private /tmp covers)."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-run-", dir="/var/tmp"))
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def kill_marked(run_id: str) -> set[int]:
    """SIGKILL and reap what is left of the run anywhere on the host (escaped processes)."""
    pids = marked_pids(run_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(psutil.pid_exists(p) and
                             psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                             for p in pids if psutil.pid_exists(p)), 5.0, 0.02)
    reap(pids)
    return pids


@contextlib.contextmanager
def screenshot_run(facts: HostFacts, spec: ScreenshotSpec) -> Iterator[Run]:
    """The screenshot workload as a run makes it: a UID of its own, private /tmp and
    /dev/shm (``Run.private_fs``), its own slice."""
    run_id = f"test-{secrets.token_hex(4)}"
    run_dir = new_run_dir()
    spec.chromium = facts.chromium or spec.chromium
    slice_ = open_slice(run_id, facts.cgroup)
    workload = None
    try:
        with run_isolation(run_id, run_dir) as (user, private_fs):
            with slice_:
                workload = launch_screenshot(slice_, spec, run_dir, user=user,
                                             private_fs=private_fs)
                yield Run(run_id, run_dir, slice_, workload, user, private_fs)
                workload.stop(timeout=10.0)
            kill_marked(run_id)
    finally:
        if workload is not None:
            workload.close()
        kill_marked(run_id)
        for leftover in SHM_DIR.glob(f"sandbox-{run_id}-*"):
            leftover.unlink()
        shutil.rmtree(run_dir, ignore_errors=True)
        assert not (NETNS_DIR / f"sandbox-{run_id}").exists()


CHROMIUM_NAMES = {"chromium", "chrome", "chrome_crashpad_handler", "headless_shell"}


def anon_bytes(slice_: Slice) -> int:
    """Anonymous memory of the slice from its own memory.stat (v1: total_rss, v2: anon)."""
    v2 = slice_.backend == "v2"
    stat_file = slice_.path("unified" if v2 else "memory", "memory.stat")
    key = "anon" if v2 else "total_rss"
    for line in stat_file.read_text().splitlines():
        name, value = line.split()
        if name == key:
            return int(value)
    raise AssertionError(f"no {key} in {stat_file}")


def in_slice(pid: int, slice_: Slice) -> bool:
    """Whether /proc/<pid>/cgroup puts ``pid`` in the slice in every hierarchy it uses."""
    from sandbox.host.cgroups import UNIFIED, parse_proc_cgroup

    own = parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    layout = slice_.layout
    for key, directory in slice_.dirs.items():
        mount = layout.unified_mount if key == UNIFIED else layout.v1_mounts[key]
        if own.get(key) != "/" + str(directory.relative_to(mount)):
            return False
    return True


def chromium_processes() -> dict[int, tuple[str, int]]:
    """Every Chromium process on the host: pid -> (executable name, net namespace inode)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(f"/proc/{entry.name}/exe"))
            netns = os.stat(f"/proc/{entry.name}/ns/net").st_ino
        except OSError:
            continue
        if exe in CHROMIUM_NAMES:
            found[int(entry.name)] = (exe, netns)
    return found


@contextlib.contextmanager
def run_isolation(run_id: str, run_dir: Path) -> Iterator[tuple[RunUser, PrivateFs]]:
    """A UID of the run's own and its private /tmp and /dev/shm, released afterwards (call
    once every process of the run is gone)."""
    user = allocate_user(run_id)
    private_fs = PrivateFs(f"sandbox-{run_id}", 256 * 2**20)
    try:
        private_fs.create(user)
        yield user, private_fs
    finally:
        private_fs.remove()
        release_user(user)
