"""The sample record: what a sampler backend reads for one sample (``READING_FIELDS``, the
same for every backend: the cgroup v2 reader, the v1/hybrid reader and the psutil reader),
and the samples.jsonl line the profiler writes from it (``SAMPLE_FIELDS``). Declared once
here; docs/run-directory.md says what each field means."""

from __future__ import annotations

#: What every reader's full record holds, in this order; None where the backend cannot read
#: it. ``file_descriptors`` goes to MemorySnapshot only (per-role sweeps record fds);
#: ``tier`` says whether every field was read now (``full``) or only FAST_FIELDS (``fast``).
READING_FIELDS = (
    "memory_current", "anon", "file", "shmem", "inactive_file", "kernel", "working_set",
    "peak", "pids_current", "nprocs", "cpu_usage_usec", "oom", "oom_kill", "psi_some_avg10",
    "psi_full_avg10", "uss", "pss", "file_descriptors", "tier",
)

#: What a fast sample of the cgroup reader holds: the single-number files read every tick.
FAST_FIELDS = ("memory_current", "working_set", "pids_current", "peak", "tier")

#: samples.jsonl fields, in file order (docs/run-directory.md). ``settle``: the settle point's
#: number (1, 2, ...) on the sample taken at the workload's request, null on the others.
SAMPLE_FIELDS = (
    "t", "wall", "source",
    *(f for f in READING_FIELDS if f not in ("uss", "pss", "file_descriptors", "tier")),
    "tmp_bytes", "tmp_files", "uss", "pss", "tier", "caveat", "settle",
)
