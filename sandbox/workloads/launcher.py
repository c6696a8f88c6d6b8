"""Start a workload in a run's slice: a HOME in the run directory owned by the workload's user,
its private /tmp and /dev/shm (sandbox.host.isolation), an optional network namespace, and
readers that store its operation lines in ``operations.jsonl`` and the rest of its output in
the capped ``workload.log``.

Every workload goes through here: the screenshot workload (its stdout is JSON lines), any
command (its stdout and stderr go to ``workload.log``) and a Python callable forked into the
slice (a pytest test's body, ``fork_callable``)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from sandbox.errors import HarnessError
from sandbox.host.forked import ForkedProcess
from sandbox.host.isolation import AREAS, HOME_SEEN_AS, PrivateFs, RunUser
from sandbox.host.slice import MARKER_ENV, Slice, SliceError, resolve_user
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.rundir import JS_HEAP, OPERATIONS, WORKLOAD_LOG, private_opener
from sandbox.settle_points import ENV as SETTLE_ENV
from sandbox.workloads.environment import (
    SYSTEM_PATH,
    node_semi_space_mb,
    workload_environment,
)
from sandbox.workloads.logfile import DEFAULT_LOG_CAP, CappedLog
from sandbox.workloads.network import IsolatedNetwork, NetworkError
from sandbox.workloads.screenshot.spec import ScreenshotSpec

log = logging.getLogger("sandbox.launcher")

# Bootstrap for python_command's fallback: add site dirs (argv[1]), then run the module.
_BOOT = ("import runpy, site, sys\n"
         "for d in sys.argv[1].split(':'): site.addsitedir(d)\n"
         "sys.argv = sys.argv[2:]\n"
         "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")
#: Chromium binds $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket, a unix socket whose
#: path may not exceed 107 bytes: a longer TMPDIR makes Chromium abort at start.
MAX_TMPDIR_LEN = 60


class LaunchError(HarnessError):
    """The workload could not be started (a harness error, exit code 3)."""


@dataclass
class Workload:
    """A started workload: its main process, its namespace, its output readers and log."""

    proc: subprocess.Popen | ForkedProcess
    run_dir: Path
    log: CappedLog
    network: IsolatedNetwork | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    operations: int = 0
    failed: int = 0
    env_names: list[str] = field(default_factory=list)  # the variables it started with
    #: its NODE_OPTIONS' young-generation cap (MB per semi-space), None without one
    node_semi_space_mb: int | None = None

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
        """After the slice's teardown: finish reading the output, remove the namespace."""
        for reader in self.readers:
            reader.join(timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not any(r.is_alive() for r in self.readers):
                stream.close()
        self.log.close()
        if self.network is not None:
            self.network.remove()


def _account(user: RunUser | str | int | None) -> RunUser | None:
    try:
        return resolve_user(user)
    except SliceError as exc:
        raise LaunchError(str(exc)) from exc


def _blocker(path: Path, account: RunUser, leaf_bit: int) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` cannot search, or ``path``
    itself when it lacks ``leaf_bit`` (x: execute/search, r: read) for it; None if reachable."""
    if account.uid == 0:
        return None
    path = path.resolve()
    for item, bits in [*((d, 1) for d in reversed(path.parents)), (path, leaf_bit)]:
        st = item.stat()
        shift = 6 if st.st_uid == account.uid else 3 if st.st_gid == account.gid else 0
        if (st.st_mode >> shift) & bits != bits:
            return item
    return None


def python_module(module: str, account: RunUser | None) -> list[str]:
    """The argv with which ``account`` runs ``module`` in this Python environment:
    sys.executable when the user can reach it; else (a venv built from an interpreter in a
    private directory, e.g. pyenv under /root) a system interpreter of the same version that
    adds this environment's site-packages before running the module."""
    if account is None or _blocker(Path(sys.executable), account, 1) is None:
        return [sys.executable, "-m", module]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    fallback = shutil.which(version, path=SYSTEM_PATH)
    sites = [d for d in site.getsitepackages() if Path(d).is_dir()]
    if fallback and not any(_blocker(Path(p), account, 5) for p in [fallback, *sites]):
        return [fallback, "-c", _BOOT, os.pathsep.join(sites), module]
    raise LaunchError(f"user {account.name} cannot run {sys.executable} "
                      f"({_blocker(Path(sys.executable), account, 1)} is not reachable) and no "
                      f"{version} it can run was found: build the venv from a system Python "
                      "(python3 -m venv .venv) or run the workload as root")


def expose_environment(private_fs: PrivateFs | None) -> None:
    """The harness's Python environment (venv, base interpreter, the sandbox package) made
    visible read-only to a workload whose private /tmp or /dev/shm would hide it (a checkout
    under /tmp, as some CI runners make)."""
    if private_fs is None:
        return
    package = Path(__file__).resolve().parent.parent
    for path in (Path(sys.prefix), Path(sys.base_prefix), package):
        private_fs.expose(path)


def _expose_arguments(argv: Sequence[str], private_fs: PrivateFs | None) -> None:
    """A command's own files inside a private area (a user's script in /tmp) made visible
    to it read-only where they are: a directory as it is; a file with its directory (its
    sibling modules), or alone when that directory is /tmp itself; anything inside a
    virtualenv with the whole venv."""
    if private_fs is None:
        return
    for arg in argv:
        path = Path(os.path.abspath(arg)) if arg.startswith("/") else None
        if path is None or _hidden_by(path, private_fs) is None or not path.exists():
            continue
        venv = next((p for p in path.parents if (p / "pyvenv.cfg").is_file()), None)
        if not private_fs.expose(venv or (path if path.is_dir() else path.parent)):
            private_fs.expose(path)


def _hidden_by(path: Path, private_fs: PrivateFs | None) -> str | None:
    """The private area (/tmp, /dev/shm) that hides ``path`` from the workload, if any."""
    if private_fs is None:
        return None
    return next((area for area in AREAS.values()
                 if path == Path(area) or Path(area) in path.parents), None)


def prepare_dirs(run_dir: Path, account: RunUser | None,
                 private_fs: PrivateFs | None = None) -> dict[str, str]:
    """The environment that points the workload at its HOME and TMPDIR: with private mounts
    both live in the run's tmpfs (HOME_SEEN_AS, /tmp), so the runs directory need not be
    reachable by the workload's user; without them ``home/`` and ``tmp/`` are made in the
    run directory, owned by that user."""
    if private_fs is not None:
        home, tmp = Path(HOME_SEEN_AS), Path("/tmp")
    else:
        home, tmp = _run_dir_areas(run_dir, account)
    return {"HOME": str(home), "TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}


def _run_dir_areas(run_dir: Path, account: RunUser | None) -> tuple[Path, Path]:
    """``home/`` and ``tmp/`` in the run directory, owned by the workload's user."""
    run_dir = run_dir.resolve()
    if account is not None and account.uid != 0:
        run_dir.chmod(run_dir.stat().st_mode | stat.S_IXOTH)
        if blocked := _blocker(run_dir, account, 1):
            raise LaunchError(f"{blocked} is not searchable by the workload's user: "
                              "chmod o+x it or put the runs directory elsewhere")
    home, tmp = run_dir / "home", run_dir / "tmp"
    if len(str(tmp)) > MAX_TMPDIR_LEN:
        raise LaunchError(f"{tmp} is too long for Chromium's socket paths (over "
                          f"{MAX_TMPDIR_LEN} characters) and this run has no private "
                          "/tmp: use a shorter --runs-dir")
    for directory in (home, tmp):
        directory.mkdir(mode=0o700, exist_ok=True)
        if account is not None:
            os.chown(directory, account.uid, account.gid)
    return home, tmp


def _read_operations(stream: IO[bytes], run_dir: Path, workload: Workload) -> None:
    """Operation lines -> operations.jsonl, ``jsheap`` lines -> jsheap.jsonl (each flushed,
    as the workload wrote them); other JSON objects -> records; anything else -> the
    workload's log."""
    with open(run_dir / OPERATIONS, "ab", opener=private_opener) as ops, \
            contextlib.ExitStack() as files:
        heap = None  # opened with the first jsheap line
        for raw in stream:
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            if not isinstance(record, dict):
                workload.log.write(raw)
            elif (operation := Operation.from_record(record)) is not None:
                with contextlib.suppress(OSError):  # disk full: the count still goes on
                    ops.write(line)
                    ops.flush()
                workload.operations += 1
                workload.failed += operation.failed
            elif JsHeapMeasurement.from_record(record) is not None:
                with contextlib.suppress(OSError):
                    heap = heap or files.enter_context(
                        open(run_dir / JS_HEAP, "ab", opener=private_opener))
                    heap.write(line)
                    heap.flush()
            else:
                workload.records.append(record)


def _copy_to_log(stream: io.BufferedIOBase, log: CappedLog) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        log.write(chunk)


def _spawn(
    slice_: Slice,
    argv: Sequence[str],
    run_dir: Path,
    *,
    user: RunUser | str | int | None,
    network: str,
    json_stdout: bool,
    private_fs: PrivateFs | None,
    log_cap: int,
    passed_env: Mapping[str, str],
    inherit_env: bool,
    cwd: Path | None = None,
    settle_fd: int | None = None,
) -> Workload:
    account = _account(user)
    base = workload_environment("screenshot" if json_stdout else "command", account,
                                passed=passed_env, inherit=inherit_env)
    env = {**base, **prepare_dirs(run_dir, account, private_fs),  # what is passed wins
           "PYTHONDONTWRITEBYTECODE": "1", **{name: base[name] for name in passed_env}}
    if settle_fd is not None:  # docs/settle-points.md
        env[SETTLE_ENV] = str(settle_fd)
    isolated = None
    if network == "isolated":
        try:
            isolated = IsolatedNetwork(slice_.run_id).create()
        except NetworkError as exc:
            raise LaunchError(str(exc)) from exc
    steps = [step for step in (isolated and isolated.enter, private_fs and private_fs.enter)
             if step]
    workdir = _workdir(cwd, run_dir, account, private_fs)
    if workdir is None:
        steps.append(lambda: os.chdir(HOME_SEEN_AS))

    def before_exec() -> None:
        for step in steps:
            step()

    log = CappedLog(run_dir / WORKLOAD_LOG, log_cap)
    try:
        proc = slice_.spawn(
            list(argv), env=env, cwd=workdir, user=account,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if json_stdout else subprocess.STDOUT,
            before_exec=before_exec, pass_fds=() if settle_fd is None else (settle_fd,),
        )
    except SliceError as exc:
        log.close()
        if isolated:
            isolated.remove()
        raise LaunchError(str(exc)) from exc
    workload = Workload(proc=proc, run_dir=run_dir, log=log, network=isolated,
                        env_names=sorted({*env, MARKER_ENV}),
                        node_semi_space_mb=node_semi_space_mb(env))
    readers: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (_copy_to_log, (proc.stderr if json_stdout else proc.stdout, log))]
    if json_stdout:
        readers.append((_read_operations, (proc.stdout, run_dir, workload)))
    for target, args in readers:
        thread = threading.Thread(target=target, args=args, name="workload-output",
                                  daemon=True)
        thread.start()
        workload.readers.append(thread)
    return workload


def launch_screenshot(
    slice_: Slice,
    spec: ScreenshotSpec,
    run_dir: Path,
    *,
    user: RunUser | str | int | None,
    private_fs: PrivateFs | None = None,
    log_cap: int = DEFAULT_LOG_CAP,
    passed_env: Mapping[str, str] | None = None,
    inherit_env: bool = False,
    settle_fd: int | None = None,
) -> Workload:
    """Start the screenshot workload in the slice. ``escape`` runs as root (only root can
    leave a cgroup); everything else as ``user``. Its environment: see
    workloads/environment.py, plus ``passed_env``; ``settle_fd``: its end of the settle
    socket (sandbox.sampler.settle)."""
    spec.validate()
    if "escape" in spec.inject:
        try:
            spec = replace(spec, escape_targets=slice_.escape_targets())
        except SliceError as exc:
            raise LaunchError(str(exc)) from exc
        user = None
    expose_environment(private_fs)
    argv = [*python_module("sandbox.workloads.screenshot", _account(user)),
            "--config", spec.to_json()]
    return _spawn(slice_, argv, run_dir, user=user, network=spec.resolved_network,
                  json_stdout=True, private_fs=private_fs, log_cap=log_cap,
                  passed_env=passed_env or {}, inherit_env=inherit_env, settle_fd=settle_fd)


def _workdir(cwd: Path | None, run_dir: Path, account: RunUser | None,
             private_fs: PrivateFs | None) -> Path | None:
    """``cwd`` when the workload's user can reach and see it (read-only when it lies in a
    private area), else its HOME: None for the private HOME (only there once the child's
    mounts are made), else the run directory."""
    fallback = None if private_fs is not None else run_dir
    if cwd is None:
        return fallback
    cwd = cwd.resolve()
    hidden = _hidden_by(cwd, private_fs)
    if hidden and private_fs is not None and private_fs.expose(cwd):
        # its mount point's directories are root's 0755: the host's modes on the way to it
        # do not matter in the workload's namespace
        log.info("the command runs in %s, which it sees read-only (inside %s, private to "
                 "the run)", cwd, hidden)
        return cwd
    why = (f"the run's private {hidden} hides it" if hidden
           else f"{blocked} is not searchable by the workload's user"
           if account is not None and (blocked := _blocker(cwd, account, 1)) else None)
    if why:
        log.warning("the command runs in its HOME, not in %s: %s", cwd, why)
        return fallback
    return cwd


def launch_command(
    slice_: Slice,
    argv: Sequence[str],
    run_dir: Path,
    *,
    user: RunUser | str | int | None,
    network: str = "host",
    private_fs: PrivateFs | None = None,
    log_cap: int = DEFAULT_LOG_CAP,
    cwd: Path | None = None,
    passed_env: Mapping[str, str] | None = None,
    inherit_env: bool = False,
    settle_fd: int | None = None,
) -> Workload:
    """Start any command in the slice, in ``cwd`` (where ``sandbox run`` was started) when
    the workload's user can reach it, else in the run directory; its output goes to
    ``workload.log``. Its environment: see workloads/environment.py, plus ``passed_env``;
    ``settle_fd``: its end of the settle socket (sandbox.sampler.settle)."""
    if not argv:
        raise LaunchError("no command given")
    if network not in ("isolated", "host"):
        raise LaunchError(f"network {network!r}: expected isolated or host")
    _expose_arguments(argv, private_fs)
    return _spawn(slice_, argv, run_dir, user=user, network=network, json_stdout=False,
                  private_fs=private_fs, log_cap=log_cap, passed_env=passed_env or {},
                  inherit_env=inherit_env, cwd=cwd, settle_fd=settle_fd)


def fork_callable(slice_: Slice, body: Callable[[], None], run_dir: Path, *,
                  log_cap: int = DEFAULT_LOG_CAP) -> tuple[Workload, ForkedProcess]:
    """A Python callable as the workload (a pytest test's body): forked into the slice now,
    run once the returned process is released; as the harness's user, in its mount
    namespace and environment, with TMPDIR in the run directory (what is left there is a
    leftover). Its output goes where the harness's goes."""
    env = {key: value for key, value in prepare_dirs(run_dir, None).items()
           if key in ("TMPDIR", "TMP", "TEMP")}  # its HOME stays the harness's

    def run() -> None:
        tempfile.tempdir = None  # TMPDIR is read again
        body()

    proc = slice_.fork(run, env)
    log_file = CappedLog(run_dir / WORKLOAD_LOG, log_cap)
    return Workload(proc=proc, run_dir=run_dir, log=log_file), proc
