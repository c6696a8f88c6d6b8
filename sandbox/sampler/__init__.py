"""Memory sampling of a run's slice: cgroup files first, psutil when there is no cgroup."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sandbox.runreader import read_jsonl, samples_to_arrays
from sandbox.sampler.alerts import AlertMonitor
from sandbox.sampler.cgroup_reader import CgroupReader
from sandbox.sampler.profiler import MemoryProfiler, MemorySnapshot, reader_for
from sandbox.sampler.psutil_reader import ProcessTreeReader


def read_samples(path: str | Path) -> dict[str, np.ndarray]:
    """samples.jsonl as float arrays by field (NaN for null); a last line cut mid-write is
    dropped. Thin wrapper over ``sandbox.runreader`` so there is one reader."""
    return samples_to_arrays(read_jsonl(path))


__all__ = [
    "AlertMonitor",
    "CgroupReader",
    "MemoryProfiler",
    "MemorySnapshot",
    "ProcessTreeReader",
    "read_samples",
    "reader_for",
]
