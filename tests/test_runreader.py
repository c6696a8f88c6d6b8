"""Reading a run directory back, including a run killed mid-write."""

import json
import logging
import math
from pathlib import Path

import pytest

from sandbox.config import RunConfig, recorded
from sandbox.model.cleanup import CleanupFacts
from sandbox.model.run_info import RunInfo
from sandbox.runreader import RunReadError, read_jsonl, read_run


def test_read_jsonl_skips_cut_last_line(tmp_path):
    p = tmp_path / "samples.jsonl"
    p.write_text('{"t": 0.5, "anon": 1}\n\n{"t": 1.0, "anon": 2}\n{"t": 1.5, "an')
    assert read_jsonl(p) == [{"t": 0.5, "anon": 1}, {"t": 1.0, "anon": 2}]


def test_read_jsonl_missing_file_is_empty(tmp_path):
    assert read_jsonl(tmp_path / "nope.jsonl") == []


def test_read_run_arrays_nan_for_null_and_sorted(tmp_path):
    rows = [{"t": 1.0, "anon": 200, "kernel": None, "source": "cgroup-v1"},
            {"t": 0.5, "anon": 100, "kernel": None, "source": "cgroup-v1"}]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"t"')
    (tmp_path / "run.json").write_text(json.dumps({"backend": {"cgroup": "hybrid"},
                                                       "alerts": [{"t": 1, "kind": "a"}]}))
    (tmp_path / "alerts.jsonl").write_text('{"t": 2, "kind": "b"}\n{"b": 2}\n')
    (tmp_path / "cleanup.json").write_text(json.dumps({"cleanup_successful": True}))
    run = read_run(tmp_path)
    assert run.samples["t"].tolist() == [0.5, 1.0]
    assert run.samples["anon"].tolist() == [100.0, 200.0]
    assert all(math.isnan(x) for x in run.samples["kernel"])
    assert run.run.backend == {"cgroup": "hybrid"}
    assert [(a.t, a.kind) for a in run.alerts] == [(1.0, "a"), (2.0, "b")]
    assert run.cleanup == CleanupFacts(available=True, cleanup_successful=True)
    assert run.operations == [] and run.events == []
    assert run.sample_source == "cgroup-v1"
    assert run.n_samples == 2


def test_read_run_errors(tmp_path):
    with pytest.raises(RunReadError):
        read_run(tmp_path / "missing")
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(RunReadError):
        read_run(tmp_path)


def test_empty_run_dir_has_no_samples(tmp_path):
    run = read_run(tmp_path)
    assert run.n_samples == 0 and run.run == RunInfo.from_dict({}) and not run.cleanup.available


def test_garbage_lines_give_one_warning(tmp_path, caplog):
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(f"garbage {i}\n" for i in range(2000)) + '{"t": 1}\n')
    with caplog.at_level(logging.WARNING):
        assert read_jsonl(path) == [{"t": 1}]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped 2000 malformed line(s), the first at line 1"]


def test_config_reads_back_typed(tmp_path):
    """run.json's config is a RunConfig again: the first format's (no budget, tmp_size, ...,
    memory_max a number), a later version's unknown keys, and a hand-edited mistyped value."""
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r", "config": {
        "command": ["sleep", "1"], "duration_s": 30, "memory_max": 2**30, "user": "nobody",
        "runs_dir": "/var/runs", "env": ["HOME"], "from_a_later_version": {"x": 1},
        "budget": "2MB/h", "grace_s": "soon", "fail_on_inconclusive": True}}))
    config = read_run(tmp_path).run.config
    assert config == RunConfig(command=["sleep", "1"], duration_s=30.0, memory_max=2**30,
                               user="nobody", runs_dir=Path("/var/runs"), env=["HOME"],
                               budget="2MB/h", fail_on_inconclusive=True)
    assert config.workload == "command" and config.label == "sleep"
    assert RunInfo.from_dict({"config": recorded(config)}).config == config
