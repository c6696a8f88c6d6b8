"""Settle points for a workload's own code (standard library only; docs/settle-points.md).

A workload run by ``sandbox run`` finds in ``SANDBOX_SETTLE_FD`` the number of an inherited
AF_UNIX stream socket. When its memory is at its floor it writes one line, ``settle\\n`` or
``settle <label>\\n``, and reads one line back, ``ok\\n``, once the harness took its sample.
Outside a run these helpers do nothing and return False.

- :func:`checkpoint`: any Python program, after it freed what it could.
- :func:`settle` / :func:`settle_async`: a Playwright page (sync / async API): a full GC in
  every page of its browser's contexts, a critical memory-pressure signal to the browser
  (unless ``pressure=False``), then :func:`checkpoint`.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from typing import Any

#: The environment variable holding the socket's fd number.
ENV = "SANDBOX_SETTLE_FD"
#: The longest label the harness keeps (bytes); a longer request line is refused.
MAX_LABEL = 64
#: The longest request line, ``settle <label>\n``.
MAX_LINE = len("settle ") + MAX_LABEL + 1
#: How long checkpoint() waits for the harness's answer.
REPLY_TIMEOUT_S = 10.0
#: After the GC and the pressure signal, what Chromium frees leaves the cgroup's usage over
#: about a second (the corpus: a sample at once sat 4.3 MiB above the floor reached 1.2 s
#: later; one 1 s later was at it): settle() waits this long before its checkpoint.
SETTLE_WAIT_S = 1.0

_lock = threading.Lock()
_channel: socket.socket | None = None


def _socket() -> socket.socket | None:
    """The harness's socket, opened once; None outside a run or when the variable does not
    name a stream socket."""
    global _channel
    if _channel is not None:
        return _channel
    try:
        fd = int(os.environ[ENV])
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = socket.socket(fileno=os.dup(fd))
    except (KeyError, ValueError, OSError):
        return None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.close()
        return None
    sock.settimeout(REPLY_TIMEOUT_S)
    _channel = sock
    return sock


def _request(label: str | None) -> bytes:
    line = "settle" if label is None else f"settle {label}"
    data = line.encode("utf-8", "replace")[:MAX_LINE - 1]
    return data.replace(b"\n", b" ") + b"\n"


def checkpoint(label: str | None = None) -> bool:
    """Tell the harness the workload's memory is at its floor and wait until it took its
    sample. True once it answered; False outside a run (or if the harness is gone)."""
    with _lock:
        sock = _socket()
        if sock is None:
            return False
        try:
            sock.sendall(_request(label))
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(16)
                if not chunk:
                    return False
                reply += chunk
        except OSError:
            return False
        return reply == b"ok\n"


_GC = "HeapProfiler.collectGarbage"
_PRESSURE = ("Memory.simulatePressureNotification", {"level": "critical"})


def _browser(page: Any) -> Any:
    """The page's browser (None for a persistent context's page); a browser as it is."""
    return page if hasattr(page, "new_browser_cdp_session") else page.context.browser


def _pages(page: Any) -> list[Any]:
    browser = _browser(page)
    contexts = browser.contexts if browser is not None else [page.context]
    return [p for context in contexts for p in context.pages if not p.is_closed()]


def settle(page: Any, label: str | None = None, wait_s: float = SETTLE_WAIT_S,
           pressure: bool = True) -> bool:
    """Playwright sync API: bring the browser's memory to its floor (GC, pressure signal,
    ``wait_s`` for what they free to leave), then :func:`checkpoint`. ``page``: any page of
    the browser (closed too), or the browser itself; ``pressure``: False for the GC alone
    (the pressure signal also purges the browser's caches). Does nothing (False) outside a
    run."""
    if _socket() is None:
        return False
    for each in _pages(page):
        cdp = each.context.new_cdp_session(each)
        try:
            cdp.send(_GC)
        finally:
            cdp.detach()
    browser = _browser(page)
    if browser is not None and pressure:
        cdp = browser.new_browser_cdp_session()
        try:
            cdp.send(*_PRESSURE)
        finally:
            cdp.detach()
    time.sleep(wait_s)
    return checkpoint(label)


async def settle_async(page: Any, label: str | None = None,
                       wait_s: float = SETTLE_WAIT_S, pressure: bool = True) -> bool:
    """Playwright async API: as :func:`settle`."""
    import asyncio

    if _socket() is None:
        return False
    for each in _pages(page):
        cdp = await each.context.new_cdp_session(each)
        try:
            await cdp.send(_GC)
        finally:
            await cdp.detach()
    browser = _browser(page)
    if browser is not None and pressure:
        cdp = await browser.new_browser_cdp_session()
        try:
            await cdp.send(*_PRESSURE)
        finally:
            await cdp.detach()
    await asyncio.sleep(wait_s)
    return await asyncio.to_thread(checkpoint, label)
