"""``sandbox runs list|prune`` on real run directories: what is listed, what goes, what never
goes (a running run, a directory that is not a run, anything behind a symlink)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from sandbox.analysis import analyze
from sandbox.host.registry import SliceRecord
from sandbox.report import write_all
from sandbox.runreader import read_run
from tests.synthetic import series, write_run

REPO = Path(__file__).resolve().parent.parent
DAY = 86400.0
CLEAN = {"process_cleanup": {"orphaned_browser_processes": []},
         "file_cleanup": {"remaining_temp_files": []}, "escapes": [], "cleanup_successful": True}


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Five runs started 10, 8, 3, 1 and 0 days ago (the newest still running), a directory
    that is not a run, a symlink to a run elsewhere, and a link out of the oldest run."""
    state = tmp_path / "state"
    monkeypatch.setenv("SANDBOX_STATE_DIR", str(state))
    root = tmp_path / "runs"
    now = time.time()
    made = []
    for i, age in enumerate((10, 8, 3, 1, 0)):
        t, y = series(np.random.default_rng(i), 300, leak_mb_s=0.0, noise_sd=1)
        run_dir = write_run(root / f"2026112{i}T000000Z-quick", t, y, cleanup=CLEAN,
                            run_extra={"started": now - age * DAY})
        if age:  # the running one has no report yet
            write_all(analyze(read_run(run_dir)), run_dir, ["json"])
        made.append(run_dir)
    me = psutil.Process()
    SliceRecord("sandbox-test-live", me.pid, me.create_time(), "v1", "m",
                run_dir=str(made[-1])).save()
    (root / "notes").mkdir()
    (root / "notes" / "keep.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("x")
    (elsewhere / "run.json").write_text("{}")
    (root / "linked").symlink_to(elsewhere)
    (made[0] / "out").symlink_to(elsewhere)
    return root, made, elsewhere, {**os.environ, "SANDBOX_STATE_DIR": str(state)}


def sandbox(env, *args):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_list_shows_runs_oldest_first_with_status(runs):
    root, made, _, env = runs
    done = sandbox(env, "runs", "list", "--runs-dir", str(root), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["path"]).name for r in rows] == [p.name for p in made]
    assert rows[-1]["status"] == "RUNNING"
    assert {r["status"] for r in rows[:-1]} <= {"PASS", "INCONCLUSIVE"}
    assert all(r["size_bytes"] > 0 and r["label"] == "synthetic" for r in rows)


def test_prune_older_than_keeps_recent_and_running_runs(runs):
    root, made, elsewhere, env = runs
    done = sandbox(env, "runs", "prune", "--runs-dir", str(root), "--older-than", "7d")
    assert done.returncode == 0, done.stderr
    assert [p.exists() for p in made] == [False, False, True, True, True]
    assert (elsewhere / "precious").exists()  # the link out of a removed run was not followed
    assert (root / "notes" / "keep.txt").exists() and (root / "linked").is_symlink()


def test_prune_keep_n_and_dry_run(runs):
    root, made, _, env = runs
    dry = sandbox(env, "runs", "prune", "--runs-dir", str(root), "--keep", "1", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("would remove") == 4
    assert all(p.exists() for p in made)
    done = sandbox(env, "runs", "prune", "--runs-dir", str(root), "--keep", "0")
    assert done.returncode == 0, done.stderr
    assert [p.exists() for p in made] == [False, False, False, False, True]  # still running


def test_prune_needs_a_rule_and_a_directory(runs, tmp_path):
    root, _, _, env = runs
    for args in (["--runs-dir", str(root)], ["--runs-dir", str(tmp_path / "none"), "--keep", "1"],
                 ["--runs-dir", str(root), "--older-than", "soon"]):
        done = sandbox(env, "runs", "prune", *args)
        assert done.returncode == 3 and len(done.stderr.splitlines()) == 1, done.stderr
