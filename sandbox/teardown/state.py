"""The host's resources at one moment (:class:`ResourceState`): taken before a run and after
its teardown, so the report shows what changed."""

from __future__ import annotations

import fnmatch
import os
from datetime import UTC, datetime
from pathlib import Path

import psutil

from sandbox.model.cleanup import ResourceState
from sandbox.teardown.processes import is_browser


def _known_temp(tmp_dir: Path, patterns: tuple[str, ...]) -> list[Path]:
    try:
        entries = list(tmp_dir.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns))


def _fs_free(path: Path) -> dict[str, int] | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"free_bytes": st.f_bavail * st.f_frsize, "free_inodes": st.f_favail,
            "total_bytes": st.f_blocks * st.f_frsize, "total_inodes": st.f_files}


def capture_state(tmp_dir: Path, shm_dir: Path, patterns: tuple[str, ...]) -> ResourceState:
    """Processes (browsers among them), browser temp entries in ``tmp_dir`` matching
    ``patterns``, ``shm_dir``'s entries, the harness's fds, host memory and free space."""
    browsers, total = [], 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        total += 1
        if is_browser(proc.info["name"] or "", proc.info["cmdline"] or []):
            browsers.append(proc.pid)
    temps = _known_temp(tmp_dir, patterns)
    try:
        shm = sorted(str(p) for p in shm_dir.iterdir())
    except OSError:
        shm = []
    memory = psutil.virtual_memory()
    return ResourceState(
        timestamp=datetime.now(UTC),
        total_processes=total,
        browser_processes=sorted(browsers),
        temp_directories=[str(p) for p in temps if p.is_dir()],
        temp_files=[str(p) for p in temps if not p.is_dir()],
        open_file_descriptors=psutil.Process().num_fds(),
        system_memory_mb=round(memory.used / 2**20, 1),
        system_memory_percent=memory.percent,
        filesystems={str(tmp_dir): _fs_free(tmp_dir), str(shm_dir): _fs_free(shm_dir)},
        shm_entries=shm,
    )
