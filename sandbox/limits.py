"""The limits of a run's slice: defaults that keep a runaway workload (a fork bomb, a memory
bomb) from taking the host down, each lifted by an explicit value (``max``).

- ``pids_max`` 4096: the kernel's pid space (``pid_max``, often 32768 or 4194304) and every
  other job's forks are shared; 4096 tasks (pids.max counts threads too) is several times what
  Chromium with dozens of pages uses, far from what exhausts the host.
- ``memory_max`` half of the host's RAM, capped at RAM - 2 GiB (on a small host the kernel,
  the harness and its sampler keep room), never below a quarter of RAM: the OOM killer then
  picks a process of the run, not of the host.

Without a cgroup (mode ``none``) no limit can be set: the defaults are then recorded as not
applied, and an explicit limit is an error (host.slices.open_slice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.host.slice import Limits

UNLIMITED = "max"
DEFAULT_PIDS_MAX = 4096
GiB = 2**30
MEMINFO = "/proc/meminfo"


def host_memory(meminfo: str = MEMINFO) -> int:
    """The host's RAM in bytes (MemTotal)."""
    with open(meminfo) as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no MemTotal in {meminfo}")


def default_memory_max(total: int) -> int:
    """Half of ``total``, capped at ``total`` - 2 GiB, never below a quarter of it."""
    return max(min(total // 2, total - 2 * GiB), total // 4)


def resolve(memory_max: int | str | None, pids_max: int | str | None, *,
            has_cgroup: bool, total: int | None = None) -> tuple[Limits, dict[str, Any]]:
    """The slice's limits and their run.json record (``limits``): per limit its ``value``
    (bytes or tasks, or ``max``) and ``source`` (``given``, ``default``, or ``no cgroup``
    when a default could not be applied). ``None``: the default; ``max``: no limit."""
    from sandbox.host.slice import Limits

    defaults = {"memory_max": lambda: default_memory_max(total or host_memory()),
                "pids_max": lambda: DEFAULT_PIDS_MAX}
    values: dict[str, int | None] = {}
    record: dict[str, Any] = {}
    for name, given in (("memory_max", memory_max), ("pids_max", pids_max)):
        if given is not None:
            value, source = (None if given == UNLIMITED else int(given)), "given"
        elif has_cgroup:
            value, source = defaults[name](), "default"
        else:
            value, source = None, "no cgroup"
        values[name] = value
        record[name] = {"value": UNLIMITED if value is None else value, "source": source}
    return Limits(**values), record


def describe(record: dict[str, Any]) -> str:
    """One line for a report header: ``pids 4096 (default), memory 11.5 GiB (default)``."""
    parts = []
    for name, label in (("pids_max", "pids"), ("memory_max", "memory")):
        item = record.get(name)
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        shown = (f"{value / GiB:.1f} GiB" if name == "memory_max" and isinstance(value, int)
                 else str(value))
        hits = f", hit {item['hits']} times" if item.get("hits") else ""
        parts.append(f"{label} {shown} ({item.get('source')}{hits})")
    return ", ".join(parts) or "not recorded"
