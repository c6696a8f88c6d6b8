"""A root child escapes its slice by writing its pid into the cgroup.procs given as argv[1]
(the unified ROOT in the tests), then sleeps; the main process exits a second later."""

import os
import sys
import time


def detach() -> None:
    """Let go of the parent's stdout so its reader sees EOF when the parent exits."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


procs = sys.argv[1]
moved_r, moved_w = os.pipe()
child = os.fork()
if child == 0:
    detach()
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
    os.write(moved_w, b"x")
    time.sleep(300)
    os._exit(0)
os.read(moved_r, 1)
print(child, flush=True)
time.sleep(1.0)
