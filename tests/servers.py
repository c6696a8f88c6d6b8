"""Real Prometheus servers for the tests (Debian's prometheus and prometheus-pushgateway),
started on free loopback ports and stopped after by their own PIDs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(argv: list[str], url: str, log: Path) -> Iterator[str]:
    """Start a server, wait for ``url``/-/ready, stop it (by its own PID) after."""
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is not installed (scripts/test.sh installs it)")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
        else:
            pytest.fail(f"{argv[0]} did not start: {log.read_text()}")
        assert proc.poll() is None, log.read_text()  # ready is ours, not another server's
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway's URL. Debian's persists to /var/lib/prometheus by default (a stale
    group there would be read back): this one to ``tmp_path``."""
    url = f"http://127.0.0.1:{free_port()}"
    with server(["prometheus-pushgateway", f"--web.listen-address={url[7:]}",
                 f"--persistence.file={tmp_path / 'pushgateway.data'}"], url,
                tmp_path / "pushgateway.log"):
        yield url
