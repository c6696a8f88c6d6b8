"""The settle-point socket against a hostile workload (docs/settle-points.md): a flood, garbage
bytes, a line far too long, a closed socket and a forged fd number. The harness's side alone
(SettleChannel with a counting sampler) and one real ``sandbox run`` that does them all: the
run ends normally, the settle samples it took are rate-limited."""

from __future__ import annotations

import json
import socket
import threading
import time

from sandbox.sampler.settle import MIN_GAP_S, SettleChannel

from .cli_helpers import only_run_dir, run_python


class Counter:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, n: int) -> None:
        self.calls.append(n)


def _channel() -> tuple[SettleChannel, Counter, socket.socket]:
    counter = Counter()
    channel = SettleChannel(counter)
    workload = socket.socket(fileno=channel.child_fd)
    channel.child_fd = -1  # the "workload" holds it now
    channel.start()
    return channel, counter, workload


def _ask(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    sock.settimeout(5)
    reply = b""
    while not reply.endswith(b"\n"):
        reply += sock.recv(16)
    return reply


def test_flood_is_rate_limited_and_answered():
    channel, counter, workload = _channel()
    try:
        replies = [_ask(workload, b"settle\n") for _ in range(50)]
        assert replies == [b"ok\n"] * 50
        time.sleep(MIN_GAP_S + 0.1)
        assert _ask(workload, b"settle again\n") == b"ok\n"
    finally:
        channel.stop()
        workload.close()
    assert counter.calls == [1, 2]
    assert channel.to_dict() | {"labels": None} == {
        "points": 2, "rate_limited": 49, "invalid": 0, "unanswered": 0, "labels": None}
    assert channel.labels == {2: "again"}


def test_garbage_and_huge_lines_are_refused():
    channel, counter, workload = _channel()
    try:
        workload.sendall(b"\xff\xfe\x00garbage\n" + b"settle " + b"x" * 1_000_000 + b"\n")
        assert _ask(workload, b"settle \xff\x1b[2J\n") == b"ok\n"
    finally:
        channel.stop()
        workload.close()
    assert counter.calls == [1]
    assert channel.invalid == 2  # the garbage line, the huge one (once)
    assert channel.labels == {1: "\\xff\\x1b[2J"}


def test_a_workload_that_never_reads_nor_closes_does_not_block():
    channel, counter, workload = _channel()
    sender = threading.Thread(target=lambda: [workload.send(b"settle\n") for _ in range(20000)],
                              daemon=True)
    sender.start()
    sender.join(10)
    started = time.monotonic()
    channel.stop()  # a full socket on its side: the thread still ends at once
    assert time.monotonic() - started < 2
    assert channel.unanswered > 0 and counter.calls[:1] == [1]  # one per 0.5 s at most
    workload.close()


def test_closed_socket_ends_the_thread():
    channel, counter, workload = _channel()
    workload.close()
    channel._thread.join(5)
    assert not channel._thread.is_alive()
    channel.stop()
    assert counter.calls == []


HOSTILE = r"""
import os, socket, sys, time
from sandbox import checkpoint
fd = int(os.environ["SANDBOX_SETTLE_FD"])
sock = socket.socket(fileno=os.dup(fd))
sock.setblocking(False)
sent = 0
end = time.monotonic() + 2
while time.monotonic() < end:  # flood: as fast as the socket takes it, never reading
    try:
        sent += sock.send(b"settle\n" * 1000 + b"\xff\x00junk\n" + b"y" * 5000)
    except BlockingIOError:
        time.sleep(0.01)
sock.close()
os.environ["SANDBOX_SETTLE_FD"] = "1"  # forged: stdout is no socket
import sandbox.settle_points as sp
sp._channel = None
print("forged", checkpoint(), flush=True)
os.close(fd)  # closed: the harness sees the end
print("sent", sent, flush=True)
"""


def test_hostile_workload_run_ends_normally(needs_cgroups, runs_dir):
    out = run_python(HOSTILE, runs_dir, "--duration", "6s", "--no-progress", "-q", "--grace",
                     "1s")
    run_dir = only_run_dir(runs_dir)
    log = (run_dir / "workload.log").read_text()
    assert "forged False" in log and "sent " in log, log
    run = json.loads((run_dir / "run.json").read_text())
    assert run["workload_exit"]["returncode"] == 0, out.stderr
    settle = run["settle"]
    assert 1 <= settle["points"] <= 6 and settle["rate_limited"] > 100
    assert settle["invalid"] > 0
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 3, out.stderr
