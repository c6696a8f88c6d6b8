"""The sampler's high-rate fast path: the C ticker (``_ticker``, built when a compiler is
there) reads the fast files (usage, pids, peak) on a fixed tick with the GIL released and
hands the values over in batches, so a 100 Hz sampler wakes Python once a second, not 100
times. Without the extension the profiler keeps its Python loop (:data:`AVAILABLE`)."""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Iterator, Sequence

try:
    from sandbox.sampler import _ticker

    AVAILABLE = True
except ImportError:  # no compiler at install time: the Python fast path
    AVAILABLE = False

#: Sampling at this interval or faster goes through the ticker (when it is built).
MAX_INTERVAL_S = 0.05
#: The ticker hands over its values about this often,
BATCH_S = 1.0
#: or after this long already when the usage moved (a full sample is then due).
EARLY_BATCH_S = 0.25


class Ticker:
    """Reads ``fds`` every ``interval_s`` on a thread of its own (in C, without the GIL)
    until ``stop_fd`` is readable. :meth:`batches` yields the ticks as they come: every
    :data:`BATCH_S`, or every :data:`EARLY_BATCH_S` while the first fd's value (the usage)
    moves ``move`` or more (0: never early)."""

    def __init__(self, fds: Sequence[int], interval_s: float, stop_fd: int,
                 move: int = 0) -> None:
        if not AVAILABLE:
            raise RuntimeError("the C ticker is not built")
        self.width = len(fds) + 1
        self.error: str | None = None
        self._read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        batch = max(1, round(BATCH_S / interval_s))
        early = max(1, round(EARLY_BATCH_S / interval_s))
        self._thread = threading.Thread(
            target=self._run, name="sandbox-ticker", daemon=True,
            args=(list(fds), round(interval_s * 1e9), stop_fd, batch, early, move))
        self._thread.start()

    def _run(self, fds: list[int], interval_ns: int, stop_fd: int, batch: int, early: int,
             move: int) -> None:
        try:
            _ticker.run(fds, interval_ns, self._write_fd, stop_fd, batch, early, move)
        except (OSError, ValueError) as exc:
            self.error = str(exc)
        finally:
            os.close(self._write_fd)

    def batches(self) -> Iterator[list[tuple[int, ...]]]:
        """Lists of ticks ``(t_ns, value, ...)`` (-1: not read), until the ticker stops."""
        size, pending = 8 * self.width, b""
        try:
            while chunk := os.read(self._read_fd, 65536):
                pending += chunk
                whole = len(pending) - len(pending) % size
                values = array("q")
                values.frombytes(pending[:whole])
                pending = pending[whole:]
                yield list(zip(*[iter(values)] * self.width, strict=True))
        finally:
            os.close(self._read_fd)
            self._thread.join()
