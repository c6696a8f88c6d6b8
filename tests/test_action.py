"""action.yml's steps run as written, the way GitHub runs a composite action: each ``run:``
step under ``bash --noprofile --norc -eo pipefail``, in the workspace, with its ``env:``
expressions filled in, GITHUB_ACTION_PATH (this checkout), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY
and GITHUB_ACTIONS set; after a failed step only ``always()`` steps run. A ``uses:`` step cannot
run here: the paths its ``with:`` names must exist afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
#: A short real command run that leaves an orphan behind: a warning (exit 2, an annotation).
WITH = {"command": "sh -c 'sleep 300 & sleep 300'", "duration": "3s", "budget": "100MB/h",
        "until-decided": "true"}


def _fill(text: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    """The ``${{ inputs.X }}`` and ``${{ steps.ID.outputs.X }}`` expressions of ``text``."""

    def value(m: re.Match[str]) -> str:
        parts = m.group(1).split(".")
        if parts[0] == "inputs":
            return inputs[parts[1]]
        assert parts[0] == "steps" and parts[2] == "outputs", m.group(0)
        return outputs.get(parts[1], {}).get(parts[3], "")

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, text)


def _outputs(path: Path) -> dict[str, str]:
    """A step's GITHUB_OUTPUT file (name=value lines)."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_no_run_step_expands_an_input_into_its_script():
    """Inputs reach scripts through env: only (no script injection through an input)."""
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


def test_the_action_runs_a_command_as_written(needs_cgroups, runs_dir):
    assert ACTION["runs"]["using"] == "composite"
    inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    inputs |= WITH
    summary = runs_dir / "step-summary.md"
    outputs: dict[str, dict[str, str]] = {}
    failed: list[str] = []
    uploads = []
    for i, step in enumerate(ACTION["runs"]["steps"]):
        if failed and "always()" not in step.get("if", ""):
            continue
        if "uses" in step:
            uploads.append({k: _fill(str(v), inputs, outputs) for k, v in step["with"].items()})
            continue
        assert step["shell"] == "bash"
        output = runs_dir / f"output-{i}"
        output.touch()
        env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(runs_dir),
               "GITHUB_ACTION_PATH": str(REPO), "GITHUB_OUTPUT": str(output),
               "GITHUB_STEP_SUMMARY": str(summary)}
        env |= {k: _fill(str(v), inputs, outputs) for k, v in step.get("env", {}).items()}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               step["run"]], cwd=runs_dir, env=env, capture_output=True,
                              text=True, timeout=240)
        if "id" in step:
            outputs[step["id"]] = _outputs(output)
        if done.returncode:
            failed.append(step["name"])
            result = done
    # the run step failed with the run's verdict (warnings: an orphan), and said why
    assert failed == ["Run sandbox"], result.stderr
    assert result.returncode == 2 and outputs["run"]["exit-code"] == "2", result.stderr
    assert "::warning title=sandbox orphans::" in result.stdout, result.stdout
    text = summary.read_text()
    assert text.startswith("## ") and "sh" in text.splitlines()[0]
    run_dir = runs_dir / outputs["run"]["run-dir"]
    assert run_dir.parent == runs_dir / inputs["runs-dir"]
    suite = ET.parse(runs_dir / outputs["run"]["junit"]).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "sandbox.sh"
    # the upload step still ran, and uploads the run directory with its junit.xml
    (upload,) = uploads
    assert upload["name"] == "sandbox-run"
    assert (runs_dir / upload["path"]).resolve() == run_dir.resolve()
    assert (run_dir / "junit.xml").is_file() and (run_dir / "report.html").is_file()
    assert "decision" in (run_dir / "run.json").read_text()  # until-decided reached the run
