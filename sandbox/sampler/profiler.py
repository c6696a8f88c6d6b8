"""``MemoryProfiler``: a background thread that samples a run's slice into samples.jsonl."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from sandbox.host import safefs
from sandbox.model.alert import Alert
from sandbox.model.sample import FAST_FIELDS
from sandbox.rundir import ALERTS, FILE_MODE, ROLES, private_opener
from sandbox.sampler import ticker
from sandbox.sampler.alerts import GROWTH_WARMUP_S, GROWTH_WINDOW_S, MB, AlertMonitor
from sandbox.sampler.cgroup_reader import CgroupReader
from sandbox.sampler.psutil_reader import CAVEAT, ProcessTreeReader
from sandbox.sampler.roles import DEFAULT_INTERVAL_S as DEFAULT_ROLE_INTERVAL_S
from sandbox.sampler.roles import RoleSampler

log = logging.getLogger("sandbox.sampler")

MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 10.0
#: The run's TMPDIR is walked at most this often; samples in between repeat the last value.
TMP_SCAN_PERIOD_S = 1.0
#: Samples kept in memory while the disk refuses them (about 10 hours at 2 per second).
MAX_UNWRITTEN = 72_000

#: A fast sample's line: only what was read (docs/run-directory.md, ``tier``).
_FAST_KEYS = tuple(k for k in FAST_FIELDS if k != "tier")
_FAST_LINE = ('{{"t": {}, "wall": {}, ' + "".join(f'"{k}": {{}}, ' for k in _FAST_KEYS)
              + '"tier": "fast"}}\n')

#: Fast samples feed the live alerts at most this often (their growth window is GROWTH_WINDOW_S).
MONITOR_PERIOD_S = 0.1


@dataclass
class MemorySnapshot:
    """One sample. The seed's fields first (``memory_mb`` is the working set in MB), then the
    fields of a samples.jsonl line; a value the backend cannot read is None."""

    timestamp: datetime
    process_id: int
    memory_mb: float | None
    cpu_percent: float | None
    thread_count: int | None
    file_descriptors: int | None
    browser_processes: list[int]
    temp_files_count: int | None
    temp_files_size_mb: float | None
    t: float = 0.0
    wall: float = 0.0
    source: str = ""
    memory_current: int | None = None
    anon: int | None = None
    file: int | None = None
    shmem: int | None = None
    inactive_file: int | None = None
    kernel: int | None = None
    working_set: int | None = None
    peak: int | None = None
    pids_current: int | None = None
    nprocs: int | None = None
    cpu_usage_usec: int | None = None
    oom: int | None = None
    oom_kill: int | None = None
    psi_some_avg10: float | None = None
    psi_full_avg10: float | None = None
    tmp_bytes: int | None = None
    tmp_files: int | None = None
    uss: int | None = None
    pss: int | None = None
    tier: str | None = None  # full, fast (cgroup reader: which fields were read now), None
    settle: int | None = None  # the settle point this sample measures (sample_now)
    caveat: str | None = field(default=None, repr=False)


def _json(value: int | None) -> int | str:
    """A fast line's number as JSON (None: null)."""
    return "null" if value is None else value


def _peaks(samples: list[tuple[float, int | None, int | None, int | None, int | None]],
           period_s: float) -> list[tuple[float, int]]:
    """``(t, working set)`` of the largest working set in each ``period_s`` of ``samples``
    (``(t, usage, working set, ...)`` in time order; samples without one skipped)."""
    peaks: list[tuple[float, int]] = []
    start = float("-inf")
    for t, _, ws, *_ in samples:
        if ws is None:
            continue
        if t - start >= period_s:
            start = t
            peaks.append((t, ws))
        elif ws > peaks[-1][1]:
            peaks[-1] = (t, ws)
    return peaks


def tmp_usage(directory: Path | None) -> tuple[int | None, int | None]:
    """(bytes, regular files) under ``directory``, symlinks never followed (the workload
    owns what is inside); None if absent."""
    if directory is None:
        return None, None
    try:
        with safefs.open_dir(directory) as fd:
            return safefs.usage(fd)
    except OSError:
        return None, None


def tree_pids(slice_: Any, root_pids: Callable[[], set[int]] | None) -> Callable[[], set[int]]:
    """The psutil fallback's process set: the slice's pids plus descendants of ``root_pids``."""

    def pids() -> set[int]:
        found = set(slice_.pids())
        for pid in root_pids() if root_pids else ():
            try:
                root = psutil.Process(pid)
                found.add(pid)
                found.update(c.pid for c in root.children(recursive=True))
            except psutil.Error:
                continue
        return found

    return pids


