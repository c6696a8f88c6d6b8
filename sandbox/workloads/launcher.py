"""Start a workload in a run's slice: private HOME and TMPDIR in the run directory owned by
the workload's user, an optional network namespace, and a reader that stores the workload's
operation lines in ``operations.jsonl``.

Both workloads go through here: the screenshot workload (its stdout is JSON lines) and any
command (its stdout and stderr go to ``workload.log``)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import site
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from sandbox.host.cgroups import UNIFIED
from sandbox.host.registry import short_tmp_dir
from sandbox.host.slice import CgroupSlice, Slice, SliceError, resolve_user
from sandbox.workloads.network import IsolatedNetwork, NetworkError
from sandbox.workloads.screenshot.spec import ScreenshotSpec

DEFAULT_USER = "nobody"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Bootstrap for python_command's fallback: add site dirs (argv[1]), then run the module.
_BOOT = ("import runpy, site, sys\n"
         "for d in sys.argv[1].split(':'): site.addsitedir(d)\n"
         "sys.argv = sys.argv[2:]\n"
         "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")
#: Chromium binds $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket, a unix socket whose
#: path may not exceed 107 bytes: a longer TMPDIR makes Chromium abort at start.
MAX_TMPDIR_LEN = 60
OPERATIONS_FILE = "operations.jsonl"
LOG_FILE = "workload.log"


class LaunchError(RuntimeError):
    """The workload could not be started (a harness error, exit code 3)."""


@dataclass
class Workload:
    """A started workload: its main process, its namespace, its stdout reader."""

    proc: subprocess.Popen
    run_dir: Path
    network: IsolatedNetwork | None = None
    reader: threading.Thread | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    operations: int = 0
    failed: int = 0

    @property
    def summary(self) -> dict[str, Any] | None:
        """The workload's own closing line (``kind: summary``), if it printed one."""
        return next((r for r in reversed(self.records) if r.get("kind") == "summary"), None)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the main process and wait up to ``timeout``; the slice kills the rest."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        return self.proc.poll()

    def close(self, timeout: float = 5.0) -> None:
        """After the slice's teardown: finish reading stdout, remove the namespace."""
        if self.reader is not None:
            self.reader.join(timeout)
        if self.proc.stdout is not None and (self.reader is None or not self.reader.is_alive()):
            self.proc.stdout.close()
        if self.network is not None:
            self.network.remove()
        tmp = self.run_dir / "tmp"
        if tmp.is_symlink():  # a short TMPDIR outside the run directory (prepare_dirs)
            shutil.rmtree(tmp.resolve(), ignore_errors=True)
            tmp.unlink()


def _account(user: str | int | None) -> pwd.struct_passwd | None:
    try:
        return resolve_user(user)
    except SliceError as exc:
        raise LaunchError(str(exc)) from exc


