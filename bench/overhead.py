"""Benchmark: what the harness costs the workload, and which part of it. The same screenshot
workload (built-in site, fixed pace, fresh context per screenshot) runs in several variants,
interleaved, the order rotated per round so warming favours none:

- ``bare``: ``python -m sandbox.workloads.screenshot`` as a plain child of this bench (root, the
  bench's own cgroups, host network, host /tmp and /dev/shm, the bench's HOME and environment);
- ``bare-X``: bare with one thing of the harness's launch changed (see :data:`VARIANTS`),
  made by the bench itself, not by the harness's code;
- ``launch``: the harness's own launch code (slice, run's UID, private /tmp and /dev/shm,
  HOME, environment; host network) with no sampler, no tracer, no reaper, no role sweeps;
- ``harness-*``: ``sandbox run``, with or without its optional parts, or as root.

The default set answers "is it the harness or the run's UID": bare as root, bare as an
unprivileged user, ``sandbox run`` (its own UID) and ``sandbox run --user root``
(docs/performance.md, 2026-11-26 20:00-20:55: the UID is the +12-17 %).

Per run: the median screenshot latency, the geometric mean of the per-page medians (the
built-in site's five pages differ up to 2x, so this is steadier), the CPU the whole machine used
per screenshot; then each variant's ratio to ``bare`` per round and their median.

    sudo .venv/bin/python bench/overhead.py [--rounds 4] [--duration 60] [--ops-per-minute 30]
        [--variants bare,bare-cgroup,...,harness-host] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import pwd
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sandbox.workloads.environment import DRIVER_NODE_OPTIONS

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
SANDBOX = str(Path(PYTHON).parent / "sandbox")
WORKLOAD = [PYTHON, "-m", "sandbox.workloads.screenshot"]
#: The cgroups the bench makes itself (never the harness's ``sandbox-`` prefix).
CGROUP_PREFIX = "ovh-bench-"
#: The unprivileged user of ``bare-uid``.
UNPRIVILEGED = "nobody"
#: The harness's private tmpfs size (sandbox.host.isolation.DEFAULT_TMPFS_SIZE).
TMPFS_SIZE = 1 << 30


def _ops(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "op" in record and record.get("ok"):
            out.append(record)
    return out


def _config(duration: float, opm: float) -> str:
    return json.dumps({"duration_s": duration, "operations_per_minute": opm,
                       "context_policy": "fresh"})


def _run_workload(argv: list[str], duration: float, *, env: dict[str, str] | None = None,
                  cwd: str | None = None, preexec: Callable[[], None] | None = None
                  ) -> list[dict]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120,
                          check=False, env=env, cwd=cwd, preexec_fn=preexec)
    ops = _ops(done.stdout.splitlines())
    if not ops:
        raise RuntimeError(f"{shlex.join(argv[:4])}... no operations; stderr: "
                           f"{done.stderr.strip()[-500:]}")
    return ops


# -- the variants ---------------------------------------------------------------------------
def bare(duration: float, opm: float, tmp: Path) -> list[dict]:
    """As a user would start it: a child of this bench, everything the host's."""
    return _run_workload([*WORKLOAD, "--config", _config(duration, opm)], duration)