def reader_for(slice_: Any, root_pids: Callable[[], set[int]] | None = None
               ) -> CgroupReader | ProcessTreeReader:
    """The cgroup reader for a cgroup slice, the psutil reader for mode ``none``."""
    if slice_.has_cgroup:
        return CgroupReader.for_slice(slice_)
    return ProcessTreeReader(tree_pids(slice_, root_pids))


class MemoryProfiler:
    """Samples a slice every ``sample_interval`` seconds on a background thread.

    Each sample is appended to ``out_path`` (samples.jsonl) and flushed to the kernel as it is
    taken; alerts go to the log, to ``alerts`` and to alerts.jsonl next to ``out_path``.
    """

    def __init__(self, sample_interval: float = 0.5, alert_threshold_mb: float = 1024.0, *,
                 rate_window_s: float = GROWTH_WINDOW_S,
                 rate_warmup_s: float = GROWTH_WARMUP_S,
                 role_interval: float | None = DEFAULT_ROLE_INTERVAL_S) -> None:
        if not MIN_INTERVAL_S <= sample_interval <= MAX_INTERVAL_S:
            raise ValueError(f"sample interval must be between {MIN_INTERVAL_S} and "
                             f"{MAX_INTERVAL_S:g} seconds, got {sample_interval:g}")
        if not alert_threshold_mb > 0:
            raise ValueError(f"alert threshold must be a positive number of MB, "
                             f"got {alert_threshold_mb:g}")
        if not rate_window_s > 0 or rate_warmup_s < 0:
            raise ValueError("growth-rate window must be > 0 s and warm-up >= 0 s")
        self.sample_interval = sample_interval
        self.alert_threshold_mb = alert_threshold_mb
        self.rate_window_s = rate_window_s
        self.rate_warmup_s = rate_warmup_s
        self.sample_count = 0
        self.error_count = 0
        self.write_error: str | None = None
        self._unwritten: list[bytes] = []
        self._alerts: list[Alert] = []
        self._last: tuple[dict[str, Any], list[int] | None, int | None, float | None] | None = None
        self._fresh: dict[str, Any] | None = None  # the last fast sample's fields
        self._monitored = float("-inf")  # when the live alerts last saw a sample
        self._thread: threading.Thread | None = None
        #: one sample at a time: the sampling thread's and sample_now()'s (the reader's state)
        self._lock = threading.Lock()
        self._wake_r = self._wake_w = -1
        self._stopping = False
        self._ticker_error: str | None = None
        #: per-role sweeps into roles.jsonl (None: not sampled)
        self.roles = RoleSampler(role_interval) if role_interval else None

    # -- public ------------------------------------------------------------------------------
    @property
    def alerts(self) -> list[Alert]:
        """Alerts raised so far (a copy)."""
        return list(self._alerts)

    def latest(self) -> MemorySnapshot | None:
        """The most recent sample, or None before the first."""
        last = self._last
        if last is None:
            return None
        record, pids, fds, cpu_percent = last
        fresh = self._fresh
        if fresh is not None and fresh["t"] > record["t"]:
            record = {**record, **fresh}
        totals = self.roles.totals if self.roles else {}
        ws, tmp_bytes = record["working_set"], record["tmp_bytes"]
        return MemorySnapshot(
            timestamp=datetime.fromtimestamp(record["wall"]),
            process_id=self._workload_pid(),
            memory_mb=ws / MB if ws is not None else None,
            cpu_percent=cpu_percent,
            thread_count=totals.get("threads", record["pids_current"]),
            file_descriptors=totals.get("fds", fds),
            browser_processes=sorted(pids) if pids is not None else [],
            temp_files_count=record["tmp_files"],
            temp_files_size_mb=tmp_bytes / MB if tmp_bytes is not None else None,
            **record,
        )

    def sample_now(self, settle: int) -> dict[str, Any] | None:
        """A full sample at once, from any thread, marked as settle point ``settle``; None
        when the profiler is not running or the sample failed (counted)."""
        with self._lock:
            if self._thread is None or self._stopping:
                return None
            self._reader.next_full()
            try:
                return self.sample(settle=settle)
            except Exception:
                self.error_count += 1
                return None

    def _workload_pid(self) -> int:
        """The workload's main process (the slice's first spawned process), 0 if none yet."""
        spawned = getattr(self._slice, "spawned", None)
        return spawned[0].pid if spawned else 0

    def start(self, slice_: Any, out_path: Path,
              tmp_usage: Callable[[], tuple[int | None, int | None]] | None = None,
              root_pids: Callable[[], set[int]] | None = None, t0: float | None = None) -> None:
        """Open the slice's files and ``out_path`` and start the sampling thread. ``t0`` is
        the run's start on the monotonic clock (samples' ``t``); default: now. ``tmp_usage``
        gives the (bytes, files) of the workload's temp directories."""
        if self._thread is not None:
            raise RuntimeError("profiler already started")
        out_path = Path(out_path)
        self._out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                            FILE_MODE)
        self._reader = reader_for(slice_, root_pids)
        self._alerts_path = out_path.with_name(ALERTS)
        self._monitor = AlertMonitor(self.alert_threshold_mb, window_s=self.rate_window_s,
                                     warmup_s=self.rate_warmup_s)
        self._tmp_usage = tmp_usage or (lambda: (None, None))
        self._tmp: tuple[int | None, int | None] = (None, None)
        self._tmp_scanned = float("-inf")
        self._slice = slice_
        self._prev_cpu: tuple[float, int] | None = None
        self._t0 = time.monotonic() if t0 is None else t0
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="sandbox-sampler", daemon=True)
        self._thread.start()
        if self.roles is not None:
            self.roles.start(tree_pids(slice_, root_pids),
                             lambda: {p.pid for p in getattr(slice_, "spawned", [])},
                             out_path.with_name(ROLES), self._t0)

    def stop(self) -> None:
        """Stop the thread and close every file (idempotent)."""
        if self._thread is None:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join()
        self._thread = None
        if self.roles is not None:
            self.roles.stop()
        with self._lock:  # a sample_now() under way ends first
            self._reader.next_full()  # the last sample reads every file (OOM kills, stat)
            with contextlib.suppress(Exception):
                self.sample()
            self._flush()  # what a full disk refused, if there is room again
            self._reader.close()
        for fd in (self._out, self._wake_r, self._wake_w):
            os.close(fd)

    # -- sampling ----------------------------------------------------------------------------
    def _run(self) -> None:
        reader = self._reader
        if (ticker.AVAILABLE and self.sample_interval <= ticker.MAX_INTERVAL_S
                and isinstance(reader, CgroupReader) and (fds := reader.fast_fds()) is not None):
            self._run_ticked(reader, fds)
            if self._stopping:
                return
            log.warning("the C ticker stopped (%s): sampling goes on in Python",
                        self._ticker_error or "no reason given")
        # poll() on a pipe is the cheapest interruptible sleep (half the CPU of Event.wait).
        waker = select.poll()
        waker.register(self._wake_r, select.POLLIN)
        deadline = time.monotonic()
        while True:
            with self._lock:
                self._guarded_sample()
            deadline += self.sample_interval
            now = time.monotonic()
            if deadline < now:  # fell behind (slow psutil walk): skip the missed ticks
                deadline = now + self.sample_interval - (now - deadline) % self.sample_interval
            if waker.poll((deadline - now) * 1000):
                return

    def _run_ticked(self, reader: CgroupReader, fds: tuple[int, int, int]) -> None:
        """High rates: the C ticker reads usage, pids and peak on every tick; each batch of
        ticks becomes fast lines written at once (the live alerts see the largest working set
        of each :data:`MONITOR_PERIOD_S` of it: no spike skipped), then a full sample if one
        came due."""
        with self._lock:
            self._guarded_sample()  # the first sample is a full one
        tick = ticker.Ticker(fds, self.sample_interval, self._wake_r, reader.move_bytes)
        for batch in tick.batches():
            with self._lock:
                self._ticked_batch(reader, batch)
        self._ticker_error = tick.error

    def _ticked_batch(self, reader: CgroupReader, batch: list[tuple[int, ...]]) -> None:
        """One batch of ticks: its fast lines, the live alerts, a full sample if due."""
        line, t0 = _FAST_LINE.format, self._t0
        wall_offset = time.time() - time.monotonic()
        samples, full_due = reader.from_ticks(batch)
        if samples:
            self._write_line("".join([
                line(round(t - t0, 4), round(t + wall_offset, 3), _json(usage), _json(ws),
                     _json(pids), _json(peak))
                for t, usage, ws, pids, peak in samples]).encode())
            self.sample_count += len(samples)
            t, usage, ws, pids, peak = samples[-1]
            self._fresh = {"t": round(t - t0, 4), "wall": round(t + wall_offset, 3),
                           "memory_current": usage, "working_set": ws,
                           "pids_current": pids, "peak": peak, "tier": "fast"}
            for t, ws in _peaks(samples, MONITOR_PERIOD_S):
                self._check_alerts(round(t - t0, 4), t + wall_offset, ws)
        if full_due and not self._stopping:
            self._reader.next_full()
            self._guarded_sample()

    def _guarded_sample(self) -> None:
        try:
            self.sample()
        except Exception:  # a sampler must never take the run down
            self.error_count += 1
            if self.error_count == 1:
                log.exception("sampling failed (further failures counted, not logged)")

    def sample(self, settle: int | None = None) -> dict[str, Any]:
        """Take one sample now: read, append its line to samples.jsonl, check alerts. A fast
        sample of the cgroup reader is written short (its fields only: the readers carry the
        rest forward from the last full sample). ``settle``: the settle point it measures."""
        mono, wall = time.monotonic(), time.time()
        values, pids = self._reader.read()
        if values.get("tier") == "fast" and self._last is not None:
            self._write_line(self._fast_line(mono, wall, values))
            return values
        fds = values.pop("file_descriptors", None)
        uss, pss = values.pop("uss", None), values.pop("pss", None)
        tier = values.pop("tier", "full")
        if mono - self._tmp_scanned >= TMP_SCAN_PERIOD_S:
            self._tmp = self._tmp_usage()
            self._tmp_scanned = mono
        psutil_mode = self._reader.source == "psutil"
        record = {"t": round(mono - self._t0, 4), "wall": round(wall, 3),
                  "source": self._reader.source, **values,
                  "tmp_bytes": self._tmp[0], "tmp_files": self._tmp[1],
                  "uss": uss, "pss": pss, "tier": tier,
                  "caveat": CAVEAT if psutil_mode else None, "settle": settle}
        self._append((json.dumps(record) + "\n").encode())
        self.sample_count += 1
        self._last = (record, pids, fds, self._cpu_percent(mono, record["cpu_usage_usec"]))
        self._monitored = mono
        self._check_alerts(record["t"], wall, record["working_set"])
        return record

    def _fast_line(self, mono: float, wall: float, values: dict[str, Any]) -> bytes:
        """The cheap path of a high sampling rate: a preformatted line, and the live alerts
        fed at most :data:`MONITOR_PERIOD_S` apart (their windows are 30 s)."""
        t = round(mono - self._t0, 4)
        values["t"], values["wall"] = t, round(wall, 3)
        line = _FAST_LINE.format(t, values["wall"], *(
            _json(values[k]) for k in _FAST_KEYS)).encode()
        self.sample_count += 1
        self._fresh = values
        if mono - self._monitored >= MONITOR_PERIOD_S:
            self._monitored = mono
            self._check_alerts(t, wall, values["working_set"])
        return line

    def _write_line(self, line: bytes) -> None:
        """Write fast lines at once (kept in order behind any the disk refused)."""
        if self._unwritten:
            self._append(line)
            return
        try:
            os.write(self._out, line)
        except OSError:
            self._append(line)  # kept until the disk takes it

    def _check_alerts(self, t: float, wall: float, working_set: int | None) -> None:
        for alert in self._monitor.update(t, wall, working_set):
            self._alerts.append(alert)
            with open(self._alerts_path, "a", encoding="utf-8", opener=private_opener) as f:
                f.write(json.dumps(alert.to_record()) + "\n")

    def _append(self, line: bytes) -> None:
        """Write the line (and any the disk refused before); keep it if the disk refuses it
        too: no sample already taken is lost while the run ends."""
        self._unwritten.append(line)
        self._flush()

    def _flush(self) -> None:
        try:
            while self._unwritten:
                os.write(self._out, self._unwritten[0])
                self._unwritten.pop(0)
            self.write_error = None
        except OSError as exc:
            self.write_error = f"cannot write samples.jsonl: {exc.strerror or exc}"
            del self._unwritten[:-MAX_UNWRITTEN]

    def _cpu_percent(self, mono: float, usage_usec: int | None) -> float | None:
        """Share of one core used by the slice since the previous sample."""
        if usage_usec is None:
            return None
        prev, self._prev_cpu = self._prev_cpu, (mono, usage_usec)
        if prev is None or mono <= prev[0]:
            return 0.0
        return round(max(usage_usec - prev[1], 0) / 1e6 / (mono - prev[0]) * 100, 2)
