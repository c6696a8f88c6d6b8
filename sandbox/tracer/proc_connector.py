"""Second choice: the kernel's process events connector (cn_proc), read from a netlink socket.

The socket is read in one dedicated thread with a short receive timeout, so :meth:`stop`
ends the thread within ``POLL_S``: no thread of the tracer outlives the run (a reader left
blocked in a receive, or inside an event loop, would run on into the interpreter's shutdown).
The messages are a fixed C layout (linux/connector.h, linux/cn_proc.h), parsed with struct.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from sandbox.tracer.base import Tracer, TracerError
from sandbox.tracer.target import SliceTarget

START_TIMEOUT_S = 10.0
#: the reader looks at its stop flag at least this often
POLL_S = 0.2
NETLINK_CONNECTOR = 11
CN_IDX_PROC = CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
#: asked for the socket's receive buffer (root may exceed rmem_max): bursts of forks fit
RCVBUF = 4 << 20
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_IDS = struct.Struct("=IIII")  # fork: parent pid, tgid, child pid, tgid; exec/exit: pid, tgid, ..
_EXIT = struct.Struct("=IIIIII")  # pid, tgid, exit code, exit signal, parent pid, parent tgid
FORK, EXEC, EXIT = 0x1, 0x2, 0x80000000


def listen_message() -> bytes:
    """The netlink message that subscribes this socket to process events."""
    body = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I",
                                                                           PROC_CN_MCAST_LISTEN)
    return _NLMSG.pack(_NLMSG.size + len(body), NLMSG_DONE, 0, 0, 0) + body


def parse(datagram: bytes) -> Iterator[dict]:
    """The fork, exec and exit events in one datagram (other events and short or malformed
    messages are skipped), as dicts with pyroute2's field names."""
    offset = 0
    while offset + _NLMSG.size <= len(datagram):
        length = _NLMSG.unpack_from(datagram, offset)[0]
        if length < _NLMSG.size or offset + length > len(datagram):
            return
        event = offset + _NLMSG.size + _CN_MSG.size
        data = event + _EVENT.size
        if data + _IDS.size <= offset + length:
            what, _cpu, timestamp_ns = _EVENT.unpack_from(datagram, event)
            if what == FORK:
                parent_pid, parent_tgid, child_pid, child_tgid = _IDS.unpack_from(datagram, data)
                yield {"event": "PROC_EVENT_FORK", "timestamp_ns": timestamp_ns,
                       "parent_pid": parent_pid, "parent_tgid": parent_tgid,
                       "child_pid": child_pid, "child_tgid": child_tgid}
            elif what == EXEC:
                pid, tgid, _, _ = _IDS.unpack_from(datagram, data)
                yield {"event": "PROC_EVENT_EXEC", "timestamp_ns": timestamp_ns,
                       "process_pid": pid, "process_tgid": tgid}
            elif what == EXIT and data + _EXIT.size <= offset + length:
                pid, tgid, _code, _sig, ppid, ptgid = _EXIT.unpack_from(datagram, data)
                yield {"event": "PROC_EVENT_EXIT", "timestamp_ns": timestamp_ns,
                       "process_pid": pid, "process_tgid": tgid,
                       "parent_pid": ppid, "parent_tgid": ptgid}
        offset += (length + 3) & ~3  # NLMSG_ALIGN


def open_socket() -> socket.socket:
    """A netlink socket subscribed to the process events (needs CAP_NET_ADMIN)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF)
                break
            except OSError:
                continue
        sock.bind((0, CN_IDX_PROC))  # the kernel picks the port id
        sock.send(listen_message())
        sock.settimeout(POLL_S)
    except OSError:
        sock.close()
        raise
    return sock


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text(errors="surrogateescape").rstrip("\n")
    except OSError:
        return None


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[1])


class ProcConnectorTracer(Tracer):
    """Follows a process from its fork when its parent is followed or in the slice, and from
    its exec when it is in the slice then."""

    backend = "proc-connector"
    limitations = (
        "no cgroup events: an escape is not seen when it happens, only afterwards by the "
        "verifier",
        "slice membership is read from /proc when the event arrives: a child forked by a "
        "process that was never followed and gone before its exec is missed",
        "events are lost if the netlink socket's buffer overflows",
        "threads are not reported, only processes",
    )

    def __init__(self, target: SliceTarget, out_path: Path, t0: float | None = None) -> None:
        super().__init__(target, out_path, t0)
        self._tracked: dict[int, str | None] = {}
        self._parents: dict[int, int] = {}
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._overflows = 0
        self._thread = threading.Thread(target=self._run, name="tracer-proc-connector",
                                        daemon=True)

    def _start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TracerError("the proc connector did not start listening")
        if self._error is not None:
            raise TracerError(f"proc connector unavailable: {self._error}")

    def _stop(self) -> None:
        self._stopping.set()
        self._thread.join(START_TIMEOUT_S)  # the reader sees the flag within POLL_S
        if self._overflows:
            self.notes.append(f"the netlink socket's buffer overflowed {self._overflows} "
                              "times: process events were lost")

    def _run(self) -> None:
        try:
            sock = open_socket()
        except OSError as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        with sock:
            while not self._stopping.is_set():
                try:
                    datagram = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:  # the buffer overflowed: events were lost
                        self._overflows += 1
                        continue
                    self.notes.append(f"the proc connector stopped reading: {exc}")
                    return
                for msg in parse(datagram):
                    self._handle(msg)

    def _follows(self, pid: int) -> bool:
        return pid in self._tracked or self.target.contains(pid)

    def _handle(self, msg: dict) -> None:
        event = msg.get("event")
        mono = msg["timestamp_ns"] / 1e9
        if event == "PROC_EVENT_FORK":
            child, parent = msg["child_tgid"], msg["parent_tgid"]
            if msg["child_pid"] != child or not self._follows(parent):
                return
            comm = _comm(child) or self._tracked.get(parent)
            self._tracked.setdefault(parent, _comm(parent))
            self._tracked[child] = comm
            self._parents[child] = parent
            self.emit("fork", child, parent, comm, mono=mono)
        elif event == "PROC_EVENT_EXEC":
            pid = msg["process_tgid"]
            if not self._follows(pid):
                return
            self._tracked[pid] = _comm(pid) or self._tracked.get(pid)
            ppid = self._parents.get(pid) or _ppid(pid)
            self.emit("exec", pid, ppid, self._tracked[pid], mono=mono)
        elif event == "PROC_EVENT_EXIT":
            pid = msg["process_tgid"]
            if msg["process_pid"] != pid or pid not in self._tracked:
                return
            self._parents.pop(pid, None)
            self.emit("exit", pid, msg["parent_tgid"], self._tracked.pop(pid), mono=mono)
