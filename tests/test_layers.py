"""The layering docs/architecture.md describes, held by reading the source: the teardown's
finders never change anything (only teardown/act.py kills or removes), the verifier is used
by the runner alone, and the analysis and reports never import a collector."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

import sandbox

from .cli_helpers import start_sandbox

ROOT = Path(sandbox.__file__).parent
#: calls that change the host: signals and removals
ACTIONS = {"send_signal", "kill", "killpg", "pidfd_send_signal", "remove", "rmtree", "unlink",
           "rmdir", "remove_sysv_ipc", "teardown", "evict"}
COLLECTORS = ("sandbox.host", "sandbox.sampler", "sandbox.tracer", "sandbox.workloads",
              "sandbox.teardown", "sandbox.verifier")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute)
                      else func.id if isinstance(func, ast.Name) else "")
    return names


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_only_act_changes_anything_in_teardown() -> None:
    finders = [p for p in _modules("teardown") if p.name != "act.py"]
    assert len(finders) >= 4
    for path in finders:
        assert not _calls(path) & ACTIONS, path.name
    assert {"send_signal", "remove"} <= _calls(ROOT / "teardown" / "act.py")


def test_the_verifier_only_orders_the_steps() -> None:
    calls = _calls(ROOT / "verifier.py")
    assert not calls & (ACTIONS - {"teardown", "evict"}), "kill and remove in teardown/act.py"
    users = [p for p in ROOT.rglob("*.py")
             if any(m.startswith("sandbox.verifier") for m in _imports(p))]
    assert [p.name for p in users] == ["runner.py"]


def test_analysis_and_reports_import_no_collector() -> None:
    for path in _modules("analysis") + _modules("report"):
        bad = {m for m in _imports(path) if m.startswith(COLLECTORS)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_runner_computes_nothing() -> None:
    """Statistics belong to analysis/: the runner imports no numpy, scipy or statsmodels."""
    heavy = {m for m in _imports(ROOT / "runner.py")
             if m.split(".")[0] in {"numpy", "scipy", "statsmodels"}}
    assert not heavy


@pytest.mark.parametrize("progress", ["--no-progress", "--progress"])
def test_a_running_harness_carries_no_statistics_library(needs_cgroups, runs_dir,
                                                         progress) -> None:
    """scipy, statsmodels and pandas (~130 MB of the harness's memory) load when the run is
    judged, not while it lasts: read from the live harness's own memory map, also with a
    progress line, whose slope is computed every 0.25 s from its 8th point (2 s in)."""
    proc = start_sandbox("run", "--duration", "8s", progress, "--runs-dir",
                         str(runs_dir), "--", "sleep", "10")
    try:
        deadline = time.monotonic() + 30
        while not list(runs_dir.glob("*/samples.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "/site-packages/numpy/" in maps  # the map is the harness's, read mid-run
    for library in ("/scipy/", "/statsmodels/", "/pandas/"):
        assert library not in maps, library
