"""Private IPC, /run/lock and user namespaces against a hostile workload, through `sandbox run`
on real cgroups: a SysV segment (re-owned to another run's UID), a POSIX message queue and a
/run/lock file are the leaky run's own leftovers and are gone after it, the other run (the clean
twin) is not blamed; `unshare -Ur` is refused unless --allow-userns."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from sandbox.host.userns import build

from .cli_helpers import only_run_dir, report_of, sandbox, start_sandbox

KEY = 0x5A17C0DE
#: The hostile workload: a SysV segment re-owned to the UID given as argument, a POSIX message
#: queue, a lock file in the host's /run/lock, an attempt at a user namespace; then it waits.
LEAK = f"""
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget({KEY}, 4096, 0o1600)
ds = ctypes.create_string_buffer(512)
assert shmid >= 0 and libc.shmctl(shmid, 2, ds) == 0  # IPC_STAT
ctypes.c_uint32.from_buffer(ds, 4).value = int(sys.argv[1])  # ipc_perm.uid
print("reowned", libc.shmctl(shmid, 1, ds), flush=True)  # IPC_SET
rt = ctypes.CDLL("librt.so.1", use_errno=True)
print("mqueue", rt.mq_open(b"/sandbox-leak", os.O_CREAT | os.O_RDWR, 0o600, None), flush=True)
open("/run/lock/sandbox-leak-%d" % os.getpid(), "w").close()
r = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
print("userns", r.returncode, r.stderr.strip(), flush=True)
import time; time.sleep(float(sys.argv[2]))
"""


def _run_args(runs_dir: Path, duration: str, *cmd: str, opts: tuple[str, ...] = ()
              ) -> list[str]:
    return ["run", "--duration", duration, "--no-progress", "-q", "--grace", "1s",
            "--runs-dir", str(runs_dir), *opts, "--", *cmd]


def _run_json(runs_dir: Path, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(runs_dir.glob("*/run.json"))
        if found:
            with contextlib.suppress(ValueError):
                info = json.loads(found[0].read_text())
                if (info.get("private_tmp") or {}).get("ipc_namespace"):
                    return info
        time.sleep(0.1)
    raise AssertionError("the run did not record its IPC namespace")


def _ipc_namespaces() -> set[int]:
    inodes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/proc/{pid}/ns/ipc").st_ino)
    return inodes


def test_ipc_and_lock_leftovers_are_the_runs_own_and_go(needs_cgroups, runs_dir):
    """Run A re-owns its segment to clean run B's UID while B verifies: B reports nothing, A
    reports the segment, its queue and its lock file; after A nothing of them is left."""
    leak_dir, clean_dir = runs_dir / "leak", runs_dir / "clean"
    clean = start_sandbox(*_run_args(clean_dir, "6s", "sleep", "30"))
    clean_uid = _run_json(clean_dir)["user"]["uid"]
    leak = start_sandbox(*_run_args(leak_dir, "8s", "python3", "-c", LEAK, str(clean_uid), "30"))
    leak_info = _run_json(leak_dir)
    out, err = clean.communicate(timeout=60)
    assert clean.returncode == 0, (out, err)
    assert report_of(clean_dir)["file_cleanup"]["leftover_files"] == []
    out, err = leak.communicate(timeout=60)
    assert leak.returncode == 2, (out, err)  # leftovers, nothing critical
    log = (only_run_dir(leak_dir) / "workload.log").read_text()
    assert "reowned 0" in log and "mqueue -1" not in log, log
    assert "userns 1" in log and "Operation not permitted" in log, log

    left = report_of(leak_dir)["file_cleanup"]["leftover_files"]
    by_kind = {(f["where"], f.get("kind")): f for f in left}
    assert set(by_kind) == {("private IPC", "shm"), ("private IPC", "mqueue"),
                            ("host /run/lock", None)}, left
    assert by_kind["private IPC", "shm"]["uid"] == clean_uid  # re-owned, still A's
    assert by_kind["private IPC", "shm"]["path"].endswith(f"key {KEY}")
    assert by_kind["private IPC", "mqueue"]["path"] == "mqueue /sandbox-leak"
    assert not Path(by_kind["host /run/lock", None]["path"]).exists()
    cleanup = json.loads((only_run_dir(leak_dir) / "cleanup.json").read_text())
    assert {f["where"] for f in cleanup["file_cleanup"]["leftover_files"]} == \
        {"private IPC", "host /run/lock"}
    assert cleanup["after_teardown"]["clean"]
    # The namespace is gone with its objects; none ever was in the host's.
    assert leak_info["private_tmp"]["ipc_namespace"] not in _ipc_namespaces()
    assert str(KEY) not in Path("/proc/sysvipc/shm").read_text()
    assert leak_info["private_tmp"]["user_namespaces"] == "refused"


def test_user_namespaces_with_allow_userns(needs_cgroups, runs_dir):
    """The same `unshare -Ur` works when the run allows it, and the clean run exits 0."""
    assert build() is not None  # this machine has a filter (x86_64 / aarch64)
    out = sandbox(*_run_args(runs_dir, "5s", "sh", "-c", "unshare -Ur true; echo userns=$?",
                             opts=("--allow-userns",)))
    run_dir = only_run_dir(runs_dir)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "userns=0" in (run_dir / "workload.log").read_text()
    assert json.loads((run_dir / "run.json").read_text())["private_tmp"]["user_namespaces"] \
        == "allowed"
