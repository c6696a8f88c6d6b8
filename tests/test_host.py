"""Host layer, for real: discovery, the slice lifecycle in every mode this host offers, stale
slices of a SIGKILLed harness, limits, and teardown on errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sandbox.host import Limits, discover, open_slice
from sandbox.host.cgroups import discover_layout, parse_mountinfo
from sandbox.host.cleanup import cleanup_stale
from sandbox.host.reaper import reap
from sandbox.host.registry import load_records
from sandbox.host.slice import marked_pids

from .conftest import run_slices_on_disk

# A double fork + setsid daemon, a plain background child and a grandchild in a new session.
DAEMONS = (
    "sleep 300 & "
    "python3 -c 'import os,time\nif os.fork()==0:\n os.setsid()\n if os.fork()==0:\n"
    "  time.sleep(300)\n os._exit(0)\nos._exit(0)' ; "
    "setsid sleep 300 & echo started; sleep 300"
)

# Real contents of /proc/self/mountinfo and /proc/self/cgroup on a pure cgroup v2 host
# (Debian 12, systemd 252, a login session); MOUNT is replaced by the fixture's directory.
PURE_V2_MOUNTINFO = (
    "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "29 21 0:26 / MOUNT rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
)
PURE_V2_PROC_CGROUP = "0::/user.slice/user-0.slice/session-1.scope\n"
PURE_V2_ROOT_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc\n"


def expected_mode() -> str:
    """What the mounts on this host say, read independently of the code under test."""
    fstypes = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, *_ = line.split()
        fstypes[mountpoint] = fstype
    if fstypes.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    if fstypes.get("/sys/fs/cgroup/unified") == "cgroup2" and fstypes.get(
        "/sys/fs/cgroup/memory"
    ) == "cgroup":
        return "hybrid"
    return "v1"


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_doctor_reports_this_hosts_mode(needs_cgroups):
    assert discover().cgroup.mode == expected_mode()


def test_doctor_json_and_exit_code(needs_cgroups):
    out = subprocess.run([sys.executable, "-m", "sandbox", "doctor", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert f'"mode": "{expected_mode()}"' in out.stdout


def test_doctor_ends_with_one_line_saying_whether_runs_can_be_made(needs_cgroups):
    out = subprocess.run([sys.executable, "-m", "sandbox", "doctor"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == discover().summary()
    assert out.stdout.splitlines()[-1].startswith("Runs can be made here")
    if shutil.which("setpriv"):
        user = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               sys.executable, "-m", "sandbox", "doctor"],
                              capture_output=True, text=True, check=False)
        assert user.returncode == 3
        assert user.stdout.splitlines()[-1] == ("No runs can be made here: must run as root "
                                                "(cgroups, eBPF and network namespaces need it).")


def test_what_runs_will_lack_and_the_flag_that_fixes_it():
    """The facts of a container without --privileged, without BTF, without a browser: each
    missing part is named with its fix, and the summary line names them all."""
    import dataclasses

    from sandbox.host.cgroups import CgroupLayout

    facts = dataclasses.replace(
        discover(), in_container=True, is_root=True, can_mount=True, chromium=None, btf=None,
        bpftrace="/usr/bin/bpftrace", ticker=True,
        cgroup=CgroupLayout(mode="none", reason="cgroup directory not writable: memory"))
    lacks = {lack.what: lack for lack in facts.lacks()}
    assert lacks["cgroup limits"].fix == "run the container with --privileged"
    assert "-v /sys/kernel/btf:/sys/kernel/btf:ro" in lacks["the eBPF tracer"].fix
    assert "--browser PATH" in lacks["browser runs (command runs work)"].fix
    assert facts.summary() == (
        "Runs can be made here; they will lack cgroup limits (cgroup directory not writable: "
        "memory); the eBPF tracer (no kernel BTF at /sys/kernel/btf/vmlinux); browser runs "
        "(command runs work) (no usable Chromium).")
    unprivileged = dataclasses.replace(facts, can_mount=False)
    assert unprivileged.summary().startswith("No runs can be made here: no CAP_SYS_ADMIN")
    assert unprivileged.summary().endswith("run the container with --privileged.")


def test_pure_v2_layout_from_real_file_contents(tmp_path):
    """Fixture tree of a pure v2 host (this host is hybrid and cannot produce one)."""
    if os.geteuid() != 0:
        pytest.skip("layout discovery needs root")
    own = tmp_path / "user.slice/user-0.slice/session-1.scope"
    own.mkdir(parents=True)
    (tmp_path / "cgroup.controllers").write_text(PURE_V2_ROOT_CONTROLLERS)
    mountinfo = PURE_V2_MOUNTINFO.replace("MOUNT", str(tmp_path))
    assert [m[2] for m in parse_mountinfo(mountinfo)] == ["cgroup2"]
    layout = discover_layout(mountinfo=mountinfo, proc_cgroup=PURE_V2_PROC_CGROUP)
    assert layout.mode == "v2"
    assert layout.parents == {"unified": own}
    assert {"memory", "pids"} <= set(layout.v2_controllers)


def test_unknown_forced_mode_is_an_error():
    with pytest.raises(ValueError, match="unknown cgroup mode"):
        discover_layout("v3")


def modes_here() -> list[str]:
    mode = expected_mode()
    return {"hybrid": ["hybrid", "v1", "none"], "v2": ["v2", "none"]}.get(mode, [mode, "none"])


@pytest.mark.parametrize("mode", modes_here())
def test_slice_holds_every_descendant_and_kill_empties_it(needs_cgroups, mode):
    facts = discover(mode)
    assert facts.cgroup.mode == mode
    slice_ = open_slice(f"t-desc-{mode}", facts.cgroup)
    with slice_:
        proc = slice_.spawn(["sh", "-c", DAEMONS], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"started\n"
        # sh, sleep, the double-forked daemon, setsid sleep, the last sleep
        assert wait_for(lambda: len(slice_.pids()) == 5
                        and marked_pids(slice_.run_id) == slice_.pids())
        members = slice_.pids()
        slice_.kill()
        assert slice_.wait_empty(10)
    proc.stdout.close()
    alive = [p for p in members if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert not [p for p in members if psutil.pid_exists(p)], "zombies were reaped"
    assert marked_pids(slice_.run_id) == set()
    if mode != "none":
        assert not any(d.exists() for d in slice_.dirs.values())


def test_child_is_in_the_slice_before_exec(needs_cgroups):
    with open_slice("t-exec", needs_cgroups.cgroup) as slice_:
        proc = slice_.spawn(["cat", "/proc/self/cgroup"], stdout=subprocess.PIPE)
        text = proc.communicate()[0].decode()
    for key in slice_.dirs:
        assert slice_.name in text, key
    lines = [line for line in text.splitlines() if line.startswith("0::")]
    if "unified" in slice_.dirs:
        assert lines == [f"0::/{slice_.name}"] or lines[0].endswith(f"/{slice_.name}")


def test_workload_as_nobody_cannot_leave_the_slice(needs_cgroups):
    if "unified" not in needs_cgroups.cgroup.parents:
        pytest.skip("needs the unified hierarchy")
    root_procs = needs_cgroups.cgroup.parents["unified"] / "cgroup.procs"
    with open_slice("t-nobody", needs_cgroups.cgroup) as slice_:
        proc = slice_.spawn(["sh", "-c", f"echo $$ > {root_procs}"], user="nobody",
                            stderr=subprocess.PIPE)
        _, err = proc.communicate()
    assert proc.returncode != 0
    assert b"Permission denied" in err


def test_pids_limit_is_enforced(needs_cgroups):
    with open_slice("t-limit", needs_cgroups.cgroup, Limits(pids_max=4)) as slice_:
        proc = slice_.spawn(
            ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; wait"],
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: proc.poll() is not None or len(slice_.pids()) >= 4)
        time.sleep(0.3)
        assert len(slice_.pids()) <= 4


def test_teardown_runs_on_keyboard_interrupt(needs_cgroups):
    slice_ = open_slice("t-interrupt", needs_cgroups.cgroup)
    with pytest.raises(KeyboardInterrupt), slice_:
        slice_.spawn(["sleep", "300"])
        raise KeyboardInterrupt
    assert not any(d.exists() for d in slice_.dirs.values())
    assert marked_pids(slice_.run_id) == set()


HARNESS = """
import sys, time
from sandbox.host import discover, open_slice
s = open_slice("t-stale", discover().cgroup).create()
s.spawn(["sh", "-c", "sleep 300 & setsid sleep 300 & sleep 300"])
time.sleep(0.3)
print("ready", flush=True)
time.sleep(300)
"""


def test_stale_slice_of_killed_harness_is_cleaned(needs_cgroups):
    harness = subprocess.Popen([sys.executable, "-c", HARNESS], stdout=subprocess.PIPE)
    try:
        assert harness.stdout.readline() == b"ready\n"
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        harness.stdout.close()
    members = marked_pids("t-stale")
    assert len(members) == 4  # sh and three sleeps, one of them in its own session
    assert [r.name for r in load_records()] == ["sandbox-t-stale"]
    assert any(p.name == "sandbox-t-stale" for p in run_slices_on_disk())

    out = subprocess.run([sys.executable, "-m", "sandbox", "cleanup"], capture_output=True,
                         text=True, check=True)
    assert "removed sandbox-t-stale: killed 4 processes" in out.stdout
    assert wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status()
                                    != psutil.STATUS_ZOMBIE for p in members))
    assert not any(p.name == "sandbox-t-stale" for p in run_slices_on_disk())
    assert load_records() == []
    reap(members)  # they were reparented to this test process, a subreaper
    assert cleanup_stale() == []


def test_cleanup_gives_back_uids_of_dead_harnesses(private_state_dir):
    """A harness killed between taking a UID and recording its slice leaves only the UID's
    lock: cleanup releases it; a live harness's lock stays."""
    from sandbox.host.isolation import allocate_user, release_user

    dead = subprocess.Popen(["true"])
    dead.wait()
    users = private_state_dir / "users"
    users.mkdir(exist_ok=True)
    stale = users / "61180.json"
    stale.write_text(json.dumps({"run_id": "x", "harness_pid": dead.pid,
                                 "harness_start": 1.0}))
    live = allocate_user("live-run")
    try:
        cleanup_stale()
        assert not stale.exists()
        assert (users / f"{live.uid}.json").exists()
    finally:
        release_user(live)


