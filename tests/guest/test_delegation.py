"""Delegated scopes for real: the EBUSY trap of a fresh scope (systemd#26311), the harness's
way out of it (a leaf of its own), and ``ensure_delegated_scope`` re-executing the harness from
a plain, undelegated service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.host import discover
from sandbox.host.systemd import ensure_delegated_scope
from tests.guest.conftest import REPO, probe

pytestmark = pytest.mark.guest

SCOPE = ["--scope", "-p", "Delegate=yes"]
MB = 1 << 20


def test_fresh_delegated_scope_refuses_controllers_while_occupied() -> None:
    """Negative control: enabling +memory in place fails, so the leaf move is needed."""
    (line,) = probe("trap", systemd_run=SCOPE)
    assert json.loads(line) == {"enable_in_place": "EBUSY"}


def test_harness_moves_into_a_leaf_and_creates_its_slice_in_a_fresh_scope() -> None:
    (line,) = probe("slice", systemd_run=SCOPE)
    state = json.loads(line)
    scope = Path(state["cgroup"])
    assert scope.name.endswith(".scope") and state["delegated"] is True
    assert Path(state["harness_in"]) == Path(state["harness_leaf"])
    assert Path(state["harness_leaf"]).parent == scope
    assert state["memory_current"] >= 32 * MB
    assert state["pids_current"] == 1
    assert Path(state["cgroup_after"]) == scope  # back where it was; the leaf is gone
    assert not Path(state["harness_leaf"]).exists()


def test_plain_service_reexecs_into_a_delegated_scope() -> None:
    lines = probe("reexec", systemd_run=["--wait", "--pipe", "-p", "Delegate=no",
                                         f"--setenv=PYTHONPATH={REPO}"])
    before, after = (json.loads(line) for line in lines)
    assert before["stage"] == "before" and before["delegated"] is False
    assert Path(before["cgroup"]).name.endswith(".service")
    assert after["stage"] == "after", "ensure_delegated_scope did not re-execute"
    assert after["delegated"] is True and after["scope_env"] == "1"
    scope = Path(after["cgroup"])
    assert scope.name.endswith(".scope") and scope.parent.name == "sandbox.slice"
    assert after["memory_current"] >= 32 * MB


def test_already_delegated_harness_stays(delegated) -> None:
    assert ensure_delegated_scope(discover(), ["/bin/false"]) is None
