"""A child forked, not exec'd: it runs a Python callable in the harness's own process image
(its imports, a pytest test's fixtures). It waits at a gate until the harness lets it go, so
the fork happens before the harness starts its threads (a fork of a threaded process can
inherit a lock some other thread held) while the callable starts only once they watch.
:class:`ForkedProcess` is the part of ``subprocess.Popen`` the runner and verifier use."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import traceback
from collections.abc import Callable


class ForkedProcess:
    """The parent's handle on a gated child: ``release()`` lets it run its callable."""

    stdout = stderr = None  # the child writes to the harness's own stdout and stderr

    def __init__(self, pid: int, gate: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.args = [f"forked child {pid}"]
        self._gate: int | None = gate

    def release(self, run: bool = True) -> None:
        """Let the child run its callable (``run``), or exit without running it."""
        if self._gate is None:
            return
        with contextlib.suppress(OSError):  # the child is gone already
            if run:
                os.write(self._gate, b"g")
        os.close(self._gate)
        self._gate = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork_gated(before: Callable[[], None], body: Callable[[], None]) -> ForkedProcess:
    """Fork a child that runs ``before`` (joining the slice) at once, then ``body`` when
    released; it exits 0 after ``body``, 1 when either raised (traceback on stderr) or the
    gate was closed without a release."""
    gate_out, gate_in = os.pipe()
    pid = os.fork()
    if pid:
        os.close(gate_out)
        return ForkedProcess(pid, gate_in)
    code = 1
    try:
        os.close(gate_in)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the harness's handlers
        signal.signal(signal.SIGINT, signal.default_int_handler)
        before()
        if os.read(gate_out, 1):
            body()
            code = 0
    except BaseException:  # the child reports everything, then leaves
        traceback.print_exc()
    finally:
        os._exit(code)