def test_a_forked_child_runs_only_once_released(tmp_path):
    """host.forked: the child runs ``before`` at once and ``body`` only when released; closed
    unreleased it leaves without running it; a body that raises exits 1."""
    import subprocess

    from sandbox.host.forked import fork_gated

    mark = tmp_path / "ran"
    waiting = fork_gated(lambda: None, mark.touch)
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(0.3)
    assert not mark.exists()
    waiting.release()
    assert waiting.wait(5) == 0 and mark.exists()

    mark.unlink()
    closed = fork_gated(lambda: None, mark.touch)
    closed.release(run=False)
    assert closed.wait(5) == 1 and not mark.exists()

    def fails() -> None:
        raise RuntimeError("the body failed")

    failing = fork_gated(lambda: None, fails)
    failing.release()
    assert failing.wait(5) == 1


NAMESPACE_ROOT = """
import subprocess, sys, tempfile
from pathlib import Path
from sandbox.host.cgroup_slice import is_root_cgroup
mount = Path(tempfile.mkdtemp())
subprocess.run(["mount", "-t", "cgroup2", "none", str(mount)], check=True)
print(sorted(int(p) for p in (mount / "cgroup.procs").read_text().split()), is_root_cgroup(mount))
"""


def test_a_cgroup_namespace_root_is_not_spared_the_leaf_move(needs_cgroups):
    """A container's /sys/fs/cgroup is the root of its cgroup namespace, not the real root: the
    no-internal-processes rule holds there, so a v2 slice moves the harness into a leaf first
    (V2Memory._prepare_parent). Shown with a real cgroup namespace, as podman makes one."""
    from sandbox.host.cgroup_slice import is_root_cgroup, rmtree_cgroup

    unified = needs_cgroups.cgroup.unified_mount
    if unified is None or shutil.which("unshare") is None:
        pytest.skip("needs the unified hierarchy and unshare(1)")
    assert is_root_cgroup(unified)  # this host's harness runs in the real root
    outer = unified / f"sandbox-test-nsroot-{os.getpid()}"
    outer.mkdir()
    try:
        assert not is_root_cgroup(outer)
        # the child joins `outer`, then makes it its cgroup namespace's root, and mounts it
        out = subprocess.run(
            ["sh", "-c", f'echo $$ > {outer}/cgroup.procs && exec unshare --cgroup --mount '
                         f'{sys.executable} -c "$0"', NAMESPACE_ROOT],
            capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        pids, spared = out.stdout.split("]")
        assert pids.strip("[ ") and spared.strip() == "False"  # its own pid, in a non-root
    finally:
        rmtree_cgroup(outer)


def test_cgroup_utils_never_warns_a_user(tmp_path):
    """cgroup-utils' sources have invalid escapes: compiled afresh (no .pyc, as on a fresh
    install), importing them warns. The one place it is imported keeps that from a user's
    terminal or pytest session (-W error here: a warning would be an error); its twin, a bare
    import, shows the warning is real."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)}
    ours = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                           "from sandbox.host.cgroups import _v1_mounts_from_cgutils as f; f()"],
                          capture_output=True, text=True, env=env, check=False)
    assert ours.returncode == 0 and not ours.stderr, ours.stderr
    bare = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                           "import cgutils.cgroup"], capture_output=True, text=True,
                          env={**env, "PYTHONPYCACHEPREFIX": str(tmp_path / "bare")},
                          check=False)
    assert "invalid escape sequence" in bare.stderr