def _blocker(path: Path, account: pwd.struct_passwd, leaf_bit: int) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` cannot search, or ``path``
    itself when it lacks ``leaf_bit`` (x: execute/search, r: read) for it; None if reachable."""
    if account.pw_uid == 0:
        return None
    path = path.resolve()
    for item, bits in [*((d, 1) for d in reversed(path.parents)), (path, leaf_bit)]:
        st = item.stat()
        shift = 6 if st.st_uid == account.pw_uid else 3 if st.st_gid == account.pw_gid else 0
        if (st.st_mode >> shift) & bits != bits:
            return item
    return None


def _check_searchable(run_dir: Path, account: pwd.struct_passwd) -> None:
    """The workload's user must reach its HOME: every parent must be searchable by it."""
    if blocked := _blocker(run_dir, account, 1):
        raise LaunchError(f"{blocked} is not searchable by user {account.pw_name}: "
                          "chmod o+x it or put the runs directory elsewhere")


def python_module(module: str, user: str | int | None) -> list[str]:
    """The argv with which ``user`` runs ``module`` in this Python environment: sys.executable
    when the user can reach it; else (a venv built from an interpreter in a private directory, e.g.
    pyenv under /root) a system interpreter of the same version that adds this environment's
    site-packages before running the module."""
    account = _account(user)
    if account is None or _blocker(Path(sys.executable), account, 1) is None:
        return [sys.executable, "-m", module]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    fallback = shutil.which(version, path=SYSTEM_PATH)
    sites = [d for d in site.getsitepackages() if Path(d).is_dir()]
    if fallback and not any(_blocker(Path(p), account, 5) for p in [fallback, *sites]):
        return [fallback, "-c", _BOOT, os.pathsep.join(sites), module]
    raise LaunchError(f"user {account.pw_name} cannot run {sys.executable} "
                      f"({_blocker(Path(sys.executable), account, 1)} is not reachable) and no "
                      f"{version} it can run was found: build the venv from a system Python "
                      "(python3 -m venv .venv) or run the workload as root")


def prepare_dirs(run_dir: Path, user: str | int | None, run_id: str) -> dict[str, str]:
    """Make ``home/`` and ``tmp/`` in the run directory, owned by ``user``; the environment
    that points the workload at them."""
    account = _account(user)
    run_dir = run_dir.resolve()
    if account is not None and account.pw_uid != 0:
        run_dir.chmod(run_dir.stat().st_mode | stat.S_IXOTH)
        _check_searchable(run_dir, account)
    home, tmp = run_dir / "home", run_dir / "tmp"
    real_tmp = tmp
    if len(str(tmp)) > MAX_TMPDIR_LEN and not tmp.exists():
        # A deep runs directory: the TMPDIR lives at a short path, ``tmp`` points at it.
        real_tmp = short_tmp_dir(run_id)
        tmp.symlink_to(real_tmp)
    for directory in (home, real_tmp):
        directory.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(directory, account.pw_uid, account.pw_gid)
    return {"HOME": str(home), "TMPDIR": str(real_tmp), "TMP": str(real_tmp),
            "TEMP": str(real_tmp),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}


def escape_targets(slice_: Slice) -> list[str]:
    """cgroup.procs files OUTSIDE the slice, one per hierarchy the slice uses: the unified
    root, and the slice's parent in each v1 hierarchy. Never a cgroup we did not make."""
    if not isinstance(slice_, CgroupSlice):
        raise LaunchError("the escape injection needs a cgroup slice (this run has none)")
    targets = []
    for key, directory in slice_.dirs.items():
        if key == UNIFIED and slice_.layout.unified_mount is not None:
            targets.append(str(slice_.layout.unified_mount / "cgroup.procs"))
        else:
            targets.append(str(directory.parent / "cgroup.procs"))
    return targets


def _read_operations(stream: IO[bytes], run_dir: Path, workload: Workload) -> None:
    """Operation lines -> operations.jsonl (flushed each); other JSON objects -> records;
    anything else -> workload.log."""
    with open(run_dir / OPERATIONS_FILE, "ab") as ops, open(run_dir / LOG_FILE, "ab") as log:
        for raw in stream:
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            if isinstance(record, dict) and "op" in record:
                ops.write(raw if raw.endswith(b"\n") else raw + b"\n")
                ops.flush()
                workload.operations += 1
                workload.failed += not record.get("ok", False)
            elif isinstance(record, dict):
                workload.records.append(record)
            else:
                log.write(raw)
                log.flush()


def _spawn(
    slice_: Slice,
    argv: Sequence[str],
    run_dir: Path,
    *,
    user: str | int | None,
    network: str,
    json_stdout: bool,
) -> Workload:
    env = {**os.environ, **prepare_dirs(run_dir, user, slice_.run_id),
           "PYTHONDONTWRITEBYTECODE": "1"}
    isolated = None
    if network == "isolated":
        try:
            isolated = IsolatedNetwork(slice_.run_id).create()
        except NetworkError as exc:
            raise LaunchError(str(exc)) from exc
    log = open(run_dir / LOG_FILE, "ab")  # noqa: SIM115 (the child keeps its own copy)
    try:
        proc = slice_.spawn(
            list(argv), env=env, cwd=run_dir, user=user,
            stdout=subprocess.PIPE if json_stdout else log, stderr=log,
            before_exec=isolated.enter if isolated else None,
        )
    except SliceError as exc:
        if isolated:
            isolated.remove()
        raise LaunchError(str(exc)) from exc
    finally:
        log.close()
    workload = Workload(proc=proc, run_dir=run_dir, network=isolated)
    if json_stdout:
        workload.reader = threading.Thread(
            target=_read_operations, args=(proc.stdout, run_dir, workload),
            name="workload-stdout", daemon=True,
        )
        workload.reader.start()
    return workload


def launch_screenshot(
    slice_: Slice,
    spec: ScreenshotSpec,
    run_dir: Path,
    *,
    user: str | int | None = DEFAULT_USER,
) -> Workload:
    """Start the screenshot workload in the slice. ``escape`` runs as root (only root can
    leave a cgroup); everything else as ``user``."""
    spec.validate()
    if "escape" in spec.inject:
        spec = replace(spec, escape_targets=escape_targets(slice_))
        user = None
    argv = [*python_module("sandbox.workloads.screenshot", user), "--config", spec.to_json()]
    return _spawn(slice_, argv, run_dir, user=user, network=spec.resolved_network,
                  json_stdout=True)


def launch_command(
    slice_: Slice,
    argv: Sequence[str],
    run_dir: Path,
    *,
    user: str | int | None = DEFAULT_USER,
    network: str = "host",
) -> Workload:
    """Start any command in the slice; its output goes to ``workload.log``."""
    if not argv:
        raise LaunchError("no command given")
    if network not in ("isolated", "host"):
        raise LaunchError(f"network {network!r}: expected isolated or host")
    return _spawn(slice_, argv, run_dir, user=user, network=network, json_stdout=False)
