"""Names a workload makes are untrusted: process titles and file names holding rich markup,
terminal escapes, newlines, HTML and bytes that are not UTF-8 are shown escaped in every
output, never interpreted (sandbox.untrusted). A hostile run and its clean twin, for real,
at once; then the helpers one by one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sandbox.untrusted import html_text, markup, md_text, rich_text, shown

#: what a hostile workload puts into a file name (``[/]``, with its slash, goes in a title)
HOSTILE = b"[bold]\x1b[2J\a\r\n<script>\xff\xfe"
#: the same as every output shows it
HOSTILE_SHOWN = "[bold]\\x1b[2J\\x07\\r\\n<script>\\xff\\xfe"

#: argv[1:]: file names for the private /tmp, then "--", then process titles (hex: argv cannot
#: hold every byte). Each title makes two processes that outlive the workload: one sets its
#: comm (prctl PR_SET_NAME, 15 bytes) to it, one is `sleep` with it as argv[0].
WORKLOAD = r"""
import ctypes, os, sys, time
args = [bytes.fromhex(a) if a != "--" else a for a in sys.argv[1:]]
split = args.index("--")
for name in args[:split]:
    with open(b"/tmp/" + name, "wb") as f:
        f.write(b"x" * 100)
for title in args[split + 1:]:
    if os.fork() == 0:
        os.setsid()
        ctypes.CDLL(None).prctl(15, title[:15])
        time.sleep(120)
    if os.fork() == 0:
        os.setsid()
        os.execv("/bin/sleep", [title, "120"])
