"""Deep and changing trees cannot crash the harness or make it leave its tree: the walker
(host.safefs) on real directories, a run whose workload leaves 5000-level trees in its private
/tmp and in the host's /var/tmp, its clean twin, ``sandbox cleanup`` of a dead harness's deep
tree, and corrupt UID locks and slice records."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host import safefs
from sandbox.host.isolation import LOCK_GRACE_S, allocate_user, release_user
from sandbox.host.registry import SliceRecord, state_dir

from .cli_helpers import only_run_dir, sandbox

DEPTH = 5000
MAKE_TREE = """
import os, sys
for root in sys.argv[1:]:
    fd = os.open(root, os.O_RDONLY)
    for _ in range({depth}):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
"""
# The clean twin: the same tree, removed by the workload itself (deepest first).
REMOVE_TREE = """
import os, sys
for root in sys.argv[1:]:
    os.chdir(root)
    for _ in range({depth}):
        os.chdir("d")
    for _ in range({depth}):
        os.chdir("..")
        os.rmdir("d")
    os.rmdir(root)
"""


def make_tree(parent: Path, name: str, depth: int, uid: int = -1) -> None:
    """``parent/name/d/d/...``: ``depth`` directories (owned by ``uid``) and a file in the
    deepest, made through fds (no path is that long)."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(depth):
        os.mkdir(name if i == 0 else "d", dir_fd=fd)
        nxt = os.open(name if i == 0 else "d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.fchown(nxt, uid, uid)
        os.close(fd)
        fd = nxt
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)


