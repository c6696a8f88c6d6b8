"""``sandbox run`` started the way a user on a systemd host starts it — from a plain, undelegated
service — ends up in a delegated scope in sandbox.slice and makes its run there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.guest.conftest import REPO

pytestmark = pytest.mark.guest


def test_sandbox_run_from_plain_service_uses_a_delegated_scope(runs_dir: Path) -> None:
    runs = runs_dir / "runs"
    result = subprocess.run(
        ["systemd-run", "--quiet", "--collect", "--wait", "--pipe", "-p", "Delegate=no",
         f"--setenv=PYTHONPATH={REPO}", f"--working-directory={runs_dir}", "--",
         "/usr/local/bin/sandbox", "run", "--duration", "3s", "--no-progress",
         "--runs-dir", str(runs), "--", "/bin/sleep", "1"],
        capture_output=True, text=True, timeout=900,  # TCG, beside the host suite
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run_json,) = runs.glob("*/run.json")
    run = json.loads(run_json.read_text())
    assert run["host"]["cgroup"]["mode"] == "v2"
    assert run["host"]["in_delegated_cgroup"] is True, "sandbox run did not get a delegated scope"
    parent = Path(run["host"]["cgroup"]["parents"]["unified"])
    assert parent.name.endswith(".scope") and parent.parent.name == "sandbox.slice"
