"""A private IPC namespace per run: the SysV shared memory, semaphores and message queues and
the POSIX message queues the workload makes exist in its namespace alone, so no other run sees,
re-owns or is blamed for them, and they go with the namespace.

The harness makes the namespace before the workload starts (a short helper,
``python -m sandbox.host.ipcns hold``, unshares it and waits while the harness opens its
``/proc/<pid>/ns/ipc``) and holds it by that file descriptor; the workload's child
``setns()``es into it before exec. At teardown, once no process of the run is left, a second
helper (``list FD``) enters it and lists what is left: /proc/sysvipc, and the POSIX queues through
an mqueue filesystem it mounts in a mount namespace of its own. Closing the descriptor then
destroys the namespace with everything in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sandbox.errors import HarnessError
from sandbox.host.libc import check, libc
from sandbox.model.cleanup import LeftoverFile

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
SYSV_KINDS = ("shm", "msg", "sem")  # /proc/sysvipc/<kind>
WHERE = "private IPC"
#: Where the listing helper mounts its mqueue filesystem, in its own mount namespace only.
_MQUEUE_AT = "/tmp"
_HELPER_TIMEOUT_S = 20.0


class IpcError(HarnessError):
    """The IPC namespace could not be made or read (a harness error, exit code 3)."""


def sysv_rows() -> list[tuple[str, dict[str, str]]]:
    """Every SysV object of the calling process's IPC namespace: (kind, /proc/sysvipc row)."""
    rows = []
    for kind in SYSV_KINDS:
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        rows += [(kind, dict(zip(header, line.split(), strict=False))) for line in lines[1:]]
    return rows


def sysv_leftover(kind: str, row: dict[str, str], where: str, now: float) -> LeftoverFile:
    """One /proc/sysvipc row as a leftover (by id: SysV objects have no path)."""
    ipc_id = row.get("shmid") or row.get("msqid") or row.get("semid") or "-1"
    return LeftoverFile(
        path=f"sysv {kind} id {ipc_id} key {row.get('key')}", where=where, kind=kind,
        id=int(ipc_id), size=int(row.get("size") or row.get("cbytes") or 0),
        uid=int(row.get("uid", -1)), age_s=round(now - int(row.get("ctime", 0)), 3))


def _helper(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandbox.host.ipcns", *args]


def _helper_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the package
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}


class IpcNamespace:
    """One run's IPC namespace, held by a file descriptor of the harness."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.inode: int | None = None
        self.notes: list[str] = []  # what the listing could not check

    def create(self) -> IpcNamespace:
        """Make the namespace (through the ``hold`` helper) and open it."""
        helper = subprocess.Popen(_helper("hold"), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=_helper_env())
        try:
            ready = helper.stdout.readline().strip() if helper.stdout else b""
            if ready == b"ready":
                self.fd = os.open(f"/proc/{helper.pid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
                self.inode = os.fstat(self.fd).st_ino
        finally:
            if helper.stdin:
                helper.stdin.close()  # the helper exits: the fd alone holds the namespace
            try:
                helper.wait(timeout=_HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                helper.kill()  # by the pid of the process started here
                helper.wait()
            err = helper.stderr.read() if helper.stderr else b""
            for stream in (helper.stdout, helper.stderr):
                if stream:
                    stream.close()
        if self.fd is None:
            raise IpcError(f"cannot make the run's IPC namespace: "
                           f"{err.decode(errors='replace').strip() or 'helper failed'}")
        return self

    def enter(self) -> None:
        """In the workload's child, before exec (as root): join the namespace."""
        if self.fd is None:
            raise OSError(0, "no IPC namespace to enter")
        check(libc.setns(self.fd, CLONE_NEWIPC), "setns(CLONE_NEWIPC)")

    def leftovers(self) -> list[LeftoverFile]:
        """What is in the namespace (where ``private IPC``); notes what could not be checked."""
        if self.fd is None:
            return []
        try:
            out = subprocess.run(_helper("list", str(self.fd)), pass_fds=(self.fd,),
                                 capture_output=True, env=_helper_env(),
                                 timeout=_HELPER_TIMEOUT_S, check=True).stdout
            found = json.loads(out)
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            detail = getattr(exc, "stderr", None) or b""
            raise IpcError(f"cannot list the run's IPC namespace: {exc} "
                           f"{detail.decode(errors='replace').strip()}".strip()) from exc
        self.notes = found["notes"]
        now = time.time()
        left = [sysv_leftover(kind, row, WHERE, now) for kind, row in found["sysv"]]
        left += [LeftoverFile(path=f"mqueue /{q['name']}", where=WHERE, kind="mqueue",
                              size=q["size"], uid=q["uid"], age_s=round(now - q["ctime"], 3))
                 for q in found["mqueues"]]
        return left

    def close(self) -> None:
        """Drop the harness's hold: with no process left in it, the kernel destroys the
        namespace and every object in it."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.inode, "notes": self.notes}


def _mqueues() -> tuple[list[dict[str, Any]], list[str]]:
    """The POSIX message queues of the current IPC namespace, through an mqueue filesystem
    mounted in a mount namespace of this helper's own (never seen by the host)."""
    try:
        check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        check(libc.mount(b"mqueue", _MQUEUE_AT.encode(), b"mqueue",
                          MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount mqueue")
    except OSError as exc:
        return [], [f"POSIX message queues not checked: {exc.strerror}"]
    queues = []
    for entry in os.scandir(_MQUEUE_AT):
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            fields = dict(f.split(":", 1) for f in Path(entry.path).read_text().split())
            queues.append({"name": entry.name, "uid": st.st_uid, "ctime": st.st_ctime,
                           "size": int(fields.get("QSIZE", 0))})
    return queues, []


def _main(argv: list[str]) -> int:
    if argv[:1] == ["hold"]:
        check(libc.unshare(CLONE_NEWIPC), "unshare(CLONE_NEWIPC)")
        print("ready", flush=True)
        sys.stdin.buffer.read()  # until the harness has opened the namespace
        return 0
    if len(argv) == 2 and argv[0] == "list":
        check(libc.setns(int(argv[1]), CLONE_NEWIPC), "setns(CLONE_NEWIPC)")
        queues, notes = _mqueues()
        json.dump({"sysv": sysv_rows(), "mqueues": queues, "notes": notes}, sys.stdout)
        return 0
    print("usage: python -m sandbox.host.ipcns hold | list FD", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
