"""The run model: report.json is built through sandbox.model.report, and docs/report.schema.json
(what users validate against) is that model's JSON Schema, checked here with an independent
validator (jsonschema) on a real run's report and on a run directory of the first format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from sandbox.analysis import analyze
from sandbox.config import RunConfig
from sandbox.model.alert import Alert
from sandbox.model.cleanup import CleanupFacts, LeftoverFile, ProcessRecord, Socket
from sandbox.model.event import Event
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.model.report import SCHEMA_VERSION, json_schema
from sandbox.model.role_sweep import RoleSweep, RoleTotals
from sandbox.model.run_info import RunInfo
from sandbox.report.json_report import to_dict
from sandbox.rundir import FILE_FORMATS
from sandbox.runreader import read_run
from tests.synthetic import series, write_run

from .cli_helpers import report_of, sandbox

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "docs/report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SHIPPED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_is_the_models():
    """docs/report.schema.json is regenerated whenever the model changes
    (``python -m sandbox.model.report > docs/report.schema.json``)."""
    assert json.loads(SHIPPED.read_text()) == json_schema()
    assert f"v{SCHEMA_VERSION}" in json_schema()["$id"]


def test_a_real_runs_report_validates(validator, needs_cgroups, runs_dir):
    done = sandbox("run", "--duration", "3s", "--no-progress", "-q", "--runs-dir",
                   str(runs_dir), "--", sys.executable, "-c", "import time; time.sleep(1)")
    assert done.returncode in (0, 2), done.stderr
    doc = report_of(runs_dir)
    validator.validate(doc)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["cleanup_verified"]
    # run.json has only keys RunInfo declares (its config RunConfig's), and reads back whole
    (run_dir,) = runs_dir.iterdir()
    doc = json.loads((run_dir / "run.json").read_text())
    info = RunInfo.from_dict(doc)
    assert info.to_dict() == doc
    assert info.config.command[0] == sys.executable and info.config.duration_s == 3
    assert info.exit_code == done.returncode and info.formats == FILE_FORMATS
    assert info.workload_exit["ended_by"] and info.backend["c_ticker"] is not None


def test_a_first_format_run_validates(validator, tmp_path):
    """A run directory as the seed's harness wrote it (no ``formats``, cleanup.json with
    the seed's keys only, no roles): its report still matches the schema."""
    t, y = series(np.random.default_rng(1), 300, leak_mb_s=0.2, noise_sd=2)
    run_dir = write_run(tmp_path / "old", t, y, cleanup={
        "process_cleanup": {"orphaned_browser_processes": [41], "process_leak_detected": True},
        "file_cleanup": {"remaining_temp_files": ["/tmp/x"], "file_leak_detected": True},
        "cleanup_successful": False, "issues_found": ["orphans", "files"]})
    doc = to_dict(analyze(read_run(run_dir)))
    validator.validate(doc)
    assert doc["process_cleanup"]["orphaned_browser_processes"] == [41]


