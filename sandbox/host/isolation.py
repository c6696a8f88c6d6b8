"""Per-run isolation: a user of its own, private /tmp and /dev/shm, private IPC, no user
namespaces.

**A user of its own** (as systemd's ``DynamicUser=``): a free UID/GID from :data:`UID_RANGE`,
held by a lock file in the state directory until the run is torn down. Nothing else on the host
runs as that UID, so every process, file, /dev/shm entry and SysV IPC object it owns belongs to
this run, and two runs cannot signal or read each other. ``--user NAME`` still works (then
attribution falls back to owner and creation time).

**Private temp directories** (as bubblewrap and nsjail): one tmpfs per run, mounted by the
harness under ``<state dir>/fs/<slice name>`` (its parent is root-only), holds ``tmp`` and
``shm``. In the workload's child, before exec, a new mount namespace binds them over /tmp and
/dev/shm, and a passwd/group naming the run's user over /etc/passwd and /etc/group. (/var/tmp
and /run/lock stay the host's: a runs directory or the user's command may live in /var/tmp;
files the run's user leaves in either are found by owner.) At teardown the harness lists what
is left through its own mount (never a path the workload can swap) and unmounts it: nothing is
deleted file by file.

**Private IPC** (:mod:`sandbox.host.ipcns`): the child also joins an IPC namespace the harness
made and holds; what is left in it is listed at teardown and goes with it.

**No user namespaces** (:mod:`sandbox.host.userns`): the child's last step before exec is a
seccomp filter refusing them, unless ``--allow-userns``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import HarnessError
from sandbox.host import safefs, userns
from sandbox.host.ipcns import IpcError, IpcNamespace, sysv_leftover, sysv_rows
from sandbox.host.libc import check, libc
from sandbox.host.registry import harness_alive, state_dir, this_harness
from sandbox.model.cleanup import LeftoverFile
from sandbox.model.fields import is_integer, is_number

#: Just below systemd's DynamicUser range (61184-65519) and above login.defs' UID_MAX (60000)
#: and systemd-homed's 60001-60513.
UID_RANGE = range(60600, 61184)
#: The private areas: name in the tmpfs -> where the workload sees it.
AREAS = {"tmp": "/tmp", "shm": "/dev/shm"}
#: The workload's HOME: the tmpfs's ``home`` bound over this empty, root-owned directory of
#: its private /tmp, so no runs directory has to be reachable by the run's user.
HOME_SEEN_AS = "/tmp/.home"
DEFAULT_TMPFS_SIZE = 1 << 30
#: Host directories any user can write to, scanned for files of the run's user at teardown
#: (/var/lock is a link to /run/lock on most hosts: scanned once).
HOST_SHARED_DIRS = tuple(dict.fromkeys(
    Path(os.path.realpath(p)) for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
    if os.path.isdir(p)))
#: A UID lock naming no harness (empty, corrupt) is stale once this old.
LOCK_GRACE_S = 60.0
SYSV_IPC = {"shm": "-m", "msg": "-q", "sem": "-s"}  # /proc/sysvipc/<kind> -> ipcrm flag

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 0x1, 0x2, 0x4, 0x20
MS_BIND, MS_REC, MS_SLAVE = 0x1000, 0x4000, 0x80000
MNT_DETACH = 0x2


class IsolationError(HarnessError):
    """The run's user or private mounts could not be set up (a harness error, exit code 3)."""


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    check(libc.mount(source.encode(), target.encode(),
                     fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), f"mount {target}")


def _umount(target: str) -> None:
    if libc.umount2(target.encode(), 0) != 0:
        check(libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


@dataclass(frozen=True)
class RunUser:
    """The credentials the workload runs with. ``dynamic``: a UID of this run alone."""

    uid: int
    gid: int
    name: str
    dynamic: bool

    @property
    def exact(self) -> bool:
        """Whether everything this UID owns is the run's (no other process shares it)."""
        return self.dynamic

    def to_dict(self) -> dict:
        return {"uid": self.uid, "gid": self.gid, "name": self.name, "dynamic": self.dynamic}


def _uid_lock(uid: int) -> Path:
    return state_dir() / "users" / f"{uid}.json"


def uid_pids(uid: int) -> set[int]:
    """Live processes with ``uid`` as their real, effective, saved or filesystem UID (a
    zombie can do nothing; one whose parent never reaps it must not hold the UID forever)."""
    text, found = str(uid), set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/status",
                                                 errors="surrogateescape") as f:
            for line in f:
                if line.startswith("State:") and line.split()[1] == "Z":
                    break
                if line.startswith("Uid:"):
                    if text in line.split()[1:]:
                        found.add(int(entry.name))
                    break
    return found


