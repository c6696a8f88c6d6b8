"""First choice: the bpftrace program lifecycle.bt (tracepoints sched_process_fork/exec/exit and
cgroup_attach_task), run as a subprocess, its JSON output converted to events."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from importlib import resources
from pathlib import Path

from sandbox.host.reaper import die_with_parent
from sandbox.tracer.base import Tracer, TracerError
from sandbox.tracer.target import SliceTarget, hierarchy_names

TRACEFS = Path("/sys/kernel/tracing")
#: Longer strings overflow the 512-byte BPF stack of the attach probe (measured at 200).
STRLEN = 128
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
#: bpftrace's own warning on kernels that account BPF memory to the cgroup (harmless).
_NOISE = ("RLIMIT_MEMLOCK",)


def program_path() -> Path:
    """The bpftrace program shipped as package data."""
    return Path(str(resources.files("sandbox.tracer") / "lifecycle.bt"))


def ensure_tracefs() -> str | None:
    """Mount tracefs at /sys/kernel/tracing if no tracefs is there (root only).
    Returns a note when it mounted it, raises TracerError when it cannot."""
    if (TRACEFS / "events" / "sched").is_dir():
        return None
    if os.geteuid() != 0:
        raise TracerError("tracefs is not mounted and mounting it needs root")
    result = subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TracerError(f"cannot mount tracefs at {TRACEFS}: {result.stderr.strip()}")
    return f"mounted tracefs at {TRACEFS} (left mounted)"


class EbpfTracer(Tracer):
    """bpftrace on the slice's cgroup id; a followed process stays followed when it moves."""

    backend = "ebpf"
    limitations = (
        "threads are not reported, only processes",
        "events are lost if bpftrace's perf buffer overflows (counted in lost_events)",
    )

    def __init__(self, target: SliceTarget, out_path: Path, t0: float | None = None,
                 bpftrace: str = "bpftrace") -> None:
        super().__init__(target, out_path, t0)
        self.bpftrace = bpftrace
        self.proc: subprocess.Popen | None = None
        self.lost_events = 0
        self.malformed = 0
        self._ready = threading.Event()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._threads: list[threading.Thread] = []
        self._hierarchies = hierarchy_names()

    def _start(self) -> None:
        if os.geteuid() != 0:
            raise TracerError("the eBPF tracer needs root")
        if note := ensure_tracefs():
            self.notes.append(note)
        t = self.target
        argv = [self.bpftrace, "-f", "json", str(program_path()),
                str(t.v2_cgroup_id), str(t.hierarchy_id), str(t.cgroup_id)]
        env = {**os.environ, "BPFTRACE_STRLEN": str(STRLEN)}
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True, preexec_fn=die_with_parent)
        except OSError as exc:
            raise TracerError(f"cannot start {self.bpftrace}: {exc.strerror}") from exc
        for target in (self._read_stdout, self._read_stderr):
            thread = threading.Thread(target=target, name=f"tracer-{target.__name__}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or not self._threads[0].is_alive():
                self._threads[1].join(1.0)
                raise TracerError(f"bpftrace failed: {self._last_error()}")
            if self._waited() > READY_TIMEOUT_S:
                self._stop()
                raise TracerError(f"bpftrace did not attach its probes in {READY_TIMEOUT_S} s")

    def _waited(self) -> float:
        return time.monotonic() - self._clock[0]

    def _last_error(self) -> str:
        lines = [line for line in self._stderr if not any(n in line for n in _NOISE)]
        return lines[-1] if lines else f"exit code {self.proc.returncode if self.proc else '?'}"

    def _stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT_S)

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").strip())

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            # comm, file names and cgroup paths are the workload's bytes: undecodable ones and
            # control characters must not stop the reader (a stopped reader follows nothing).
            try:
                record = json.loads(raw.decode(errors="replace"), strict=False)
                kind = record.get("type")
                if kind == "printf":
                    self._handle(record["data"])
                elif kind == "lost_events":
                    self.lost_events += int(record["data"].get("events", 0))
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                self.malformed += 1

    def _handle(self, line: str) -> None:
        fields = line.rstrip("\n").split("\t")
        kind, mono = fields[0], int(fields[1]) / 1e9
        if kind == "ready":
            self._ready.set()
        elif kind in ("fork", "exit"):
            self.emit(kind, int(fields[2]), int(fields[3]), "\t".join(fields[4:]), mono=mono)
        elif kind == "exec":
            self.emit(kind, int(fields[2]), int(fields[3]), fields[4], mono=mono,
                      filename="\t".join(fields[5:]))
        elif kind == "attach":
            pid, root = int(fields[2]), int(fields[3])
            self.emit(kind, pid, None, fields[5], cgroup="\t".join(fields[6:]), mono=mono,
                      hierarchy=self._hierarchies.get(root, str(root)))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "lost_events": self.lost_events,
                "malformed_lines": self.malformed}
