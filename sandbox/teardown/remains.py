"""After teardown: whether anything of the run remains anywhere (processes carrying its
marker, escapes, cgroup directories, files), for cleanup.json's ``after_teardown``."""

from __future__ import annotations

from typing import Any

from sandbox.host.isolation import PrivateFs, RunUser
from sandbox.host.ownership import Runs
from sandbox.host.procid import ProcessId, is_alive, is_same
from sandbox.host.slice import Slice, marked_pids
from sandbox.teardown.files import leftover_files


def after_teardown(slice_: Slice, escapes: list[ProcessId], survivors: set[int],
                   user: RunUser | None, private_fs: PrivateFs | None, runs: Runs, *,
                   files_removed: bool, escapes_kept: bool) -> dict[str, Any]:
    """What remains of the run (a process carrying the run's marker that the kernel puts in
    another run is not the run's); ``clean`` when nothing does. Files count only when they
    were to be removed, escapes only when they were not kept alive on purpose."""
    marked = sorted(p for p in marked_pids(slice_.run_id)
                    if is_alive(p) and runs.foreign(p, slice_.run_id) is None)
    escaped = sorted(i.pid for i in escapes if is_alive(i.pid) and is_same(i))
    left: list[str] = []
    if files_removed and user is not None and user.exact:
        host, _ = leftover_files(None, 0.0, user, None)
        left = sorted(f.path for f in host)
    if files_removed and private_fs is not None and private_fs.mounted:
        left.append(str(private_fs.root))
    after: dict[str, Any] = {
        "slice_survivors": sorted(survivors), "marked_alive": marked,
        "escapes_alive": [] if escapes_kept else escaped,
        "cgroup_dirs_left": [str(d) for d in slice_.cgroup_dirs()], "files_left": left}
    after["clean"] = not any(after.values())
    after["escapes_kept"] = escaped if escapes_kept else []
    return after