def _known_id(uid: int) -> bool:
    import grp

    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return True
    except KeyError:
        return False


def _file_owners() -> set[int]:
    """The owners of the top-level entries of the host's shared temp directories."""
    owners = set()
    for directory in HOST_SHARED_DIRS:
        with contextlib.suppress(OSError), os.scandir(directory) as scan:
            for entry in scan:
                with contextlib.suppress(OSError):
                    owners.add(entry.stat(follow_symlinks=False).st_uid)
    return owners


def allocate_user(run_id: str) -> RunUser:
    """Take a free UID (= GID) from :data:`UID_RANGE`: no passwd/group entry, no process, no
    file in the host's shared temp directories, no lock. The lock file
    (``<state dir>/users/<uid>.json``) names the run and the harness."""
    lock_dir = state_dir() / "users"
    lock_dir.mkdir(parents=True, exist_ok=True)
    pid, start = this_harness()
    record = json.dumps({"run_id": run_id, "harness_pid": pid, "harness_start": start})
    owners = _file_owners()
    for uid in UID_RANGE:
        if _uid_lock(uid).exists() or uid in owners or _known_id(uid) or uid_pids(uid):
            continue
        try:
            fd = os.open(_uid_lock(uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(record)
        return RunUser(uid, uid, f"sandbox-{uid}", dynamic=True)
    raise IsolationError(f"no free UID in {UID_RANGE.start}-{UID_RANGE.stop - 1}: "
                         "too many runs at once, or stale locks (run sandbox cleanup)")


def _lock_harness(lock: Path) -> tuple[int, int | float] | None:
    """The harness (pid, start time) a UID lock names; None when it names none (empty,
    corrupt, not an object)."""
    try:
        data = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, start = data.get("harness_pid"), data.get("harness_start")
    return (pid, start) if is_integer(pid) and is_number(start) else None


def stale_users() -> list[int]:
    """The UIDs of :data:`UID_RANGE` whose lock names a harness that is gone (or names none
    and is older than :data:`LOCK_GRACE_S`: a harness writes its lock at once) and that no
    process runs as. Their files are the caller's to remove before :func:`release_user`."""
    found = []
    for lock in sorted((state_dir() / "users").glob("*.json")):
        try:
            uid, age = int(lock.stem), time.time() - lock.stat().st_mtime
        except (OSError, ValueError):
            continue
        harness = _lock_harness(lock)
        gone = age > LOCK_GRACE_S if harness is None else not harness_alive(*harness)
        if uid in UID_RANGE and gone and not uid_pids(uid):
            found.append(uid)
    return found


def named_user(name: str) -> RunUser:
    """An existing account (``--user NAME``)."""
    try:
        account = pwd.getpwnam(name)
    except KeyError as exc:
        raise IsolationError(f"unknown user {name!r}") from exc
    return RunUser(account.pw_uid, account.pw_gid, account.pw_name, dynamic=False)


def release_user(user: RunUser) -> bool:
    """Give a dynamic UID back once nothing of it is left: no process runs as it and it owns
    nothing in the host's shared temp directories. Returns whether it was given back."""
    if not user.dynamic or uid_pids(user.uid) or user.uid in _file_owners():
        return False
    with contextlib.suppress(FileNotFoundError):
        _uid_lock(user.uid).unlink()
    return True


def sysv_ipc(uid: int) -> list[LeftoverFile]:
    """SysV shared memory segments, message queues and semaphore sets owned by ``uid`` in the
    host's IPC namespace."""
    now = time.time()
    return [sysv_leftover(kind, row, "SysV IPC", now) for kind, row in sysv_rows()
            if row.get("uid") == str(uid)]


def remove_sysv_ipc(entry: LeftoverFile) -> None:
    """Remove one object found by :func:`sysv_ipc` (by id: no path involved)."""
    subprocess.run(["ipcrm", SYSV_IPC[entry.kind or ""], str(entry.id)], check=False,
                   capture_output=True)


def _passwd_lines(user: RunUser, home: str) -> tuple[str, str]:
    """Host passwd and group with the run's user added, so tools that look the user up
    (whoami, node's os.userInfo) work."""
    def host(path: str) -> str:
        try:
            text = Path(path).read_text()
        except OSError:
            return ""
        return text if text.endswith("\n") or not text else text + "\n"

    passwd = host("/etc/passwd") + (
        f"{user.name}:x:{user.uid}:{user.gid}:sandbox run:{home}:/usr/sbin/nologin\n")
    group = host("/etc/group") + f"{user.name}:x:{user.gid}:\n"
    return passwd, group


class PrivateFs:
    """One run's tmpfs with its private /tmp and /dev/shm, and its IPC namespace; host paths
    inside those areas the workload must see (its own script, the harness's Python
    environment) are bound into them read-only, at the same place (:meth:`expose`). Unless
    ``allow_userns``, the workload cannot make user namespaces."""

    def __init__(self, slice_name: str, size: int = DEFAULT_TMPFS_SIZE,
                 allow_userns: bool = False) -> None:
        self.root = state_dir() / "fs" / slice_name
        self.size = size
        self.mounted = False
        self.ipc = IpcNamespace()
        self.allow_userns = allow_userns
        self._userns_filter: userns.UsernsFilter | None = None
        self._sources: dict[str, Path] = {}  # where the workload sees it -> source
        self._exposed: list[str] = []  # host paths shown read-only at the same place

    def create(self, user: RunUser) -> PrivateFs:
        """Mount the tmpfs and make its areas (mode 1777, as /tmp) and the user's HOME."""
        parent = self.root.parent
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o700)  # other runs' workloads must not reach this run's tmpfs
        self.root.mkdir(exist_ok=True)
        try:
            self.ipc.create()
            _mount("tmpfs", str(self.root), "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={self.size},mode=0755")
        except (OSError, IpcError) as exc:
            self.ipc.close()
            self.root.rmdir()
            raise IsolationError(f"cannot make the run's private tmpfs at {self.root}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from exc
        self.mounted = True
        if not self.allow_userns:
            self._userns_filter = userns.build()
        for name in AREAS:
            area = self.root / name
            area.mkdir()
            area.chmod(0o1777)
        home = self.root / "home"
        home.mkdir(mode=0o700)
        os.chown(home, user.uid, user.gid)
        (self.root / "tmp" / Path(HOME_SEEN_AS).name).mkdir(mode=0o755)  # the mount point
        etc = self.root / "etc"
        etc.mkdir(mode=0o755)
        if user.dynamic:
            passwd, group = _passwd_lines(user, HOME_SEEN_AS)
            (etc / "passwd").write_text(passwd)
            (etc / "group").write_text(group)
        # in bind order: HOME goes over its mount point once /tmp is the private one
        self._sources = {target: self.root / name for name, target in AREAS.items()}
        self._sources[HOME_SEEN_AS] = home
        if user.dynamic:
            self._sources.update({"/etc/passwd": etc / "passwd", "/etc/group": etc / "group"})
        return self

    def describe(self) -> dict[str, object]:
        """For run.json: the IPC namespace and whether user namespaces are refused."""
        refused = self._userns_filter is not None
        return {"ipc_namespace": self.ipc.inode, "ipc_notes": self.ipc.notes,
                "user_namespaces": "refused" if refused else "allowed" if self.allow_userns
                else "open: no seccomp filter for this machine"}

    def expose(self, path: str | Path) -> bool:
        """Let the workload see the host's ``path`` (a file or directory inside /tmp or
        /dev/shm), read-only, where it is: its mount point is made now in the tmpfs (root's,
        before the workload starts), the bind in :meth:`enter`. The bind keeps the file
        modes: the workload reads only what its user could read anyway. False when
        ``path`` is in no private area (nothing to do) or is an area itself."""
        seen = Path(os.path.abspath(path))
        name = next((n for n, area in AREAS.items() if Path(area) in seen.parents), None)
        if name is None or not self.mounted or not seen.exists():
            return False
        if str(seen) not in self._exposed:
            point = self.root / name
            parts = seen.relative_to(AREAS[name]).parts
            for part in parts[:-1] if not seen.is_dir() else parts:
                point = point / part
                point.mkdir(exist_ok=True)
                point.chmod(0o755)  # root's: the workload can add nothing here
            if not seen.is_dir():
                (point / parts[-1]).touch(exist_ok=True)
                (point / parts[-1]).chmod(0o644)
            self._exposed.append(str(seen))
        return True

    def enter(self) -> None:
        """In the workload's child, before exec (as root): a mount namespace of its own in
        which the private areas replace /tmp and /dev/shm, and the exposed host paths are
        bound read-only over their mount points. Slave propagation: host mounts still reach
        it, its mounts never reach the host. It joins the run's IPC namespace first and,
        last, loses the right to make user namespaces."""
        self.ipc.enter()
        check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount("none", "/", None, MS_REC | MS_SLAVE)
        # Every source is opened before the first bind: once /tmp is covered, a state
        # directory (as in tests) or an exposed path under /tmp could no longer be reached.
        binds = [(target, os.open(source, os.O_PATH | os.O_CLOEXEC), False)
                 for target, source in self._sources.items()]
        binds += [(path, os.open(path, os.O_PATH | os.O_CLOEXEC), True)
                  for path in sorted(self._exposed, key=len)]  # a parent before its child
        try:
            for target, fd, read_only in binds:
                _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
                if read_only:
                    _mount("none", target, None,
                           MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        finally:
            for _, fd, _ in binds:
                os.close(fd)
        if self._userns_filter is not None:
            self._userns_filter.install()

    def usage(self) -> tuple[int | None, int | None]:
        """(bytes, regular files) in the private areas; (None, None) when not mounted."""
        if not self.mounted:
            return None, None
        total = count = 0
        with contextlib.suppress(OSError), safefs.open_dir(self.root) as root_fd:
            for name in AREAS:
                size, files = safefs.usage(root_fd, name)
                total, count = total + size, count + files
        return total, count

    def leftovers(self) -> dict[str, list[safefs.Entry]]:
        """What is left in each private area, keyed by where the workload saw it."""
        found: dict[str, list[safefs.Entry]] = {}
        if not self.mounted:
            return found
        with safefs.open_dir(self.root) as root_fd:
            ours = {HOME_SEEN_AS, *(str(Path(area, Path(p).relative_to(area).parts[0]))
                                    for p in self._exposed for area in AREAS.values()
                                    if Path(area) in Path(p).parents)}
            for name, seen_as in AREAS.items():
                with safefs.open_dir(name, dir_fd=root_fd) as area_fd:
                    found[seen_as] = [e for e in safefs.entries(area_fd)
                                      if f"{seen_as}/{e.name}" not in ours]
        return found

    def home_entries(self) -> list[safefs.Entry]:
        """What the workload left in its HOME (caches, profiles), listed apart."""
        if not self.mounted:
            return []
        with safefs.open_dir(self.root) as root_fd, \
                safefs.open_dir("home", dir_fd=root_fd) as home_fd:
            return safefs.entries(home_fd)

    def ipc_leftovers(self) -> list[LeftoverFile]:
        """What is left in the run's IPC namespace (SysV objects, POSIX message queues)."""
        try:
            return self.ipc.leftovers()
        except IpcError as exc:  # reported in run.json; the rest of the teardown goes on
            self.ipc.notes.append(str(exc))
            return []

    def remove(self) -> None:
        """Drop the IPC namespace, unmount (all content goes with it), remove the mount point."""
        self.ipc.close()
        remove_private_fs(self.root)
        self.mounted = False


def remove_private_fs(root: Path) -> None:
    """Unmount a run's tmpfs (lazily if still busy) and remove its mount point."""
    if os.path.ismount(root):
        try:
            _umount(str(root))
        except OSError as exc:
            raise IsolationError(f"cannot unmount {root}: {exc.strerror}") from exc
    with contextlib.suppress(FileNotFoundError):
        root.rmdir()
