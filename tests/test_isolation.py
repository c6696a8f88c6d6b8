"""Run isolation against a hostile workload, through `sandbox run` on real cgroups: a symlink
swap cannot make root delete outside the run, runs of the same moment cannot see, blame or
harm each other, orphans are reaped as they die, a crashed workload is a finding, and the
workload log cannot fill the disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sandbox.host.isolation import UID_RANGE, uid_pids

from .cli_helpers import only_run_dir, report_of, sandbox, start_sandbox, wait_for_lines


def run_cmd(runs_dir: Path, script: str, *opts: str, duration: str = "6s"):
    return sandbox("run", "--duration", duration, "--no-progress", "-q", "--grace", "1s",
                   "--runs-dir", str(runs_dir), *opts, "--", "sh", "-c", script)


@pytest.fixture
def decoy():
    """A root-owned directory outside every run, with a file in it."""
    path = Path("/var/lib") / f"sandbox-decoy-{os.getpid()}"
    path.mkdir(mode=0o755)
    (path / "precious").write_text("keep me")
    yield path
    shutil.rmtree(path)


def test_symlink_swap_cannot_make_root_delete_outside_the_run(needs_cgroups, runs_dir, decoy):
    """The attack of the issue (a 40-character runs directory, TMPDIR renamed and replaced by
    a symlink to a root directory) and its HOME twin: the decoy survives."""
    deep = runs_dir / ("d" * 40)
    deep.mkdir(mode=0o755)
    script = (f'mv "$TMPDIR" "$TMPDIR.gone"; ln -s {decoy} "$TMPDIR"; '
              f'ln -s {decoy} "$HOME/link"; mkdir "$HOME/d" && mv "$HOME/d" "$HOME/e" && '
              f'ln -s {decoy} "$HOME/d"; ln -s {decoy} /tmp/link; sleep 2')
    out = run_cmd(deep, script)
    assert out.returncode in (0, 2), out.stderr
    assert (decoy / "precious").read_text() == "keep me"
    cleanup = json.loads((only_run_dir(deep) / "cleanup.json").read_text())
    home = {Path(f["path"]).name for f in cleanup["file_cleanup"]["home_files"]}
    assert {"link", "d", "e"} <= home
    assert not (only_run_dir(deep) / "home").exists()  # HOME was in the run's tmpfs
    private = [f for f in cleanup["file_cleanup"]["leftover_files"]
               if f["where"] == "private /tmp"]
    # /tmp is a mount point the workload cannot rename: its links land inside it
    assert sorted(f["path"] for f in private) == ["/tmp/link", f"/tmp/{decoy.name}"]
    assert not any(f["is_dir"] for f in private)


def test_any_runs_directory_works(needs_cgroups, runs_dir):
    """A runs directory the run's user cannot reach (mode 700): HOME and TMPDIR are in the
    run's tmpfs, so the run works, and what it kept in HOME is listed apart."""
    private = runs_dir / "private"
    private.mkdir(mode=0o700)
    out = run_cmd(private, 'test "$HOME" = /tmp/.home && test "$(whoami)" != root && '
                           'echo kept > "$HOME/note" && cd && pwd')
    assert out.returncode == 0, out.stderr
    run_dir = only_run_dir(private)
    assert "/tmp/.home" in (run_dir / "workload.log").read_text()
    cleanup = json.loads((run_dir / "cleanup.json").read_text())
    assert [(Path(f["path"]).name, f["where"]) for f in cleanup["file_cleanup"]["home_files"]] \
        == [("note", "private HOME")]
    assert cleanup["file_cleanup"]["leftover_files"] == []


