"""Never touch what is not the run's, for real: a pid the tracer saw and an unrelated root
process took over during the run is not reported nor killed while a real escape started the
same way still is; a run carrying another run's marker frames nobody; identities and pidfd
signals refuse reused pids; a hostile comm cannot stop the eBPF tracer's reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.host.cleanup import clean_record
from sandbox.host.procid import identify, is_same, parse_stat, send_signal
from sandbox.host.registry import SliceRecord, this_harness
from sandbox.host.slice import MARKER_ENV
from sandbox.tracer import start_tracer
from sandbox.tracer.base import Tracer
from sandbox.tracer.ebpf import EbpfTracer
from sandbox.verifier import ResourceCleanupVerifier

from .controls import control_run

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")
#: The workload: a short child exits (its pid is printed for the test to hand to an unrelated
#: process), a root child moves itself to argv[1] (a root cgroup.procs) and sleeps; the main
#: process prints both pids and waits for its stdin to close.
REUSE_AND_ESCAPE = """
import os, subprocess, sys, time
short = subprocess.Popen(["sleep", "0.4"])
short.wait()
moved_r, moved_w = os.pipe()
child = os.fork()
if child == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with open(sys.argv[1], "w") as f:
        f.write(str(os.getpid()))
    os.write(moved_w, b"x")
    time.sleep(300)
    os._exit(0)
