"""``SettleChannel``: the harness's end of the settle-point socket (docs/settle-points.md).

The workload writes ``settle [label]\\n`` when its memory is at its floor; the channel has
the profiler take a full sample at once, marked with the settle point's number, and answers
``ok\\n``. The workload is not trusted: lines are capped, a request within
:data:`MIN_GAP_S` of the last sample is answered without one (counted), replies that would
block are dropped, and a flood is read no faster than :data:`MAX_READ_RATE` bytes/s."""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.settle_points import ENV, MAX_LINE
from sandbox.untrusted import shown

log = logging.getLogger("sandbox.settle")

#: At most one settle sample per this many seconds.
MIN_GAP_S = 0.5
#: A flooding workload's bytes are read at most this fast (the rest waits in its socket).
MAX_READ_RATE = 256 * 1024
_CHUNK = 4096
#: Labels kept for run.json (the first ones).
MAX_LABELS = 100


class SettleChannel:
    """A socketpair per run: :attr:`child_fd` goes to the workload (inherited, named by
    :meth:`env`), the other end is served by a thread that calls ``sample(n)``."""

    def __init__(self, sample: Callable[[int], Any]) -> None:
        self._sample = sample
        self._ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ours.setblocking(False)
        self.child_fd = theirs.detach()
        os.set_inheritable(self.child_fd, False)  # pass_fds makes it inheritable in the child
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread: threading.Thread | None = None
        self.points = 0
        self.rate_limited = 0
        self.invalid = 0
        self.unanswered = 0
        self.labels: dict[int, str] = {}
        self._last = float("-inf")

    def env(self) -> dict[str, str]:
        """The workload's variable naming its end."""
        return {ENV: str(self.child_fd)}

    def started_workload(self) -> None:
        """The workload has its end now: close ours of it (a workload that exits is then
        seen as end of file)."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="sandbox-settle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread and close every fd (idempotent)."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
        self.started_workload()
        if self._wake_r >= 0:
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            self._wake_r = self._wake_w = -1
            self._ours.close()

    def to_dict(self) -> dict[str, Any]:
        """run.json ``settle``: points sampled, requests answered without a sample (rate
        limit), lines refused (too long, not a request), answers dropped (the workload did
        not read them), the first labels by point."""
        return {"points": self.points, "rate_limited": self.rate_limited,
                "invalid": self.invalid, "unanswered": self.unanswered,
                "labels": {str(n): label for n, label in self.labels.items()}}

    # -- the thread --------------------------------------------------------------------------
    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._ours.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        pending, skipping = b"", False
        while True:
            events = dict(poller.poll())
            if self._wake_r in events:
                return
            started = time.monotonic()
            try:
                chunk = self._ours.recv(_CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return  # the workload closed its end (or every process holding it exited)
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                line, pending = pending[:end], pending[end + 1:]
                if skipping:  # the tail of a line too long
                    skipping = False
                    continue
                self._handle(line)
            if len(pending) >= MAX_LINE:
                self.invalid += not skipping
                pending, skipping = b"", True
            # a flood is read at MAX_READ_RATE: the workload blocks on its full socket
            if (pause := len(chunk) / MAX_READ_RATE - (time.monotonic() - started)) > 0:
                time.sleep(pause)

    def _handle(self, line: bytes) -> None:
        word, _, label = line.partition(b" ")
        if word != b"settle" or len(line) >= MAX_LINE:
            self.invalid += 1
            return
        now = time.monotonic()
        if now - self._last < MIN_GAP_S:
            self.rate_limited += 1
        else:
            self._last = now
            self.points += 1
            self._sample(self.points)
            if label and len(self.labels) < MAX_LABELS:
                self.labels[self.points] = shown(label.decode("utf-8", "surrogateescape"))
        try:
            self._ours.send(b"ok\n", socket.MSG_DONTWAIT)
        except OSError:  # it does not read its answers (or is gone): never wait for it
            self.unanswered += 1