time.sleep(2.5)
"""
#: comm holds 15 bytes: the titles split HOSTILE's pieces
TITLES = [b"[/]\x1b[2J\a\r\n\xff\xfe", b"<script>[bold]"]

FORMATS = {"report.txt", "report.json", "report.html", "junit.xml", "metrics.prom",
           "report.md"}


def _start(runs: Path, files: list[bytes], titles: list[bytes]) -> subprocess.Popen:
    hexed = [x.hex() for x in files] + ["--"] + [x.hex() for x in titles]
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "run", "--duration", "20s", "--runs-dir",
         str(runs), "--", "python3", "-c", WORKLOAD, *hexed],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _reports(runs: Path) -> dict[str, bytes]:
    (run_dir,) = runs.iterdir()
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name in FORMATS}


def test_hostile_names_are_shown_escaped_in_every_output(needs_cgroups, runs_dir):
    hostile_runs, clean_runs = runs_dir / "hostile", runs_dir / "clean"
    hostile = _start(hostile_runs, [HOSTILE, b"[bold red]x"], TITLES)
    clean = _start(clean_runs, [b"plain-file_1.txt"], [b"worker-1"])
    out = {name: proc.communicate(timeout=120) + (proc.returncode,)
           for name, proc in (("hostile", hostile), ("clean", clean))}
    stdout, stderr, code = out["hostile"]
    assert code == 2, stderr.decode(errors="replace")
    terminal = stdout + stderr
    for raw in (b"\x1b", b"\a", b"\r", b"\xff"):
        assert raw not in terminal
    terminal.decode("utf-8")  # valid UTF-8: no undecodable byte passed through
    assert "internal error" not in terminal.decode()

    files = _reports(hostile_runs)
    assert set(files) == FORMATS  # every format rendered, nothing else (no *.tmp)
    for name, data in files.items():
        text = data.decode("utf-8")
        assert not any(ch in text for ch in "\x1b\a\r"), name
    txt = files["report.txt"].decode()
    assert "(<script>[bold])" in txt and "([/]\\x1b[2J\\x07\\r\\n\\xff\\xfe)" in txt
    assert "/tmp/[bold red]x" in txt
    md = files["report.md"].decode()
    assert "<script" not in md and "(&lt;script&gt;\\[bold\\])" in md
    assert "/tmp/\\[bold red\\]x" in md
    html = files["report.html"].decode()
    assert "<script" not in html and "&lt;script&gt;[bold]" in html
    suite = ET.fromstring(files["junit.xml"])
    failures = " ".join(f.get("message") for f in suite.iter("failure"))
    assert "/tmp/" + HOSTILE_SHOWN in failures and "/tmp/[bold red]x" in failures
    doc = json.loads(files["report.json"])
    paths = doc["file_cleanup"]["remaining_temp_files"]
    assert "/tmp/" + HOSTILE.decode("utf-8", "surrogateescape") in paths
    comms = {o["comm"] for o in doc["process_cleanup"]["orphans"]}
    assert {t.decode("utf-8", "surrogateescape") for t in TITLES} <= comms
    argv0 = {o["cmdline"][0] for o in doc["process_cleanup"]["orphans"]}
    assert "<script>[bold]" in argv0  # (psutil reads cmdline with universal newlines: \r\n→\n)

    stdout, stderr, code = out["clean"]
    assert code == 2, stderr.decode(errors="replace")
    files = _reports(clean_runs)
    assert set(files) == FORMATS
    for name in ("report.txt", "report.md", "report.html"):
        assert "/tmp/plain-file_1.txt" in files[name].decode().replace("\\_", "_"), name
        assert "worker-1" in files[name].decode(), name
    failures = " ".join(f.get("message") for f in ET.fromstring(files["junit.xml"])
                        .iter("failure"))
    assert "/tmp/plain-file_1.txt" in failures and "worker-1" in failures


@pytest.mark.parametrize(("name", "expected"), [
    ("/tmp/plain-file_1.txt", "/tmp/plain-file_1.txt"),
    ("chromium --type=renderer", "chromium --type=renderer"),
    ("naïve 日本", "naïve 日本"),
    ("[/]", "[/]"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("\a\r\n\t", "\\x07\\r\\n\\t"),
    (b"\xff\xfe", "\\xff\\xfe"),
    ("x\udcffy", "x\\xffy"),  # an undecodable byte read with surrogateescape
    ("back\\slash", "back\\\\slash"),  # an escape cannot be forged
    ("rtl\u202eevil", "rtl\\u202eevil"),
    ("\ufffe", "\\ufffe"),
    (Path("/tmp/x"), "/tmp/x"),
    (None, ""),
    (42, "42"),
])
def test_shown(name, expected):
    assert shown(name) == expected
    shown(name).encode("utf-8")


def test_rich_never_reads_markup_from_a_name():
    from rich.console import Console

    console = Console(record=True, width=80, no_color=True, force_terminal=False)
    console.print(rich_text("/tmp/[bold red]x [/]"))
    console.print(f"[bold]{markup('[/] [bold red]y')}[/]")
    assert console.export_text() == "/tmp/[bold red]x [/]\n[/] [bold red]y\n"


def test_html_and_markdown_literals():
    assert html_text('<script>"x"&') == "&lt;script&gt;&quot;x&quot;&amp;"
    md = md_text("<img src=x> [a](http://e.com) ![i](j) *b* _c_ `d` a|b www.e.com @u \x1b")
    assert "<" not in md and ">" not in md
    assert not re.search(r"(?<!\\)[][!*_`|@]", md.replace("\\\\", ""))  # each escaped
    assert "http://" not in md and "www.e" not in md
    assert "\\\\x1b" in md  # shown's backslash, itself escaped
    assert md_text("plain-name 1.0") == "plain-name 1.0"


def test_logging_shows_names_escaped():
    import logging

    from sandbox.logs import SafeFormatter

    record = logging.LogRecord("sandbox", logging.WARNING, __file__, 1,
                               "killed %s", ("\x1b[2J\udcff\n",), None)
    line = SafeFormatter().format(record)
    assert line.endswith("killed \\x1b[2J\\xff\\n") and "\n" not in line


def test_a_hostile_title_hides_no_process_from_attribution():
    """/proc/<pid>/status starts with the title: read as UTF-8 it raised (uid_pids) or came
    back empty (ownership.uids), so a title of undecodable bytes hid the process's UID."""
    import os

    from sandbox.host.isolation import uid_pids
    from sandbox.host.ownership import uids

    code = ("import ctypes, time; ctypes.CDLL(None).prctl(15, b'\\xff\\xfe[/]\\x1b'); "
            "print(flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        assert Path(f"/proc/{proc.pid}/comm").read_bytes() == b"\xff\xfe[/]\x1b\n"
        assert uids(proc.pid) == {os.getuid()}
        assert proc.pid in uid_pids(os.getuid())
    finally:
        proc.kill()
        proc.wait()
