"""docs/ci.md's GitHub Actions recipe, run as written (sudo, --preserve-env, the run step's
command line) with the workflow's variables set; only the scenario is shortened (endurance ->
a 15 s smoke run). What the later steps pick up must be there: runs/, runs/*/junit.xml, the
job summary."""

from __future__ import annotations

import glob
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SHORTER = ("--scenario endurance", "--scenario smoke --duration 15s")


def _workflow() -> dict:
    text = (REPO / "docs/ci.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def _step(workflow: dict, name: str) -> dict:
    (job,) = workflow["jobs"].values()
    return next(s for s in job["steps"] if s.get("name") == name)


def test_the_github_actions_recipe_runs_as_written(needs_cgroups, needs_chromium, runs_dir):
    workflow = _workflow()
    command = _step(workflow, "Endurance run")["run"]
    assert SHORTER[0] in command
    (runs_dir / ".venv").symlink_to(REPO / ".venv")  # the checkout the workflow runs in
    summary = runs_dir / "step-summary.md"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run(["bash", "-e", "-c", command.replace(*SHORTER)], cwd=runs_dir,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 2), done.stdout + done.stderr
    assert summary.read_text().startswith("## ") and "sandbox smoke" in summary.read_text()
    upload = _step(workflow, "Upload the run directory")["with"]["path"]
    assert (runs_dir / upload).is_dir()
    pattern = _step(workflow, "Publish the checks")["with"]["report_paths"]
    (junit,) = glob.glob(str(runs_dir / pattern))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "sandbox.smoke"
