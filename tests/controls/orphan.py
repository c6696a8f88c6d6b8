"""Leaves an orphan: double fork + setsid, the grandchild sleeps; the main process exits."""

import os
import sys
import time


def detach() -> None:
    """Let go of the parent's stdout so its reader sees EOF when the parent exits."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        detach()
        os.write(ready_w, f"{os.getpid()}\n".encode())
        time.sleep(300)
    os._exit(0)
print(os.read(ready_r, 64).decode().strip(), flush=True)
sys.exit(0)
