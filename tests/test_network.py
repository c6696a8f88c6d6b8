"""Network isolation for real: a pyroute2 namespace with only loopback, entered before exec."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from pyroute2 import netns

from sandbox.workloads.network import IsolatedNetwork, NetworkError, cleanup_stale_namespaces

# Connects to each address given; prints "ok" or the errno name, one line each.
PROBE = """
import errno, socket, sys
server = socket.create_server(("127.0.0.1", 0))
for host in sys.argv[1:]:
    port = server.getsockname()[1] if host == "127.0.0.1" else 9
    try:
        socket.create_connection((host, port), timeout=5).close()
        print("ok")
    except OSError as exc:
        print(errno.errorcode.get(exc.errno, str(exc)))
"""


@pytest.fixture
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")


def _interfaces(enter) -> list[str]:
    out = subprocess.run(["cat", "/proc/net/dev"], preexec_fn=enter, capture_output=True,
                         text=True, check=True).stdout
    return sorted(line.split(":")[0].strip() for line in out.splitlines()[2:])


def test_only_loopback_and_no_route_out(needs_root):
    with IsolatedNetwork(f"test-{secrets.token_hex(4)}") as net:
        assert net.path.exists() and net.inode() != os.stat("/proc/self/ns/net").st_ino
        assert _interfaces(net.enter) == ["lo"]
        out = subprocess.run([sys.executable, "-c", PROBE, "127.0.0.1", "10.255.255.1"],
                             preexec_fn=net.enter, capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["ok", "ENETUNREACH"]
    assert not net.path.exists()


def test_duplicate_name_is_a_clear_error(needs_root):
    with IsolatedNetwork(f"test-{secrets.token_hex(4)}") as net:
        with pytest.raises(NetworkError, match="cannot create network namespace"):
            IsolatedNetwork(net.name.removeprefix("sandbox-")).create()
        assert net.path.exists()  # the failed attempt did not remove the first one


def test_cleanup_removes_only_unused_namespaces(needs_root):
    stale = IsolatedNetwork(f"test-{secrets.token_hex(4)}").create()
    busy = IsolatedNetwork(f"test-{secrets.token_hex(4)}").create()
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=busy.enter)
    try:
        removed = cleanup_stale_namespaces()
        assert stale.name in removed and not stale.path.exists()
        assert busy.name not in removed and busy.name in netns.listnetns()
    finally:
        sleeper.kill()
        sleeper.wait()
        stale.remove()
        busy.remove()
    assert not busy.path.exists()
