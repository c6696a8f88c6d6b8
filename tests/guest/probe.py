"""Run by the guest tests in a cgroup systemd gives them (a fresh scope or a transient service);
prints one JSON line per stage.

probe.py trap     enable +memory for children of the own, fresh delegated cgroup (systemd#26311)
probe.py slice    make a slice the harness way, place a 32 MB holder in it, read its files
probe.py reexec   ensure_delegated_scope, then ``slice`` in whatever cgroup that gave
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.host import discover, open_slice
from sandbox.host.systemd import SCOPE_ENV, ensure_delegated_scope

#: Holds argv[1] MB of touched anonymous memory, says "ready", waits for stdin to close.
HOLD = ("import sys; b = b'x' * (int(sys.argv[1]) << 20); print('ready', flush=True); "
        "sys.stdin.read()")


def own_cgroup() -> Path:
    rel = Path("/proc/self/cgroup").read_text().split("::", 1)[1].strip()
    return Path("/sys/fs/cgroup") / rel.lstrip("/")


def trap() -> dict:
    try:
        (own_cgroup() / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError as exc:
        return {"enable_in_place": errno.errorcode[exc.errno]}
    return {"enable_in_place": "ok"}


def make_slice() -> dict:
    facts = discover()
    state = {"cgroup": str(own_cgroup()), "delegated": facts.in_delegated_cgroup,
             "scope_env": os.environ.get(SCOPE_ENV)}
    with open_slice(f"probe-{os.getpid()}", facts.cgroup) as slice_:
        holder = slice_.spawn([sys.executable, "-c", HOLD, "32"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
        holder.stdout.readline()
        state.update(
            harness_leaf=str(slice_.harness_leaf), harness_in=str(own_cgroup()),
            memory_current=int(slice_.path("unified", "memory.current").read_text()),
            pids_current=int(slice_.path("unified", "pids.current").read_text()),
        )
        holder.stdin.close()
    state["cgroup_after"] = str(own_cgroup())
    return state


def main(stage: str) -> None:
    if stage == "trap":
        print(json.dumps(trap()))
    elif stage == "slice":
        print(json.dumps(make_slice()))
    elif stage == "reexec":
        facts = discover()
        print(json.dumps({"stage": "before", "cgroup": str(own_cgroup()),
                          "delegated": facts.in_delegated_cgroup}), flush=True)
        ensure_delegated_scope(facts, [sys.executable, __file__, "after-reexec"])
        print(json.dumps({"stage": "not re-executed", **make_slice()}))
    elif stage == "after-reexec":
        ensure_delegated_scope(discover(), [sys.executable, __file__, "after-reexec"])
        print(json.dumps({"stage": "after", **make_slice()}))
    else:
        raise SystemExit(f"unknown stage {stage!r}")


if __name__ == "__main__":
    main(sys.argv[1])
