"""The harness as a container's entrypoint on pure cgroup v2: in a fresh delegated scope (as a
container engine gives a container), in a cgroup namespace of its own with cgroup2 mounted at
/sys/fs/cgroup. That directory is the namespace's root but not the real root, so the harness
moves into a leaf before enabling memory and pids for its slice (V2Memory._prepare_parent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.guest.conftest import REPO

pytestmark = pytest.mark.guest

CONTAINER_ENTRYPOINT = """
import json, subprocess
from pathlib import Path
from sandbox.host import discover, open_slice
# what a container engine does in the container's mount namespace (private: the host keeps its)
subprocess.run(["umount", "-l", "/sys/fs/cgroup"], check=True)
subprocess.run(["mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"], check=True)
root = Path("/sys/fs/cgroup")
own = lambda pid="self": Path(f"/proc/{pid}/cgroup").read_text().strip()
layout = discover().cgroup
out = {"mode": layout.mode, "parent": str(layout.parents.get("unified")), "before": own()}
with open_slice("t-cgroupns", layout) as slice_:
    child = slice_.spawn(["sleep", "30"])
    out |= {"leaf": str(slice_.harness_leaf), "harness": own(), "child": own(child.pid),
            "enabled": (root / "cgroup.subtree_control").read_text().split()}
out |= {"after": own(), "left": sorted(p.name for p in root.iterdir() if p.is_dir())}
print(json.dumps(out))
"""


def test_harness_in_a_cgroup_namespace_moves_into_a_leaf() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        ["systemd-run", "--quiet", "--collect", "--scope", "-p", "Delegate=yes", "--",
         "unshare", "--cgroup", "--mount", sys.executable, "-c", CONTAINER_ENTRYPOINT],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads(result.stdout.splitlines()[-1])
    assert state["mode"] == "v2" and state["parent"] == "/sys/fs/cgroup"
    assert state["before"] == "0::/"  # the namespace's root: the container's view
    assert state["leaf"].startswith("/sys/fs/cgroup/sandbox-harness-")
    assert state["harness"] == "0::/" + state["leaf"].removeprefix("/sys/fs/cgroup/")
    assert state["child"] == "0::/sandbox-t-cgroupns"
    assert {"memory", "pids"} <= set(state["enabled"])
    assert state["after"] == "0::/" and state["left"] == []  # back, leaf and slice gone
