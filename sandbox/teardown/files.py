"""Finding the files a run left: its private /tmp, /dev/shm and IPC, the run directory's tmp
and home without private mounts, and what the run's user owns in the host's shared
directories. Every walk is by directory fd (sandbox.host.safefs)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from sandbox.host import safefs
from sandbox.host.isolation import HOME_SEEN_AS, HOST_SHARED_DIRS, PrivateFs, RunUser, sysv_ipc
from sandbox.model.cleanup import LeftoverFile


def _entry(entry: safefs.Entry, path: str, where: str, now: float) -> LeftoverFile:
    return LeftoverFile(path=path, where=where, size=entry.size, files=entry.files,
                        age_s=round(now - min(entry.mtime, entry.ctime), 3),
                        is_dir=entry.is_dir, uid=entry.uid, depth=entry.depth)


def leftover_files(run_dir: Path | None, started: float, user: RunUser | None,
                   private_fs: PrivateFs | None
                   ) -> tuple[list[LeftoverFile], list[LeftoverFile]]:
    """Leftovers: what is in the private /tmp and /dev/shm (the run's own), and what the
    run's user owns in the host's /tmp, /var/tmp, /dev/shm and SysV IPC. The private
    HOME's contents are listed apart (caches). Each says where it was."""
    now = time.time()
    leftovers: list[LeftoverFile] = []
    home: list[LeftoverFile] = []
    if private_fs is not None:
        for seen_as, found in private_fs.leftovers().items():
            leftovers += [_entry(e, f"{seen_as}/{e.name}", f"private {seen_as}", now)
                          for e in found]
        leftovers += private_fs.ipc_leftovers()  # the run's own IPC namespace
        home = [_entry(e, f"{HOME_SEEN_AS}/{e.name}", "private HOME", now)
                for e in private_fs.home_entries()]
    elif run_dir is not None:  # without private mounts, TMPDIR and HOME are in the run dir
        for sub, into in (("tmp", leftovers), ("home", home)):
            with contextlib.suppress(OSError), safefs.open_dir(run_dir) as run_fd, \
                    safefs.open_dir(sub, dir_fd=run_fd) as sub_fd:
                into += [_entry(e, str(Path(run_dir) / sub / e.name), f"run {sub}", now)
                         for e in safefs.entries(sub_fd)]
    if user is None or user.uid == 0:
        return leftovers, home
    for directory in HOST_SHARED_DIRS:
        with contextlib.suppress(OSError), safefs.open_dir(directory) as dir_fd:
            for e in safefs.entries(dir_fd, owner=user.uid):
                # A shared --user: only what it made during the run (owner and time).
                if user.exact or min(e.mtime, e.ctime) >= started - 1:
                    leftovers.append(_entry(e, str(directory / e.name), f"host {directory}",
                                            now))
    if user.exact and private_fs is None:  # with private IPC, the host's is not the run's
        leftovers += sysv_ipc(user.uid)
    return leftovers, home