@contextlib.contextmanager
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory whose content is removed with safefs at the end (pytest's own cleanup of
    tmp_path recurses)."""
    path = tmp_path / "t"
    path.mkdir()
    try:
        yield path
    finally:
        with safefs.open_dir(tmp_path) as fd:
            safefs.remove(fd, "t")


def test_walker_lists_and_removes_a_5000_level_tree_with_few_fds(tmp_path):
    with scratch(tmp_path) as root:
        make_tree(root, "deep", DEPTH)
        (root / "file").write_bytes(b"12345")
        opened = []

        def fds() -> int:
            return len(os.listdir("/proc/self/fd"))

        with safefs.open_dir(root) as fd:
            base = fds()
            for _node in safefs.walk(fd, "deep"):
                opened.append(fds() - base)
            t0 = time.perf_counter()
            listed = safefs.entries(fd)
            t_list = time.perf_counter() - t0
            assert [(e.name, e.is_dir, e.depth, e.files, e.size) for e in listed] == \
                [("deep", True, DEPTH, 1, 0), ("file", False, 0, 1, 5)]
            t0 = time.perf_counter()
            safefs.remove(fd, "deep")
            t_remove = time.perf_counter() - t0
        assert max(opened) <= safefs.MAX_OPEN
        assert sorted(os.listdir(root)) == ["file"]
        print(f"{DEPTH}-level tree: listed in {t_list:.2f} s, removed in {t_remove:.2f} s")
        assert t_list < 10 and t_remove < 30


def test_walker_never_follows_a_symlink_or_a_loop(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    with scratch(tmp_path) as root:
        tree = root / "tree"
        (tree / "a").mkdir(parents=True)
        (tree / "a" / "up").symlink_to("..")
        (tree / "a" / "self").symlink_to("self")
        (tree / "a" / "out").symlink_to(outside)
        with safefs.open_dir(root) as fd:
            assert safefs.measure(fd, "tree")[1:] == (0, 2)  # links are not regular files
            safefs.remove(fd, "tree")
        assert os.listdir(root) == []
    assert (outside / "precious").read_text() == "keep me"


def test_a_directory_swapped_for_a_symlink_mid_walk_stops_the_walk(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    with scratch(tmp_path) as root:
        (root / "tree" / "x" / "y").mkdir(parents=True)
        with safefs.open_dir(root) as fd, pytest.raises(safefs.TreeChanged):
            for node in safefs.walk(fd, "tree"):
                if node.name == "x" and not node.done:
                    (root / "tree" / "x").rename(root / "tree" / "moved")
                    (root / "tree" / "x").symlink_to(outside)
        assert (outside / "precious").read_text() == "keep me"


def test_a_tree_moved_under_the_walk_is_not_left_through_dotdot(tmp_path):
    """Deep below, an ancestor whose fd the walk had closed is moved elsewhere: going up
    through ``..`` finds a directory it did not come down through and stops."""
    with scratch(tmp_path) as root:
        make_tree(root, "tree", 40)
        (root / "elsewhere").mkdir()
        with safefs.open_dir(root) as fd, pytest.raises(safefs.TreeChanged):
            for node in safefs.walk(fd, "tree", max_open=4):  # removing, as safefs.remove
                if node.name == "f":
                    (root / "tree" / "d" / "d").rename(root / "elsewhere" / "d")
                    os.unlink(node.name, dir_fd=node.parent_fd)
                elif node.done:
                    os.rmdir(node.name, dir_fd=node.parent_fd)
        # Emptied up to the moved directory, which stays; nothing above it was touched.
        assert os.listdir(root / "elsewhere" / "d") == []
        assert os.listdir(root / "tree" / "d") == []


RUN = ("run", "--duration", "60s", "--no-progress", "-q", "--grace", "1s")


def host_tree_path() -> Path:
    return Path("/var/tmp") / f"sandbox-deep-{os.getpid()}-{time.monotonic_ns()}"


def test_a_run_leaving_5000_level_trees_completes_and_removes_them(needs_cgroups, runs_dir):
    host = host_tree_path()
    script = f"mkdir /tmp/deep {host}; exec python3 -c '{MAKE_TREE.format(depth=DEPTH)}' " \
             f"/tmp/deep {host}"
    out = sandbox(*RUN, "--runs-dir", str(runs_dir), "--", "sh", "-c", script)
    assert out.returncode == 2, out.stderr
    run_dir = only_run_dir(runs_dir)
    cleanup = json.loads((run_dir / "cleanup.json").read_text())
    left = {f["path"]: f for f in cleanup["file_cleanup"]["leftover_files"]}
    assert {p: (f["where"], f["depth"]) for p, f in left.items()} == {
        "/tmp/deep": ("private /tmp", DEPTH + 1), str(host): ("host /var/tmp", DEPTH + 1)}
    assert not host.exists()
    assert cleanup["after_teardown"]["clean"], cleanup["after_teardown"]
    assert f"/tmp/deep (a tree {DEPTH + 1} levels deep)" in " ".join(cleanup["issues_found"])
    report = (run_dir / "report.txt").read_text()
    assert f"a tree {DEPTH + 1} levels deep" in report
    uid = json.loads((run_dir / "run.json").read_text())["user"]["uid"]
    assert not (state_dir() / "users" / f"{uid}.json").exists()


def test_clean_twin_removing_its_own_deep_trees_passes(needs_cgroups, runs_dir):
    host = host_tree_path()
    script = (f"mkdir /tmp/deep {host}; python3 -c '{MAKE_TREE.format(depth=DEPTH)}' "
              f"/tmp/deep {host} && exec python3 -c '{REMOVE_TREE.format(depth=DEPTH)}' "
              f"/tmp/deep {host}")
    out = sandbox(*RUN, "--runs-dir", str(runs_dir), "--", "sh", "-c", script)
    assert out.returncode == 0, out.stderr + out.stdout
    cleanup = json.loads((only_run_dir(runs_dir) / "cleanup.json").read_text())
    assert cleanup["file_cleanup"]["leftover_files"] == []
    assert not host.exists()


def test_sandbox_cleanup_removes_a_dead_harness_deep_tree_and_survives_corrupt_state():
    """A harness died leaving its UID's 5000-level tree in /var/tmp, and the state directory
    holds an empty lock, a lock holding ``[1,2]`` and a corrupt slice record: ``sandbox
    cleanup`` removes the tree, gives every UID back and does not fail."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    users = [allocate_user(f"t-deep-{i}") for i in range(3)]
    owner, empty, listed = (u.uid for u in users)
    host = host_tree_path()
    locks = state_dir() / "users"
    record = SliceRecord(name=f"sandbox-t-deep-{os.getpid()}", harness_pid=dead.pid,
                         harness_start=1.0, mode="none", marker=f"t-deep-{os.getpid()}",
                         uid=owner)
    corrupt = state_dir() / "sandbox-t-corrupt.json"
    try:
        make_tree(host.parent, host.name, DEPTH, uid=owner)
        assert not release_user(users[0])  # its files are still there
        record.save()
        (locks / f"{owner}.json").write_text(json.dumps({"harness_pid": dead.pid,
                                                          "harness_start": 1.0}))
        (locks / f"{empty}.json").write_text("")
        old = time.time() - LOCK_GRACE_S - 1
        os.utime(locks / f"{empty}.json", (old, old))
        (locks / f"{listed}.json").write_text("[1,2]")
        os.utime(locks / f"{listed}.json", (old, old))
        corrupt.write_text(json.dumps({"name": 5, "harness_pid": "x", "harness_start": 1,
                                       "mode": "none", "marker": "m"}))
        out = sandbox("cleanup")
        assert out.returncode == 0, out.stderr
        assert not host.exists()
        assert not any((locks / f"{u.uid}.json").exists() for u in users)
        assert not record.path.exists()
    finally:
        corrupt.unlink(missing_ok=True)
        record.delete()
        if host.exists():
            with safefs.open_dir(host.parent) as fd:
                safefs.remove(fd, host.name)
        for user in users:
            release_user(user)


def test_leftover_depth_is_optional_and_names_deep_trees():
    """cleanup.json written before ``depth`` still loads; a deep tree is named with it."""
    from sandbox.model.cleanup import LeftoverFile

    old = LeftoverFile.from_record({"path": "/tmp/x", "is_dir": True})
    assert old is not None and old.depth is None and old.described == "/tmp/x"
    deep = LeftoverFile.from_record({"path": "/tmp/d", "is_dir": True, "depth": 5001})
    assert deep is not None and deep.described == "/tmp/d (a tree 5001 levels deep)"
    assert LeftoverFile.from_record(deep.to_record()) == deep
    assert LeftoverFile(path="/tmp/s", depth=3).described == "/tmp/s"