class BenchCgroups:
    """Fresh cgroups in every hierarchy a slice of the harness uses here (the harness's
    layout: each under this process's own cgroup of that hierarchy), or only in ``only``.
    The child joins before exec; at the end anything left is killed by PID and the cgroups
    removed."""

    def __init__(self, only: tuple[str, ...] | None = None) -> None:
        from sandbox.host.cgroups import discover_layout

        layout = discover_layout()
        if layout.mode not in ("hybrid", "v1", "v2"):
            raise RuntimeError(f"no cgroups here ({layout.mode}: {layout.reason})")
        parents = {k: p for k, p in layout.parents.items() if only is None or k in only}
        name = f"{CGROUP_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
        self.dirs = [parent / name for parent in parents.values()]

    def __enter__(self) -> BenchCgroups:
        made = []
        try:
            for directory in self.dirs:
                directory.mkdir()
                made.append(directory)
        except BaseException:
            for directory in made:
                directory.rmdir()
            raise
        return self

    def join(self) -> None:
        """In the forked child, before exec."""
        pid = str(os.getpid()).encode()
        for directory in self.dirs:
            fd = os.open(directory / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        found = set()
        for directory in self.dirs:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        return found

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 10
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:  # the workload's own leftovers: in our cgroup, so ours
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            time.sleep(0.05)
        for directory in self.dirs:
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                print(f"# could not remove {directory}", file=sys.stderr)


def bare_cgroup(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare, in fresh cgroups the bench makes in every hierarchy a slice uses (hybrid here:
    unified, v1 memory, pids, freezer, cpuacct)."""
    with BenchCgroups() as cgroups:
        return _run_workload([*WORKLOAD, "--config", _config(duration, opm)], duration,
                             preexec=cgroups.join)


def bare_memcg(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare, in a fresh v1 memory cgroup only (or the v2 one on a v2 host)."""
    from sandbox.host.cgroups import discover_layout

    key = "unified" if discover_layout().mode == "v2" else "memory"
    with BenchCgroups(only=(key,)) as cgroups:
        return _run_workload([*WORKLOAD, "--config", _config(duration, opm)], duration,
                             preexec=cgroups.join)


def _fresh_home(tmp: Path, owner: pwd.struct_passwd | None = None) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(mode=0o700)
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
    return {**os.environ, "HOME": str(home)}


def bare_home(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare (root), with a fresh empty HOME on disk (no caches, no config)."""
    return _run_workload([*WORKLOAD, "--config", _config(duration, opm)], duration,
                         env=_fresh_home(tmp), cwd=str(tmp))


def bare_leandriver(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare with the harness's NODE_OPTIONS for the Playwright driver (its young generation
    kept at 1 MB: workloads.environment.DRIVER_NODE_OPTIONS): what the shorter start-up
    costs in CPU and latency."""
    env = {**os.environ, "NODE_OPTIONS": DRIVER_NODE_OPTIONS}
    return _run_workload([*WORKLOAD, "--config", _config(duration, opm)], duration, env=env)


def bare_uid(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare as an unprivileged user (``nobody``, no groups) with a fresh HOME it owns (/root
    is not its): compare with bare-home for the UID alone."""
    account = pwd.getpwnam(UNPRIVILEGED)
    argv = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--clear-groups", "--", *WORKLOAD, "--config", _config(duration, opm)]
    return _run_workload(argv, duration, env=_fresh_home(tmp, account), cwd=str(tmp))


#: The workload with the Chromium arguments it had before the omnibox WebUI was turned off
#: (Playwright's own --disable-features only): runs sandbox.workloads.screenshot's main.
_WORKLOAD_OMNIBOX = [PYTHON, "-c", (
    "import sys; import sandbox.workloads.screenshot.run as run; "
    "from sandbox.workloads.screenshot import spec; "
    "run.CHROMIUM_ARGS = tuple(a for a in spec.CHROMIUM_ARGS "
    "if not a.startswith('--disable-features=')) + ('--disable-features=' + "
    "','.join(spec.PLAYWRIGHT_DISABLED_FEATURES),); "
    "from sandbox.workloads.screenshot.__main__ import main; sys.exit(main())")]


def bare_omnibox(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare (root) with Chromium's omnibox popup WebUI on (the workload's arguments before
    2026-11-26: Playwright's --disable-features only), a chrome://omnibox-popup.top-chrome
    renderer per fresh context."""
    return _run_workload([*_WORKLOAD_OMNIBOX, "--config", _config(duration, opm)], duration)


def bare_uid_omnibox(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare-uid (``nobody``, fresh HOME) with the omnibox popup WebUI on, as bare-omnibox."""
    account = pwd.getpwnam(UNPRIVILEGED)
    argv = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--clear-groups", "--", *_WORKLOAD_OMNIBOX, "--config", _config(duration, opm)]
    return _run_workload(argv, duration, env=_fresh_home(tmp, account), cwd=str(tmp))


def bare_nocapnice(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare (root), without CAP_SYS_NICE (dropped from the bounding set): Chromium's
    setpriority() to nice -8 for its display-critical threads fails, as for any user whose
    RLIMIT_NICE does not allow it."""
    argv = ["setpriv", "--bounding-set=-sys_nice", "--", *WORKLOAD,
            "--config", _config(duration, opm)]
    return _run_workload(argv, duration)


def bare_nocaps(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare (UID 0), with every capability dropped (empty bounding set): root's files and
    UID, none of its privileges. Between bare and bare-uid: tells a capability (then bisect
    the set) from UID 0 itself."""
    argv = ["setpriv", "--bounding-set=-all", "--", *WORKLOAD,
            "--config", _config(duration, opm)]
    return _run_workload(argv, duration)


_PRIVATE_TMP = (
    "set -e; mount --make-rslave /; "
    f"mount -t tmpfs -o size={TMPFS_SIZE},mode=1777,nosuid,nodev tmpfs /tmp; "
    f"mount -t tmpfs -o size={TMPFS_SIZE},mode=1777,nosuid,nodev tmpfs /dev/shm; "
    "mkdir -m 700 /tmp/.home; exec \"$@\"")


def bare_privtmp(duration: float, opm: float, tmp: Path) -> list[dict]:
    """bare (root), in a mount namespace of its own with fresh tmpfs on /tmp and /dev/shm and
    HOME=/tmp/.home, TMPDIR=/tmp (as the harness's private areas; they go with the namespace)."""
    argv = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", _PRIVATE_TMP,
            "sh", *WORKLOAD, "--config", _config(duration, opm)]
    env = {**os.environ, "HOME": "/tmp/.home", "TMPDIR": "/tmp"}
    return _run_workload(argv, duration, env=env)


def launch(duration: float, opm: float, tmp: Path) -> list[dict]:
    """The harness's own launch (sandbox.workloads.launcher.launch_screenshot: slice, run's
    UID, private /tmp and /dev/shm with HOME, its environment), host network, and nothing
    else: no sampler, tracer, reaper thread or role sweeps."""
    from sandbox.host import Limits, discover, open_slice
    from sandbox.host.isolation import PrivateFs, allocate_user, release_user
    from sandbox.runner import new_run_id
    from sandbox.workloads.launcher import launch_screenshot
    from sandbox.workloads.screenshot.spec import ScreenshotSpec

    facts = discover()
    run_id = new_run_id()
    run_dir = tmp / "run"
    run_dir.mkdir()
    slice_ = open_slice(run_id, facts.cgroup, Limits())
    user = allocate_user(run_id)
    private_fs = PrivateFs(slice_.name)
    spec = ScreenshotSpec(duration_s=duration, operations_per_minute=opm,
                          context_policy="fresh", network="host", chromium=facts.chromium)
    try:
        with slice_:
            private_fs.create(user)
            workload = launch_screenshot(slice_, spec, run_dir, user=user,
                                         private_fs=private_fs)
            try:
                workload.proc.wait(timeout=duration + 120)
            finally:
                workload.stop(10)
        workload.close()
    finally:
        if private_fs.mounted:
            private_fs.remove()
        release_user(user)
    return _ops((run_dir / "operations.jsonl").read_text().splitlines())


def _harness(*options: str) -> Callable[[float, float, Path], list[dict]]:
    def run(duration: float, opm: float, tmp: Path) -> list[dict]:
        runs_dir = tmp / "runs"
        runs_dir.mkdir()
        subprocess.run([SANDBOX, "run", "--scenario", "smoke", "--duration", f"{duration:g}s",
                        "--ops-per-minute", f"{opm:g}", "--context-policy", "fresh",
                        *options, "--runs-dir", str(runs_dir), "--no-progress", "-q"],
                       capture_output=True, text=True, timeout=duration + 180, check=False)
        (run_dir,) = runs_dir.iterdir()
        return _ops((run_dir / "operations.jsonl").read_text().splitlines())

    run.__doc__ = f"sandbox run {' '.join(options) or '(defaults: isolated network)'}"
    return run


#: name -> (what it changes, how to run it)
VARIANTS: dict[str, Callable[[float, float, Path], list[dict]]] = {
    "bare": bare,
    "bare-cgroup": bare_cgroup,
    "bare-memcg": bare_memcg,
    "bare-home": bare_home,
    "bare-uid": bare_uid,
    "bare-leandriver": bare_leandriver,
    "bare-omnibox": bare_omnibox,
    "bare-uid-omnibox": bare_uid_omnibox,
    "bare-nocapnice": bare_nocapnice,
    "bare-nocaps": bare_nocaps,
    "bare-privtmp": bare_privtmp,
    "launch": launch,
    "harness-min": _harness("--network", "host", "--tracer", "proc-connector",
                            "--sample-interval", "10", "--role-interval", "600"),
    "harness-host": _harness("--network", "host"),
    "harness-host-root": _harness("--network", "host", "--user", "root"),
    "harness": _harness(),
    "harness-settle0": _harness("--network", "host", "--settle-every", "0"),
    "harness-settle3": _harness("--network", "host", "--settle-every", "3"),
}


# -- statistics -----------------------------------------------------------------------------
def _busy_jiffies() -> int:
    """CPU time the whole machine spent not idle (all CPUs), in clock ticks."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, utime + stime in ticks, start time) of every process now."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]),
                                  int(fields[19]))
    return table


def _ours(pid: int, table: dict[int, tuple[int, int, int]], me: int) -> bool:
    """Whether ``pid`` is this bench, one of its descendants or a kernel thread."""
    seen = 0
    while pid > 2 and seen < 64:
        if pid == me:
            return True
        pid, seen = table.get(pid, (1, 0, 0))[0], seen + 1
    return pid == 2 or (pid == me)


class CpuMeter:
    """Every ``interval`` s on a thread: the machine's busy CPU time, and the CPU time of the
    processes that are neither this bench's nor its descendants' (another job on the host)
    plus how many such processes started. Gives both between two wall-clock times (the
    first and the last screenshot of a run), so start-up, teardown and analysis do not
    count."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.readings: list[tuple[float, int, int, int]] = []  # wall, busy, foreign, new
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        me = os.getpid()
        before: dict[int, tuple[int, int, int]] = {}
        foreign = started = 0
        while True:
            busy, table = _busy_jiffies(), _proc_table()
            for pid, (_, cpu, start) in table.items():
                if _ours(pid, table, me):
                    continue
                old = before.get(pid)
                if old is not None and old[2] == start:
                    foreign += cpu - old[1]
                elif before:
                    foreign += cpu
                    started += 1
            before = table
            self.readings.append((time.time(), busy, foreign, started))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> CpuMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> tuple[float, float, int]:
        """(machine CPU s, foreign CPU s, foreign processes started) between the readings
        nearest ``start`` and ``end``."""
        first = min(self.readings, key=lambda r: abs(r[0] - start))
        last = min(self.readings, key=lambda r: abs(r[0] - end))
        return ((last[1] - first[1]) / self._tick, (last[2] - first[2]) / self._tick,
                last[3] - first[3])

    @classmethod
    def wait_quiet(cls, share: float = 0.05, window: float = 5.0, limit: float = 1800.0
                   ) -> float:
        """Wait until the machine was busy less than ``share`` of its CPUs for ``window``
        seconds (at most ``limit``); returns the seconds waited."""
        begin = time.monotonic()
        tick, cpus = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
        while True:
            busy = _busy_jiffies()
            time.sleep(window)
            used = (_busy_jiffies() - busy) / tick / window / cpus
            if used < share or time.monotonic() - begin > limit:
                return time.monotonic() - begin


def summary(ops: list[dict], duration: float, meter: CpuMeter) -> dict:
    first, last = ops[0], ops[-1]
    cpu_s, foreign_s, foreign_started = meter.between(first["wall"], last["wall"])
    by_page = defaultdict(list)
    for o in ops:
        by_page[o["url"].rsplit("/", 1)[-1]].append(o["latency_s"])
    page_medians = [statistics.median(v) for v in by_page.values()]
    return {
        "p50": statistics.median(o["latency_s"] for o in ops),
        "pages": math.exp(statistics.fmean(math.log(m) for m in page_medians)),
        "opm": len(ops) / duration * 60,
        "cpu_per_op": cpu_s / max(len(ops) - 1, 1),
        "n": len(ops),
        "foreign_cpu_s": foreign_s,
        "foreign_started": foreign_started,
        # settle points (docs/settle-points.md): their own time, after the screenshot's
        "settles": len(settles := [o["settle_s"] for o in ops if o.get("settle_s")]),
        "settle_p50": statistics.median(settles) if settles else 0.0,
        "settle_per_op": sum(settles) / len(ops),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ops-per-minute", type=float, default=30.0)
    parser.add_argument("--variants", default="bare,bare-uid,harness-host,harness-host-root",
                        help=f"comma-separated, bare first: {', '.join(VARIANTS)}")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--no-wait-quiet", dest="wait_quiet", action="store_false",
                        help="do not wait for a quiet machine (< 5%% busy for 5 s) before "
                        "each run")
    parser.add_argument("--foreign-limit", type=float, default=1.0,
                        help="redo a run when processes outside this bench used more CPU "
                        "seconds than this during its screenshots (default 1.0)")
    parser.add_argument("--retries", type=int, default=2, help="redos per run at most")
    args = parser.parse_args()
    names = args.variants.split(",")
    if unknown := [n for n in names if n not in VARIANTS]:
        parser.error(f"unknown variant {unknown[0]!r}: {', '.join(VARIANTS)}")
    if names[0] != "bare":
        parser.error("the first variant must be bare (the reference)")
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} kernel "
          f"{platform.release()}, {os.cpu_count()} CPUs; built-in site, context fresh, "
          f"{args.ops_per_minute:g} ops/min, {args.duration:g} s per run, "
          f"{args.rounds} rounds")
    print("# command: " + shlex.join([sys.executable, *sys.argv]))
    for name in names:
        print(f"#   {name}: {' '.join((VARIANTS[name].__doc__ or '').split())}")
    print("# per run: p50 latency s / geometric mean of per-page medians s / machine CPU s "
          "per screenshot (first to last screenshot, all processes)")
    print("round | " + " | ".join(names), flush=True)
    results: list[dict[str, dict]] = []
    for n in range(args.rounds):
        runs: dict[str, dict] = {}
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:  # rotate, so warming favours none
            for attempt in range(args.retries + 1):
                waited = CpuMeter.wait_quiet() if args.wait_quiet else 0.0
                with tempfile.TemporaryDirectory(prefix="sandbox-overhead-",
                                                 dir="/var/tmp") as tmp:
                    Path(tmp).chmod(0o755)
                    with CpuMeter() as meter:
                        ops = VARIANTS[name](args.duration, args.ops_per_minute, Path(tmp))
                runs[name] = summary(ops, args.duration, meter)
                foreign = runs[name]["foreign_cpu_s"]
                if waited > 10 or foreign > args.foreign_limit:
                    print(f"# round {n} {name} attempt {attempt}: waited {waited:.0f} s for a "
                          f"quiet machine; other processes used {foreign:.1f} CPU s "
                          f"({runs[name]['foreign_started']} started) during the run",
                          flush=True)
                if foreign <= args.foreign_limit:
                    break
        results.append(runs)
        print(f"{n} | " + " | ".join(
            f"{r['p50']:.3f} / {r['pages']:.3f} / {r['cpu_per_op']:.2f}"
            + (f" (other: {r['foreign_cpu_s']:.1f} s)" if r["foreign_cpu_s"] > 0.2 else "")
            for r in (runs[name] for name in names)), flush=True)
    print()
    print("variant | median of ratios p50 | median of ratios per-page | ratios p50 per round "
          "| CPU s/op (median) | ops/min (median) | settle s p50 (median) | settle s per op")
    for name in names:
        p50 = [r[name]["p50"] / r["bare"]["p50"] for r in results]
        pages = [r[name]["pages"] / r["bare"]["pages"] for r in results]
        mp, mg = statistics.median(p50), statistics.median(pages)
        print(f"{name} | {mp:.3f} ({(mp - 1) * 100:+.1f}%) | {mg:.3f} ({(mg - 1) * 100:+.1f}%)"
              f" | {' '.join(f'{x:.3f}' for x in p50)} | "
              f"{statistics.median(r[name]['cpu_per_op'] for r in results):.2f} | "
              f"{statistics.median(r[name]['opm'] for r in results):.1f} | "
              f"{statistics.median(r[name]['settle_p50'] for r in results):.3f} | "
              f"{statistics.median(r[name]['settle_per_op'] for r in results):.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "rounds": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
