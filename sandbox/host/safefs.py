"""File operations that never follow a path the workload controls, at any depth.

Root walks, sizes and deletes inside directories a hostile workload can write to (its private
/tmp, its HOME, the host's /tmp). Every operation starts from a directory file descriptor the
harness opened itself and goes down one name at a time with ``O_NOFOLLOW``: a symlink or a
renamed directory swapped in by the workload is never resolved. The walk keeps an explicit stack
(no recursion: a tree 5000 levels deep is fine) and holds at most :data:`MAX_OPEN` directory
fds; it goes back up through ``..`` reopened from the child and checked against the
(st_dev, st_ino) recorded on the way down. A mismatch means the tree was moved under the walk:
it stops with :class:`TreeChanged` and never leaves the directory it started from.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Directory fds a walk holds open at most (besides the caller's).
MAX_OPEN = 32


class TreeChanged(OSError):
    """A directory was replaced or moved while it was walked: the walk stopped there."""


@dataclass(frozen=True)
class Entry:
    """One top-level entry of a directory: its name, owner, size of everything under it (bytes,
    symlinks not followed), files under it, mtime/ctime, and ``depth``: levels of directories
    (0 for a file, 1 for a directory holding no directory)."""

    name: str
    uid: int
    is_dir: bool
    size: int
    files: int
    mtime: float
    ctime: float
    depth: int = 0


@dataclass(frozen=True)
class Node:
    """One entry met by :func:`walk`. ``parent_fd`` (the directory holding ``name``) is valid
    until the next step. ``depth``: 1 for the walk's start. A directory is met twice: on the way
    down and, with ``done``, once everything under it was met."""

    parent_fd: int
    name: str
    st: os.stat_result
    depth: int
    done: bool = False


@dataclass
class _Frame:
    """A directory the walk is in: its stat, its fd (None while closed), names not met yet."""

    name: str
    st: os.stat_result
    fd: int | None
    names: list[str]


@contextlib.contextmanager
def open_dir(path: str | os.PathLike[str], dir_fd: int | None = None) -> Iterator[int]:
    """A directory fd for ``path`` (relative to ``dir_fd`` if given); the LAST component must
    not be a symlink. Use for paths the harness itself made or trusts up to that component."""
    fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _same(fd: int, st: os.stat_result) -> bool:
    fst = os.fstat(fd)
    return (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino)


def _enter(parent_fd: int, name: str, st: os.stat_result) -> int | None:
    """An fd of the directory ``name`` that is the one ``st`` saw (None: gone meanwhile)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise TreeChanged(exc.errno, "replaced while walked", name) from exc
        raise
    if not _same(fd, st):
        os.close(fd)
        raise TreeChanged(errno.ESTALE, "replaced while walked", name)
    return fd


def _up(parent: _Frame, child_fd: int) -> int:
    """The parent's fd, reopened as the child's ``..`` if it was closed, and checked."""
    if parent.fd is None:
        fd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
        if not _same(fd, parent.st):
            os.close(fd)
            raise TreeChanged(errno.ESTALE, "moved while walked", parent.name)
        parent.fd = fd
    return parent.fd


def walk(dir_fd: int, name: str, max_open: int = MAX_OPEN) -> Iterator[Node]:
    """Every entry under ``name`` of ``dir_fd`` (``name`` itself first), depth first, without
    recursion and never following a symlink. Entries that vanish are skipped; a directory
    replaced or moved meanwhile raises :class:`TreeChanged`."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    yield Node(dir_fd, name, st, 1)
    if not stat.S_ISDIR(st.st_mode):
        return
    stack: list[_Frame] = []
    try:
        fd = _enter(dir_fd, name, st)
        if fd is None:
            return
        stack.append(_Frame(name, st, fd, []))
        stack[-1].names = os.listdir(fd)
        while stack:
            top = stack[-1]
            assert top.fd is not None  # the deepest frame is always open
            if top.names:
                child = top.names.pop()
                try:
                    cst = os.stat(child, dir_fd=top.fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield Node(top.fd, child, cst, len(stack) + 1)
                if not stat.S_ISDIR(cst.st_mode) or (fd := _enter(top.fd, child, cst)) is None:
                    continue
                stack.append(_Frame(child, cst, fd, []))
                stack[-1].names = os.listdir(fd)
                if len(stack) > max_open and (far := stack[-max_open - 1]).fd is not None:
                    os.close(far.fd)
                    far.fd = None
                continue
            parent_fd = _up(stack[-2], top.fd) if len(stack) > 1 else dir_fd
            stack.pop()
            os.close(top.fd)
            top.fd = None
            yield Node(parent_fd, top.name, top.st, len(stack) + 1, done=True)
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)


def measure(dir_fd: int, name: str = ".") -> tuple[int, int, int]:
    """(bytes, regular files, depth in directories) under ``name`` relative to ``dir_fd``,
    symlinks not followed; what was counted so far if the tree changes under the walk."""
    total = count = depth = 0
    with contextlib.suppress(OSError):
        for node in walk(dir_fd, name):
            if stat.S_ISDIR(node.st.st_mode):
                depth = max(depth, node.depth)
            else:
                total += node.st.st_size
                count += stat.S_ISREG(node.st.st_mode)
    return total, count, depth


def usage(dir_fd: int, name: str = ".") -> tuple[int, int]:
    """(bytes, regular files) under ``name`` relative to ``dir_fd``, symlinks not followed."""
    return measure(dir_fd, name)[:2]


def entries(dir_fd: int, owner: int | None = None) -> list[Entry]:
    """The top-level entries of the directory ``dir_fd`` (only those ``owner`` owns, if
    given), each with its size and depth."""
    found = []
    for name in sorted(os.listdir(dir_fd)):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        if owner is not None and st.st_uid != owner:
            continue
        size, files, depth = measure(dir_fd, name)
        found.append(Entry(name, st.st_uid, stat.S_ISDIR(st.st_mode), size, files,
                           st.st_mtime, st.st_ctime, depth))
    return found


def remove(dir_fd: int, name: str) -> None:
    """Delete the entry ``name`` of ``dir_fd`` (a whole tree for a directory), never following
    a symlink; gone already is fine. :class:`TreeChanged` (an OSError): not all removed."""
    for node in walk(dir_fd, name):
        with contextlib.suppress(FileNotFoundError):
            if node.done:
                os.rmdir(node.name, dir_fd=node.parent_fd)
            elif not stat.S_ISDIR(node.st.st_mode):
                os.unlink(node.name, dir_fd=node.parent_fd)
