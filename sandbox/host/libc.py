"""libc for the namespace and mount syscalls Python's os module lacks (unshare, setns, mount,
umount2), resolved once in the harness so a forked child only makes the call."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)


def check(rc: int, what: str) -> None:
    """Raise OSError with errno's text when a libc call returned non-zero."""
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
