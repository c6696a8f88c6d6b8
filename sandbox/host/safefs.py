"""File operations that never follow a path the workload controls.

Root walks, sizes and deletes inside directories a hostile workload can write to (its private
/tmp, its HOME, the host's /tmp). Every operation starts from a directory file descriptor the
harness opened itself and goes down one name at a time with ``O_NOFOLLOW``: a symlink or a
renamed directory swapped in by the workload is never resolved (``os.fwalk`` and
``shutil.rmtree`` with ``dir_fd`` work that way: ``rmtree.avoids_symlink_attacks``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Entry:
    """One top-level entry of a directory: its name, owner, size of everything under it (bytes,
    symlinks not followed), files under it, and mtime/ctime."""

    name: str
    uid: int
    is_dir: bool
    size: int
    files: int
    mtime: float
    ctime: float


@contextlib.contextmanager
def open_dir(path: str | os.PathLike[str], dir_fd: int | None = None) -> Iterator[int]:
    """A directory fd for ``path`` (relative to ``dir_fd`` if given); the LAST component must
    not be a symlink. Use for paths the harness itself made or trusts up to that component."""
    fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def usage(dir_fd: int, name: str = ".") -> tuple[int, int]:
    """(bytes, regular files) under ``name`` relative to ``dir_fd``, symlinks not followed."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size, int(stat.S_ISREG(st.st_mode))
    total = count = 0
    for _root, _dirs, files, root_fd in os.fwalk(name, dir_fd=dir_fd):
        for file in files:
            with contextlib.suppress(OSError):
                fst = os.stat(file, dir_fd=root_fd, follow_symlinks=False)
                total += fst.st_size
                count += stat.S_ISREG(fst.st_mode)
    return total, count


def entries(dir_fd: int, owner: int | None = None) -> list[Entry]:
    """The top-level entries of the directory ``dir_fd`` (only those ``owner`` owns, if
    given), each with its size."""
    found = []
    with os.scandir(dir_fd) as scan:
        names = sorted(e.name for e in scan)
    for name in names:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        if owner is not None and st.st_uid != owner:
            continue
        size, files = usage(dir_fd, name)
        found.append(Entry(name, st.st_uid, stat.S_ISDIR(st.st_mode), size, files,
                           st.st_mtime, st.st_ctime))
    return found


def remove(dir_fd: int, name: str) -> None:
    """Delete the entry ``name`` of ``dir_fd`` (a whole tree for a directory), never following
    a symlink; gone already is fine."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
