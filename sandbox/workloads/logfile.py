"""The workload's log: its output lines in ``workload.log``, capped and rotated so a chatty or
hostile workload cannot fill the disk (at most two files of ``cap`` bytes: the log and
``workload.log.1``). A write that fails (disk full) stops logging and is remembered; the run
reads :attr:`CappedLog.error`, ends cleanly, and has the log cut (:meth:`CappedLog.make_room`)
so its own records still fit. The file is unbuffered: nothing is pending when it is cut."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from pathlib import Path

from sandbox.rundir import private_opener

DEFAULT_LOG_CAP = 16 * 2**20
KEEP_ON_FULL_DISK = 64 * 1024


def _open(path: Path) -> io.FileIO:
    return open(path, "ab", buffering=0, opener=private_opener)  # noqa: SIM115 (closed by close())


class CappedLog:
    """Thread-safe appender with one rotation; counts what it wrote and rotated."""

    def __init__(self, path: Path, cap: int = DEFAULT_LOG_CAP) -> None:
        self.path = path
        self.cap = cap
        self.rotations = 0
        self.cut_bytes = 0  # dropped by make_room()
        self.error: str | None = None
        self._lock = threading.Lock()
        self._file = _open(path)
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.error is not None or self._file.closed:
                return
            try:
                if self._size + len(data) > self.cap and self._size:
                    self._rotate()
                self._size += self._file.write(data[: self.cap]) or 0
            except OSError as exc:
                self.error = f"cannot write {self.path}: {exc.strerror or exc}"

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = _open(self.path)
        self._size = 0
        self.rotations += 1

    def make_room(self, keep: int = KEEP_ON_FULL_DISK) -> int:
        """On a full disk: drop ``workload.log.1`` and cut the log to its first ``keep``
        bytes, so the run's own records (samples, cleanup, reports) can still be written.
        Returns the bytes freed."""
        with self._lock:
            freed = 0
            if not self._file.closed:
                with contextlib.suppress(OSError):  # unbuffered: nothing left to flush
                    self._file.close()
            rotated = self.path.with_name(self.path.name + ".1")
            with contextlib.suppress(OSError):
                size = rotated.stat().st_size
                rotated.unlink()
                freed += size
            with contextlib.suppress(OSError):
                size = self.path.stat().st_size
                if size > keep:
                    os.truncate(self.path, keep)
                    freed += size - keep
                    with open(self.path, "ab", buffering=0) as f:
                        f.write(b"\n[sandbox: the disk was full; the log was cut here]\n")
            self.cut_bytes += freed
            return freed

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                try:
                    self._file.close()
                except OSError as exc:
                    self.error = self.error or f"cannot write {self.path}: {exc.strerror}"

    def to_dict(self) -> dict:
        return {"file": self.path.name, "cap_bytes": self.cap, "rotations": self.rotations,
                "cut_bytes": self.cut_bytes, "error": self.error}
