"""Process tracer, for real: eBPF (bpftrace), proc connector and /proc scan on real slices,
with positive controls (a 50 ms child, an escape to the unified root) and a negative one (a
process outside the slice is not reported)."""

from __future__ import annotations

import dataclasses
import json
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.tracer import TracerError, proc_connector, start_tracer

from .controls import control, control_run

REQUIRED = {"t", "wall", "kind", "pid", "ppid", "comm", "cgroup"}


@pytest.fixture
def needs_bpftrace(needs_cgroups):
    if not needs_cgroups.bpftrace:
        pytest.skip("bpftrace is not installed (apt-get install bpftrace)")
    return needs_cgroups


def unified_root_procs(facts) -> Path:
    if facts.cgroup.unified_mount is None:
        pytest.skip("no cgroup2 hierarchy to escape into")
    return facts.cgroup.unified_mount / "cgroup.procs"


def read_events(path: Path) -> list[dict]:
    events = [json.loads(line) for line in path.read_text().splitlines()]
    for event in events:
        assert event.keys() >= REQUIRED, event
    return events


def run_control(run, name: str, *args: str) -> list[int]:
    """Run a control workload in the slice to its end; returns the pids it printed."""
    proc = run.slice_.spawn(control(name, *args), env=run.env, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    return [int(x) for x in out.split()]


def test_ebpf_sees_a_50ms_child(needs_bpftrace, tmp_path):
    with control_run(needs_bpftrace, tmp_path) as run:
        out = run.run_dir / "events.jsonl"
        tracer = start_tracer(run.slice_, out, "ebpf", facts=needs_bpftrace)
        try:
            assert tracer.backend == "ebpf"
            [child] = run_control(run, "short_child")
        finally:
            tracer.stop()
    kinds = {e["kind"] for e in read_events(out) if e["pid"] == child}
    assert kinds == {"fork", "exec", "exit"}
    exec_event = next(e for e in read_events(out) if e["pid"] == child and e["kind"] == "exec")
    assert exec_event["comm"] == "sleep"
    assert child in tracer.seen_pids()


def test_ebpf_ignores_processes_outside_the_slice(needs_bpftrace, tmp_path):
    with control_run(needs_bpftrace, tmp_path) as run:
        out = run.run_dir / "events.jsonl"
        tracer = start_tracer(run.slice_, out, "ebpf", facts=needs_bpftrace)
        try:
            outside = subprocess.Popen(["sleep", "0.05"])
            outside.wait()
            run_control(run, "short_child")
        finally:
            tracer.stop()
    assert outside.pid not in tracer.seen_pids()
    assert read_events(out), "the slice's own processes must be seen"
    assert tracer.to_dict()["events"] == len(read_events(out))


def test_ebpf_sees_the_escape_with_its_destination(needs_bpftrace, tmp_path):
    procs = unified_root_procs(needs_bpftrace)
    with control_run(needs_bpftrace, tmp_path) as run:
        tracer = start_tracer(run.slice_, run.run_dir / "events.jsonl", "ebpf",
                              facts=needs_bpftrace)
        try:
            [escaped] = run_control(run, "escape", str(procs))
        finally:
            tracer.stop()
    [move] = [e for e in tracer.moves_out() if e.pid == escaped]
    assert (move.kind, move.cgroup, move.hierarchy) == ("attach", "/", "unified")
    # It stays followed after leaving: its kill (by the run's cleanup) is an exit event.
    assert escaped in tracer.seen_pids()


def test_scan_sees_the_escape_when_bpftrace_is_forced_off(needs_cgroups, tmp_path):
    procs = unified_root_procs(needs_cgroups)
    with control_run(needs_cgroups, tmp_path) as run:
        tracer = start_tracer(run.slice_, run.run_dir / "events.jsonl", "scan",
                              facts=needs_cgroups)
        try:
            [escaped] = run_control(run, "escape", str(procs))
        finally:
            tracer.stop()
    assert tracer.backend == "scan"
    assert any("short" in lim for lim in tracer.limitations)
    [move] = [e for e in tracer.moves_out() if e.pid == escaped]
    assert (move.kind, move.cgroup) == ("seen", "/")


def test_proc_connector_sees_fork_exec_exit(needs_cgroups, tmp_path):
    if not needs_cgroups.proc_connector:
        pytest.skip("proc connector unusable (needs root)")
    with control_run(needs_cgroups, tmp_path) as run:
        out = run.run_dir / "events.jsonl"
        tracer = start_tracer(run.slice_, out, "proc-connector", facts=needs_cgroups)
        try:
            [child] = run_control(run, "short_child")
        finally:
            began = time.monotonic()
            tracer.stop()
            stopped_in = time.monotonic() - began
    kinds = {e["kind"] for e in read_events(out) if e["pid"] == child}
    assert kinds == {"fork", "exec", "exit"}
    assert tracer.to_dict()["backend"] == "proc-connector"
    # the reader thread is gone, not left blocked in a receive into interpreter shutdown
    assert stopped_in < 2 * proc_connector.POLL_S + 0.5
    assert not [t for t in threading.enumerate() if t.name == "tracer-proc-connector"]


def _datagram(what: int, *fields: int, ids: str = "IIII") -> bytes:
    """One cn_proc message as the kernel lays it out (nlmsghdr, cn_msg, proc_event)."""
    event = struct.pack("=IIQ", what, 0, 123_000_000_000) + struct.pack("=" + ids, *fields)
    cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


def test_proc_connector_parses_the_kernel_layout() -> None:
    fork = _datagram(proc_connector.FORK, 10, 10, 11, 11)
    exit_ = _datagram(proc_connector.EXIT, 11, 11, 0, 17, 10, 10, ids="IIIIII")
    other = _datagram(0x4, 11, 11, 0, 0)  # a uid change: not followed
    parsed = list(proc_connector.parse(fork + exit_ + other))
    assert [m["event"] for m in parsed] == ["PROC_EVENT_FORK", "PROC_EVENT_EXIT"]
    assert parsed[0]["child_tgid"] == 11 and parsed[0]["parent_tgid"] == 10
    assert parsed[1]["parent_tgid"] == 10 and parsed[0]["timestamp_ns"] == 123_000_000_000
    # cut short, or a length that points past the end: nothing read from beyond it
    assert list(proc_connector.parse(fork[:30])) == []
    assert list(proc_connector.parse(b"\xff\xff\x00\x00" + fork[4:])) == []
    assert proc_connector.listen_message()[16:] == struct.pack("=IIIIHHI", 1, 1, 0, 0, 4, 0, 1)


def test_auto_falls_back_and_says_why(needs_cgroups, tmp_path):
    no_bpftrace = dataclasses.replace(needs_cgroups, bpftrace=None)
    with control_run(needs_cgroups, tmp_path) as run:
        tracer = start_tracer(run.slice_, run.run_dir / "events.jsonl", facts=no_bpftrace)
        tracer.stop()
        with pytest.raises(TracerError, match="ebpf unusable: bpftrace is not installed"):
            start_tracer(run.slice_, run.run_dir / "e2.jsonl", "ebpf", facts=no_bpftrace)
    assert tracer.backend == ("proc-connector" if needs_cgroups.proc_connector else "scan")
    assert tracer.to_dict()["notes"] == ["ebpf skipped: bpftrace is not installed"]


def test_auto_picks_ebpf_when_usable(needs_bpftrace, tmp_path):
    with control_run(needs_bpftrace, tmp_path) as run:
        tracer = start_tracer(run.slice_, run.run_dir / "events.jsonl", facts=needs_bpftrace)
        tracer.stop()
    assert tracer.backend == "ebpf"


def test_unknown_backend_is_one_clear_error(needs_cgroups, tmp_path):
    with control_run(needs_cgroups, tmp_path) as run, \
            pytest.raises(TracerError, match="unknown tracer backend 'dtrace'"):
        start_tracer(run.slice_, run.run_dir / "events.jsonl", "dtrace")


def test_a_nested_pid_namespace_is_told_apart(tmp_path):
    """eBPF and the proc connector report the host's pids: in a container's pid namespace they
    are not used. A real nested namespace (unshare) is one; this process's is not."""
    from sandbox.tracer import nested_pid_namespace

    assert not nested_pid_namespace()
    probe = "from sandbox.tracer import nested_pid_namespace as n; print(n())"
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
                          probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


def test_a_containers_cgroup_mount_root_prefixes_its_paths(tmp_path):
    """podman on a v1 host bind-mounts the container's own cgroup at /sys/fs/cgroup/memory:
    /proc/PID/cgroup then names the whole path from the hierarchy's root (real mountinfo line
    from such a container); on the host the root is /."""
    from sandbox.host.cgroups import mount_root

    info = tmp_path / "mountinfo"
    info.write_text(
        "139 135 0:32 /libpod_parent/libpod-2586ae5c /sys/fs/cgroup/memory rw,nosuid,nodev,"
        "noexec,relatime - cgroup cgroup rw,memory\n"
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n")
    assert mount_root(Path("/sys/fs/cgroup/memory"), info) == "/libpod_parent/libpod-2586ae5c"
    assert mount_root(Path("/sys/fs/cgroup/pids"), info) == "/"
    assert mount_root(Path("/sys/fs/cgroup/memory")) == "/"  # this host's own mount
