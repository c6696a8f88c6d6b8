"""The sampler's parsers on real pure-v2 kernel file contents (tests/fixtures/v2_pure), the
alert rules on fed series, and the samples reader on a file cut mid-line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sandbox.host.cgroups import v1_files, v2_files
from sandbox.model.sample import FAST_FIELDS
from sandbox.sampler import AlertMonitor, MemoryProfiler, read_samples
from sandbox.sampler.alerts import MB, GrowthWindow
from sandbox.sampler.cgroup_reader import CgroupReader, parse_psi

V2 = Path(__file__).parent / "fixtures" / "v2_pure"


def read_dir(directory: Path) -> dict:
    reader = CgroupReader("v2", dict(v2_files(directory)))
    try:
        record, pids = reader.read()
    finally:
        reader.close()
    assert pids is None  # no membership directory given
    assert record.pop("tier") == "full"  # a first sample reads every file
    return record


def test_docker_ubuntu_2204_memory_cpu_psi():
    record = read_dir(V2 / "docker-ubuntu-22.04")
    assert record["memory_current"] == 2766684160
    assert record["anon"] == 2147508224
    assert record["file"] == 590389248
    assert record["shmem"] == 0
    assert record["inactive_file"] == 42106880
    assert record["working_set"] == 2766684160 - 42106880
    assert record["cpu_usage_usec"] == 528946079
    assert record["psi_some_avg10"] == 0.0 and record["psi_full_avg10"] == 0.0
    # Kernel 5.15: no "kernel" key yet, no memory.peak; not collected: events, pids.
    for absent in ("kernel", "peak", "oom", "oom_kill", "pids_current", "nprocs"):
        assert record[absent] is None, absent


def test_clickhouse_newer_kernel_stat_has_kernel_key():
    record = read_dir(V2 / "clickhouse-gtest")
    assert record["memory_current"] == 29645422592  # written without a trailing newline
    assert record["anon"] == 10429399040
    assert record["kernel"] == 1537789952
    assert record["working_set"] == 29645422592 - 8693084160
    assert record["cpu_usage_usec"] is None


def test_oom_killed_group_events_and_peak():
    record = read_dir(V2 / "vm-ubuntu-24.04-oomlab")
    assert record["oom"] == 1
    assert record["oom_kill"] == 1
    assert record["peak"] == 104857600
    assert record["memory_current"] is None and record["working_set"] is None


def test_missing_directory_reads_as_nulls(tmp_path):
    record = read_dir(tmp_path / "gone")
    assert all(v is None for v in record.values())
    v1 = CgroupReader("v1", v1_files(None, None, None, None))
    record, pids = v1.read()
    assert record.pop("tier") == "full"
    assert all(v is None for v in record.values()) and pids is None


def test_psi_parser_reads_avg10_of_both_lines():
    assert parse_psi(b"some avg10=1.25 avg60=0.04 avg300=0.08 total=855273\n"
                     b"full avg10=0.50 avg60=0.02 avg300=0.04 total=527201\n") == (1.25, 0.5)
    assert parse_psi(b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") == (0.0, None)
    assert parse_psi(None) == (None, None)


@pytest.mark.parametrize("bad", [0.0, 0.001, 10.5, -1])
def test_interval_out_of_range_is_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"between 0\.01 and 10 seconds"):
        MemoryProfiler(sample_interval=bad)


def test_threshold_alert_once_per_crossing_and_rearms():
    mon = AlertMonitor(100.0, window_s=10.0, warmup_s=1e9)
    series = [50, 120, 130, 140, 90, 80, 150, 160]
    fired = [a for i, mb in enumerate(series) for a in mon.update(i, 1e9 + i, int(mb * MB))]
    assert [(a.kind, a.t) for a in fired] == [("threshold", 1), ("threshold", 6)]


def test_growth_rate_warning_then_critical_once_each():
    mon = AlertMonitor(1e6, window_s=10.0, warmup_s=0.0)
    fired = []
    y, t = 100.0, 0.0
    for rate, seconds in ((0.0, 20), (0.2, 30), (1.0, 30)):  # MB/s phases
        for _ in range(int(seconds * 2)):
            t += 0.5
            y += rate * 0.5
            fired += mon.update(t, 1e9 + t, int(y * MB))
    assert [(a.kind, a.severity) for a in fired] == [
        ("growth_rate", "warning"), ("growth_rate", "critical")]
    assert 20 < fired[0].t < 30 and 50 < fired[1].t < 60


def test_growth_window_slope_and_warmup():
    win = GrowthWindow(window_s=5.0)
    slopes = [win.add(t / 10, 3.0 * t / 10 + 7) for t in range(200)]
    assert slopes[10] is None  # window not full yet
    assert slopes[-1] == pytest.approx(3.0)
    mon = AlertMonitor(1e6, window_s=2.0, warmup_s=5.0)
    # Steep start-up growth inside the warm-up, flat afterwards: no alert.
    fired = [a for t in range(100)
             for a in mon.update(t / 10, 0, int((t * 10 if t < 40 else 400) * MB))]
    assert fired == []


def test_read_samples_drops_a_line_cut_mid_write(tmp_path):
    path = tmp_path / "samples.jsonl"
    rows = [{"t": i * 0.5, "wall": 1e9 + i, "source": "cgroup-v1", "anon": 1000 * i,
             "working_set": None} for i in range(4)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text[: len(text) - 20])  # the harness died inside the last write
    arrays = read_samples(path)
    assert list(arrays["t"]) == [0.0, 0.5, 1.0]
    assert list(arrays["anon"]) == [0.0, 1000.0, 2000.0]
    assert np.isnan(arrays["working_set"]).all()


def test_tiers_read_the_dear_files_once_a_second_or_when_usage_moves(tmp_path):
    """Fast samples read usage, pids and peak only and repeat memory.stat's values; a full
    one comes after full_period_s, or as soon as the usage moved move_bytes."""
    import shutil

    directory = tmp_path / "slice"
    shutil.copytree(V2 / "docker-ubuntu-22.04", directory)
    reader = CgroupReader("v2", dict(v2_files(directory)), full_period_s=3600)
    try:
        first, _ = reader.read()
        (directory / "memory.stat").write_text(
            (directory / "memory.stat").read_text().replace("anon ", "anon 1", 1))
        second, _ = reader.read()
        assert (first["tier"], second["tier"]) == ("full", "fast")
        assert set(second) == set(FAST_FIELDS)  # memory.stat not re-read
        usage = int(first["memory_current"])
        (directory / "memory.current").write_text(f"{usage + 2 * 2**20}\n")
        third, _ = reader.read()
        assert third["tier"] == "full" and third["anon"] != first["anon"]
        assert third["memory_current"] == usage + 2 * 2**20
    finally:
        reader.close()