def test_runs_at_once_each_get_their_own_leftovers(needs_cgroups, runs_dir):
    """Two leaky runs and one clean run at the same time: each leftover is its own run's and
    the clean run passes."""
    dirs = {name: runs_dir / name for name in ("leak1", "leak2", "clean")}
    leak = ('echo x > /dev/shm/leak-$$; echo y > /tmp/leak-$$; echo z > /var/tmp/host-leak-$$; '
            'sleep 4')
    procs = {name: start_sandbox("run", "--duration", "6s", "--no-progress", "-q", "--grace",
                                 "1s", "--runs-dir", str(path), "--", "sh", "-c",
                                 "sleep 4" if name == "clean" else leak)
             for name, path in dirs.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == (0 if name == "clean" else 2), (name, out, err)
    uids = set()
    for name in ("leak1", "leak2"):
        report = report_of(dirs[name])
        left = report["file_cleanup"]["leftover_files"]
        assert sorted(f["where"] for f in left) == ["host /var/tmp", "private /dev/shm",
                                                    "private /tmp"], left
        assert len({f["uid"] for f in left}) == 1
        uids |= {f["uid"] for f in left}
        assert not any(Path(f["path"]).exists() for f in left if f["where"].startswith("host"))
    assert len(uids) == 2 and all(uid in UID_RANGE for uid in uids)
    assert report_of(dirs["clean"])["file_cleanup"]["leftover_files"] == []


def test_a_run_cannot_read_write_or_kill_another(needs_cgroups, runs_dir):
    victim_dir, attacker_dir = runs_dir / "victim", runs_dir / "attacker"
    victim = start_sandbox("run", "--duration", "25s", "--no-progress", "-q", "--runs-dir",
                           str(victim_dir), "--", "sh", "-c",
                           "echo secret > /tmp/secret; echo secret > /dev/shm/secret; sleep 60")
    try:
        wait_for_lines(victim_dir, "samples.jsonl", 4)
        uid = json.loads((only_run_dir(victim_dir) / "run.json").read_text())["user"]["uid"]
        deadline = time.monotonic() + 10
        while not (pids := uid_pids(uid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = min(pids)
        attack = (f"cat /proc/{pid}/root/tmp/secret; echo read=$?; "
                  f"echo x > /proc/{pid}/root/dev/shm/secret; echo write=$?; "
                  f"ls /tmp /dev/shm; kill -9 {pid}; echo kill=$?; "
                  f"ls /run/sandbox; echo list=$?")
        out = run_cmd(attacker_dir, attack, duration="5s")
        log = (only_run_dir(attacker_dir) / "workload.log").read_text()
        assert out.returncode == 0, (out.stderr, log)
        for step in ("read", "write", "kill", "list"):
            assert f"{step}=0" not in log, log
        assert "secret" not in log.replace("/secret", "")
        assert psutil.pid_exists(pid)  # the victim is untouched
    finally:
        out, err = victim.communicate(timeout=120)
    report = report_of(victim_dir)
    assert report["workload_exit"]["ended_by"] == "harness", err
    assert victim.returncode == 2  # its own leftovers, nothing else
    where = sorted(f["where"] for f in report["file_cleanup"]["leftover_files"])
    assert where == ["private /dev/shm", "private /tmp"]


def test_orphaned_zombies_are_reaped_as_they_die(needs_cgroups, runs_dir):
    """A fork-racer whose children orphan and die at once: no zombie child of the harness
    lives longer than a second (they would count against pids.max)."""
    racer = "i=0; while [ $i -lt 300 ]; do (sh -c 'exit 0' &); i=$((i+1)); sleep 0.02; done"
    proc = start_sandbox("run", "--duration", "12s", "--no-progress", "-q", "--runs-dir",
                         str(runs_dir), "--", "sh", "-c", racer)
    first_seen: dict[tuple[int, float], float] = {}
    oldest = 0.0
    while proc.poll() is None:
        now = time.monotonic()
        for child in psutil.Process(proc.pid).children():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    key = (child.pid, child.create_time())
                    oldest = max(oldest, now - first_seen.setdefault(key, now))
            except psutil.Error:
                continue
        time.sleep(0.05)
    proc.communicate()
    assert proc.returncode == 0
    assert first_seen, "the racer made no orphan the harness had to reap"
    assert oldest < 1.0, f"a zombie stayed {oldest:.2f} s ({len(first_seen)} zombies seen)"
    samples = (only_run_dir(runs_dir) / "samples.jsonl").read_text().splitlines()
    assert max(json.loads(line)["pids_current"] or 0 for line in samples) < 50


@pytest.mark.parametrize("script, opts, finding", [
    ("sleep 1; exit 7", (), "exited with status 7"),
    ("sleep 1; kill -SEGV $$", (), "killed by SIGSEGV"),
    ("sleep 1; exec python3 -c 'bytearray(200_000_000)'", ("--memory-max", "32M"), "OOM killer"),
])
def test_a_crashed_workload_is_critical(needs_cgroups, runs_dir, script, opts, finding):
    out = run_cmd(runs_dir, script, *opts)
    assert out.returncode == 1, out.stderr
    findings = report_of(runs_dir)["findings"]
    assert any(f["check"] == "workload" and finding in f["message"] for f in findings), findings


def test_workload_log_is_capped_and_rotated(needs_cgroups, runs_dir):
    out = run_cmd(runs_dir, "head -c 3000000 /dev/zero | tr '\\0' 'x'; sleep 1",
                  "--log-max", "1M")
    run_dir = only_run_dir(runs_dir)
    assert out.returncode == 0, out.stderr
    assert (run_dir / "workload.log").stat().st_size <= 2**20
    assert (run_dir / "workload.log.1").stat().st_size <= 2**20
    log = json.loads((run_dir / "run.json").read_text())["workload_log"]
    assert log["cap_bytes"] == 2**20 and log["rotations"] >= 2 and log["error"] is None


def test_keep_escapes_writes_its_report_and_leaves_no_cgroup(needs_cgroups, needs_chromium,
                                                             runs_dir):
    out = sandbox("run", "--scenario", "smoke", "--duration", "5s", "--inject", "escape",
                  "--keep-escapes", "--grace", "1s", "--no-progress", "-q", "--runs-dir",
                  str(runs_dir))
    report = report_of(runs_dir)
    kept = [e["pid"] for e in report["escapes"]]
    try:
        assert out.returncode == 1, out.stderr
        assert kept and all(psutil.pid_exists(p) for p in kept)
        assert report["after_teardown"]["cgroup_dirs_left"] == []
        assert report["after_teardown"]["escapes_kept"] == kept
    finally:
        for pid in kept:
            psutil.Process(pid).kill()
            psutil.Process(pid).wait(5)


@pytest.fixture
def tiny_runs_dir():
    """A runs directory on an 8 MiB tmpfs of the test's own."""
    path = Path("/var/tmp") / f"sandbox-tiny-{os.getpid()}"
    path.mkdir(mode=0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(path)],
                   check=True)
    yield path
    subprocess.run(["umount", str(path)], check=True)
    path.rmdir()


def test_full_disk_ends_the_run_cleanly_as_incomplete(needs_cgroups, tiny_runs_dir):
    # the workload's output fills the runs directory's disk (its HOME is in its own tmpfs)
    out = run_cmd(tiny_runs_dir, "head -c 20000000 /dev/zero; sleep 30", "--log-max", "64M",
                  duration="25s")
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") <= 2, out.stderr
    assert "No space left on device" in out.stderr
    report = report_of(tiny_runs_dir)  # written once the disk had room again
    assert report["exit_code"] == 3 and report["n_samples"] > 0
    assert any(f["level"] == "incomplete" and "No space" in f["message"]
               for f in report["findings"])
    run = json.loads((only_run_dir(tiny_runs_dir) / "run.json").read_text())
    assert run["stopped_by"] == "disk full"
    assert run["workload_log"]["cut_bytes"] > 1_000_000  # cut to make room for the records


def test_fork_bomb_is_held_by_pids_max_and_torn_down(needs_cgroups, runs_dir):
    bomb = "b() { sleep 4 & b & b & wait; }; b"
    out = run_cmd(runs_dir, bomb, "--pids-max", "64", duration="6s")
    report = report_of(runs_dir)
    assert out.returncode in (0, 2), out.stderr  # it dies out by itself, or leaves orphans
    assert report["after_teardown"]["clean"] is True, report["after_teardown"]
    assert uid_pids(report["run_user"]["uid"]) == set()
    samples = (only_run_dir(runs_dir) / "samples.jsonl").read_text().splitlines()
    peak = max(json.loads(line)["pids_current"] or 0 for line in samples)
    assert 32 <= peak <= 64, peak  # it really forked, up to the limit and no further


def test_workload_cannot_signal_the_harness_or_tamper_with_its_run(needs_cgroups, runs_dir):
    attack = (f'kill -TERM $PPID; echo kill=$?; cd {runs_dir}/2*; rm samples.jsonl; echo rm=$?; '
              'echo x > report.json; echo write=$?; chmod 777 .; echo chmod=$?; sleep 2')
    out = run_cmd(runs_dir, attack)
    run_dir = only_run_dir(runs_dir)
    log = (run_dir / "workload.log").read_text()
    assert out.returncode == 0, (out.stderr, log)
    for step in ("kill", "rm", "write", "chmod"):
        assert f"{step}=0" not in log, log
    assert json.loads((run_dir / "run.json").read_text())["stopped_by"] == "workload exited"
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) >= 4
    assert json.loads((run_dir / "report.json").read_text())["exit_code"] == 0


def test_a_port_left_listening_is_named(needs_cgroups, runs_dir):
    """A server the workload started and left running: an orphan, and the port it still
    holds is in the finding; the clean twin (the server stopped) has neither."""
    leaky = ('setsid python3 -m http.server 18931 --bind 127.0.0.1 >/dev/null 2>&1 & '
             'sleep 2')
    clean = ('python3 -m http.server 18932 --bind 127.0.0.1 >/dev/null 2>&1 & '
             'sleep 2; kill $!; wait')
    for name, script in (("leaky", leaky), ("clean", clean)):
        out = run_cmd(runs_dir / name, script)
        report = report_of(runs_dir / name)
        if name == "clean":
            assert out.returncode == 0, report["findings"]
            continue
        assert out.returncode == 2, report["findings"]
        (orphans,) = [f for f in report["findings"] if f["check"] == "orphans"]
        assert "still listening on 127.0.0.1:18931" in orphans["message"], orphans


MAIN_PY = """import os, helper
print("helper says", helper.VALUE)
try:
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "out.txt"), "w")
except OSError as exc:
    print("own directory:", exc.strerror)
with open("/tmp/left-behind", "w") as f:
    f.write("x")
"""


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "in-cwd"])
def test_a_script_and_runs_directory_under_tmp_work(needs_cgroups, tmp_path, relative):
    """A user's script in /tmp that imports a module next to it, run by its path or from its
    directory, with the runs directory in /tmp too: the workload (whose /tmp is its own)
    sees the script's directory where it is, read-only; what it leaves in its own /tmp is
    still found, the exposed directory is not a leftover."""
    project = tmp_path / "proj"  # /tmp/pytest-of-root/... (mode 700 on the host)
    project.mkdir()
    (project / "helper.py").write_text("VALUE = 42\n")
    (project / "main.py").write_text(MAIN_PY)
    runs = tmp_path / "runs"
    script = "main.py" if relative else str(project / "main.py")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--duration", "5s", "--no-progress", "-q",
         "--grace", "1s", "--runs-dir", str(runs), "--", "python3", script],
        capture_output=True, text=True, timeout=240, cwd=project if relative else None)
    run_dir = only_run_dir(runs)
    log = (run_dir / "workload.log").read_text()
    assert "helper says 42" in log and "own directory: Read-only file system" in log, log
    assert not (project / "out.txt").exists()
    report = report_of(runs)
    assert [(f["path"], f["where"]) for f in report["file_cleanup"]["leftover_files"]] == \
        [("/tmp/left-behind", "private /tmp")]
    assert done.returncode == 2 and report["workload_exit"]["returncode"] == 0, done.stderr
