"""Second choice: the kernel's process events connector through pyroute2's ProcEventSocket.

The socket is created, bound, told to listen and read with a blocking get() all in one
dedicated thread: select() on it loses events and another thread's get() returns nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sandbox.tracer.base import Tracer, TracerError
from sandbox.tracer.target import SliceTarget

START_TIMEOUT_S = 10.0


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
        # The reader blocks in get(): any clone() on the host wakes it, so make one.
        waker = threading.Thread(target=lambda: None)
        waker.start()
        waker.join()
        self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        try:
            from pyroute2 import ProcEventSocket

            sock = ProcEventSocket()
            sock.bind()
            sock.control(listen=True)
        except Exception as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                for msg in sock.get():
                    self._handle(msg)
        finally:
            sock.close()

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
