"""The C ticker's interface (_ticker.c), for the type checker."""

from collections.abc import Sequence

def run(fds: Sequence[int], interval_ns: int, out_fd: int, stop_fd: int, batch: int,
        early: int, move: int) -> int:
    """Write ``(t_ns, value per fd)`` ticks to ``out_fd`` until ``stop_fd`` is readable;
    returns how many ticks were read."""