def test_the_schema_rejects_a_drifted_document(validator, tmp_path):
    """The validator can fail: an unknown key, a wrong exit code and a wrong type are caught."""
    t, y = series(np.random.default_rng(2), 300, noise_sd=2)
    doc = to_dict(analyze(read_run(write_run(tmp_path / "r", t, y))))
    for broken in ({**doc, "surprise": 1}, {**doc, "exit_code": 4},
                   {**doc, "findings": [{"check": "x", "level": "fatal", "message": "m"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_every_reader_returns_the_same_fields(needs_cgroups, facts):
    """The contract across sampler backends: the pure-v2 reader (a real kernel's files), the
    reader of this host's layout (hybrid or v1 here, v2 in the guest) and the psutil reader
    return the same fields, in the order sandbox.model.sample declares them."""
    from sandbox.host import discover, open_slice
    from sandbox.host.cgroups import v2_files
    from sandbox.model.sample import READING_FIELDS
    from sandbox.sampler.cgroup_reader import CgroupReader
    from sandbox.sampler.profiler import reader_for

    records = {}
    v2 = CgroupReader("v2", dict(v2_files(ROOT / "tests/fixtures/v2_pure/docker-ubuntu-22.04")))
    records["v2 fixture"], _ = v2.read()
    v2.close()
    for name, layout in (("host", facts.cgroup), ("psutil", discover("none").cgroup)):
        with open_slice(f"test-model-contract-{name}", layout) as slice_:
            proc = slice_.spawn([sys.executable, "-c", "import time; time.sleep(30)"])
            reader = reader_for(slice_, lambda proc=proc: {proc.pid})
            try:
                records[f"{name} ({reader.source})"], pids = reader.read()
            finally:
                reader.close()
            assert pids and proc.pid in pids
    for name, record in records.items():
        assert tuple(record) == READING_FIELDS, name
        assert record["tier"] == "full" and record["memory_current"], (name, record)


# -- the line records: each file's lines read into the model, also those of earlier formats --
@pytest.mark.parametrize("record", [
    Event(t=1.5, kind="exec", pid=42, ppid=1, comm="sh", wall=1e9, filename="/bin/sh"),
    Event(t=2.0, kind="attach", pid=42, comm="sh", cgroup="/", hierarchy="unified"),
    Operation(op=3, t=4.2, wall=1e9, url="http://x/", latency_s=0.5, bytes=10, ok=True),
    Operation(op="login", t=1.0, latency_s=2.0, ok=False, error="Error: timeout"),
    JsHeapMeasurement(t=10.0, wall=1e9, pages=2, used_bytes=5, dom_nodes=7, listeners=1),
    RoleSweep(t=2.0, roles={"renderer": RoleTotals(2, 30, 40, rss=9, pss=5, uss=3),
                            "script": RoleTotals(1, 4, 1, rss=8)}),
    ProcessRecord(pid=7, comm="sleep", cmdline=["sleep", "9"], ppid=1, user="root", age_s=2.0,
                  created=1e9, sockets=[Socket("tcp", "127.0.0.1:80", None, "LISTEN")]),
    ProcessRecord(pid=8, comm="sh", found_by=["marker"], cgroup="/", cgroups={"pids": "/"},
                  moved=None, killed=True),
    LeftoverFile(path="/tmp/x", where="private /tmp", size=4096, files=1, age_s=3.0, uid=0),
    LeftoverFile(path="sysv shm id 3 key 0x0", where="SysV IPC", size=10, kind="shm", id=3),
    Alert(t=31.0, kind="growth_rate", severity="critical", value=0.6, limit=0.5, unit="MB/s",
          message="working set growing", wall=1e9),
])
def test_a_record_reads_back_from_its_line(record):
    line = json.loads(json.dumps(record.to_record()))
    assert type(record).from_record(line) == record


def test_lines_that_are_not_records_are_skipped_and_wrong_types_read_as_none():
    assert Event.from_record({"t": "1", "kind": "fork", "pid": 1}) is None
    assert Event.from_record({"t": 1, "kind": "fork", "pid": True}) is None
    assert Operation.from_record({"kind": "ready", "pid": 1}) is None
    assert Operation.from_record({"op": [1]}) is None
    op = Operation.from_record({"op": 1, "t": "soon", "latency_s": True, "error": 404})
    assert (op.t, op.latency_s, op.error, op.ok, op.failed) == (None, None, "404", None, False)
    assert JsHeapMeasurement.from_record({"kind": "jsheap"}) is None
    assert RoleSweep.from_record({"t": 1, "roles": []}) is None


def test_earlier_formats_read():
    """roles.jsonl 1: count sweeps without ``rss``; run.json 1: no ``formats``, mistyped
    keys of a hand-edited file read as missing."""
    old = RoleSweep.from_record({"t": 2, "roles": {"gpu": {"processes": 1, "fds": 9,
                                                            "threads": 4}}})
    assert old.roles["gpu"] == RoleTotals(1, 9, 4) and not old.reads("rss")
    info = RunInfo.from_dict({"run_id": "r", "config": {"scenario": "quick"}, "started": 1.0,
                              "backend": "hybrid", "exit_code": "2", "alerts": []})
    assert (info.run_id, info.config, info.backend, info.exit_code, info.formats) == \
        ("r", RunConfig(scenario="quick"), None, None, {})
    assert RunInfo.from_dict(info.to_dict()) == info
    seed = CleanupFacts.from_dict({"process_cleanup": {"orphaned_browser_processes": [41]},
                                   "file_cleanup": {"remaining_temp_files": ["/tmp/x"]},
                                   "cleanup_successful": False})
    assert [(o.pid, o.is_browser) for o in seed.orphans] == [(41, True)]
    assert [f.path for f in seed.leftover_files] == ["/tmp/x"]
    assert seed.process_leak_detected and seed.file_leak_detected and not seed.escapes
    assert not CleanupFacts.from_dict(None).available