os.read(moved_r, 1)
print(short.pid, child, flush=True)
sys.stdin.read()
"""


def outside_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != MARKER_ENV}


def take_pid(pid: int, tries: int = 50) -> subprocess.Popen:
    """Start an unrelated root process (``sleep 60``, outside any run) on ``pid``, forced with
    ns_last_pid; skips when other forks on the host keep winning the race."""
    if os.geteuid() != 0 or not NS_LAST_PID.exists():
        pytest.skip("forcing a pid needs root and /proc/sys/kernel/ns_last_pid")
    for _ in range(tries):
        NS_LAST_PID.write_text(str(pid - 1))
        proc = subprocess.Popen(["sleep", "60"], env=outside_env())
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    pytest.skip(f"could not start a process on pid {pid} in {tries} tries")


def gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while identify(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return identify(pid) is None


# -- process identity -----------------------------------------------------------------------
def test_stat_is_split_at_the_last_parenthesis():
    tail = " ".join(["S", "42", *[str(n) for n in range(3, 20)], "987654", "0", "0"])
    raw = f"1234 (a) (b c)) {tail}\n".encode()
    assert parse_stat(raw) == ("S", 42, 987654)


def test_a_reused_pid_is_not_signalled_and_a_live_identity_is():
    first = subprocess.Popen(["sleep", "60"], env=outside_env())
    seen = identify(first.pid)
    assert seen is not None and is_same(seen)
    first.kill()
    first.wait()
    time.sleep(0.05)  # start times count clock ticks (10 ms): a pid reused within one looks alike
    newcomer = take_pid(seen.pid)
    try:
        assert not is_same(seen)
        assert send_signal(seen) is False
        time.sleep(0.05)
        assert newcomer.poll() is None, "the process that took the pid was signalled"
        now = identify(newcomer.pid)
        assert now is not None and send_signal(now) is True
        assert newcomer.wait(5) == -signal.SIGKILL
    finally:
        newcomer.kill()
        newcomer.wait()


def test_the_tracer_keeps_only_the_process_an_event_is_about(tmp_path):
    tracer = Tracer(None, tmp_path / "events.jsonl")  # type: ignore[arg-type]
    proc = subprocess.Popen(["sleep", "60"], env=outside_env())
    try:
        # An event from before this process started is about an earlier holder of its pid.
        tracer.emit("fork", proc.pid, 1, "old", mono=time.monotonic() - 5)
        assert tracer.live_processes() == []
        tracer.emit("fork", proc.pid, 1, "sleep")
        assert tracer.live_processes() == [identify(proc.pid)]
        tracer.emit("exit", proc.pid, 1, "sleep")
        assert tracer.live_processes() == []
    finally:
        proc.kill()
        proc.wait()


def test_a_hostile_comm_does_not_stop_the_ebpf_reader(tmp_path):
    tracer = EbpfTracer(None, tmp_path / "events.jsonl")  # type: ignore[arg-type]
    lines = [b'{"type": "printf", "data": "fork\\t1\\t100\\t1\\tbad\xff\xfe\\u001b]x\\n"}\n',
             b'{"type": "printf", "data": "fork\\tnot-a-number\\n"}\n',
             b'{"type": "printf", "data": "exec\\t2\\t100\\t1\\tsh\\t/bin/\x1b[2J\xffsh\\n"}\n']
    tracer.proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write("
                                    f"{b''.join(lines)!r})"], stdout=subprocess.PIPE)
    tracer._read_stdout()
    tracer.proc.wait()
    assert tracer.malformed == 1
    assert tracer.to_dict()["events"] == 2  # the fork and the exec, names replaced


# -- the verifier -----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["ebpf", "scan"])
def test_a_reused_pid_is_spared_and_a_real_escape_is_killed(needs_cgroups, tmp_path, backend):
    if backend == "ebpf" and not needs_cgroups.bpftrace:
        pytest.skip("bpftrace is not installed")
    if needs_cgroups.cgroup.unified_mount is None:
        pytest.skip("no cgroup2 hierarchy to escape into")
    procs = needs_cgroups.cgroup.unified_mount / "cgroup.procs"
    verifier = ResourceCleanupVerifier(grace_s=0.5)
    with control_run(needs_cgroups, tmp_path) as run:
        verifier.capture_initial_state()
        tracer = start_tracer(run.slice_, run.run_dir / "events.jsonl", backend,
                              facts=needs_cgroups)
        try:
            main = run.spawn([sys.executable, "-c", REUSE_AND_ESCAPE, str(procs)], root=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert main.stdout is not None and main.stdin is not None
            short, escaped = (int(x) for x in main.stdout.readline().split())
            assert gone(short)
            unrelated = take_pid(short)
            main.stdin.close()
            main.wait(10)
        finally:
            tracer.stop()
        try:
            data = verifier.verify(run.slice_, run_dir=run.run_dir, main=main, tracer=tracer,
                                   user=run.user, private_fs=run.private_fs).to_dict()
            assert unrelated.poll() is None, "the unrelated process was killed"
        finally:
            unrelated.kill()
            unrelated.wait()
    [found] = data["escapes"]
    assert (found["pid"], found["cgroup"], found["killed"]) == (escaped, "/", True)
    assert "marker" in found["found_by"] and data["forged_markers"] == []
    assert gone(escaped)
    assert not any(str(unrelated.pid) in issue for issue in data["issues_found"])


def test_a_run_carrying_another_runs_marker_frames_nobody(needs_cgroups, tmp_path):
    verifier_b = ResourceCleanupVerifier(grace_s=0.5)
    verifier_a = ResourceCleanupVerifier(grace_s=0.5)
    with control_run(needs_cgroups, tmp_path / "a") as run_a, \
            control_run(needs_cgroups, tmp_path / "b") as run_b:
        b_id = run_b.slice_.run_id
        verifier_a.capture_initial_state()
        verifier_b.capture_initial_state()
        # A's workload leaves a process carrying B's marker (B's id is world-readable).
        frame = f"env {MARKER_ENV}={b_id} sleep 60 >/dev/null & echo $!"
        main_a = run_a.spawn(["sh", "-c", frame], stdout=subprocess.PIPE)
        framing = int(main_a.communicate(timeout=10)[0])
        main_b = run_b.spawn([sys.executable, "-c", "print('ok')"], stdout=subprocess.DEVNULL)
        main_b.wait(10)
        b = verifier_b.verify(run_b.slice_, run_dir=run_b.run_dir, main=main_b,
                              user=run_b.user, private_fs=run_b.private_fs).to_dict()
        assert identify(framing) is not None, "run B killed run A's process"
        a = verifier_a.verify(run_a.slice_, run_dir=run_a.run_dir, main=main_a,
                              user=run_a.user, private_fs=run_a.private_fs).to_dict()
    assert b["escapes"] == [] and b["cleanup_successful"] is True
    assert b["issues_found"] == ["No cleanup issues detected"]
    assert [(f["pid"], f["owner"], f["by"]) for f in b["forged_markers"]] == \
        [(framing, run_a.slice_.run_id, "cgroup")]
    assert [(f["pid"], f["marker"]) for f in a["forged_markers"]] == [(framing, b_id)]
    assert any(str(framing) in i and b_id in i for i in a["issues_found"])
    assert [o["pid"] for o in a["process_cleanup"]["orphans"]] == [framing]
    assert gone(framing)


def test_sandbox_cleanup_spares_another_runs_process_carrying_the_marker(needs_cgroups,
                                                                          tmp_path):
    with control_run(needs_cgroups, tmp_path) as run:
        stale = SliceRecord("sandbox-t-stale-frame", harness_pid=1, harness_start=0.0,
                            mode="v2", marker="t-stale-frame")
        stale.save()
        framing = run.spawn(["env", f"{MARKER_ENV}=t-stale-frame", "sleep", "60"])
        try:
            assert wait_for_marker(framing.pid, "t-stale-frame")
            cleaned = clean_record(stale)
            assert framing.poll() is None, "sandbox cleanup killed another run's process"
        finally:
            stale.delete()
    assert (cleaned.killed, cleaned.spared) == ([], [framing.pid])
    framing.wait(10)


def wait_for_marker(pid: int, run_id: str, timeout: float = 5.0) -> bool:
    needle = f"{MARKER_ENV}={run_id}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes():
                return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def test_a_live_harness_is_known_by_its_start_ticks_whatever_the_clock_says(monkeypatch):
    """The boot time /proc/stat gives moves when the clock is adjusted: a harness named by a
    wall-clock start time then looked gone, and another run's cleanup killed its live slice
    (seen while recording the corpus). Records name it by clock ticks since boot."""
    import psutil._pslinux

    pid, start = this_harness()
    live = SliceRecord("sandbox-t-live", harness_pid=pid, harness_start=start, mode="v2",
                       marker="t-live")
    assert isinstance(start, int) and live.harness_alive()
    boot = psutil._pslinux.boot_time()
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: boot + 1.0)  # a clock step
    assert live.harness_alive()
    assert not SliceRecord("sandbox-t-reused", harness_pid=pid, harness_start=start + 1,
                           mode="v2", marker="t-reused").harness_alive()  # the pid, reused
    wall = psutil.Process(pid).create_time()  # an earlier version's record: within 2 s
    assert SliceRecord("sandbox-t-old", harness_pid=pid, harness_start=wall, mode="v2",
                       marker="t-old").harness_alive()
    assert not SliceRecord("sandbox-t-dead", harness_pid=1, harness_start=0.0, mode="v2",
                           marker="t-dead").harness_alive()
