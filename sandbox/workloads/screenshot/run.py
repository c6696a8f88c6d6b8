"""The operation loop: Playwright (async API) driving system Chromium, paced evenly, one JSON
line per operation on stdout, the injections applied, a bounded shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import replace
from typing import Any, TextIO

from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from sandbox import settle_points
from sandbox.model.operation import JsHeapMeasurement, Operation
from sandbox.workloads.screenshot import inject
from sandbox.workloads.screenshot.spec import CHROMIUM_ARGS, ScreenshotSpec
from sandbox.workloads.site import SiteServer

HEAP_CHUNK_BYTES = 1 << 20  # V8 keeps arrays up to this size in fast (8 bytes/double) mode
_HEAP_PUSH = """([chunks, n]) => {
  window.__leak = window.__leak || [];
  for (let i = 0; i < chunks; i++) window.__leak.push(new Array(n).fill(Math.random()));
  return window.__leak.length;
}"""
_STOP_TIMEOUT_S = 5.0


class Emitter:
    """Writes JSON lines to stdout, flushed one by one; ``t`` counts from the clock origin."""

    def __init__(self, origin: float, out: TextIO = sys.stdout) -> None:
        self.origin = origin
        self.out = out

    def stamp(self, mono: float) -> dict[str, float]:
        return {"t": round(mono - self.origin, 4), "wall": round(time.time(), 4)}

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, separators=(", ", ": ")) + "\n")
        self.out.flush()


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class ScreenshotWorkload:
    """One browser, one operation loop; ``run()`` returns the process exit code."""

    def __init__(self, spec: ScreenshotSpec, run_id: str, emitter: Emitter) -> None:
        self.spec = spec
        self.run_id = run_id
        self.emitter = emitter
        self.stop = asyncio.Event()
        self.stopped_by = "duration"
        self.shared: BrowserContext | None = None
        self.heap_page: Page | None = None
        self.kept: list[Page] = []
        self.injected: dict[str, Any] = {}
        self.failed = 0
        self.watch_page: Page | None = None  # --js-heap: a page open for the whole run
        self.heap_measured = -math.inf

    # -- setup ------------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        self.stopped_by = signal.Signals(signum).name
        self.stop.set()

    async def _new_context(self, browser: Browser) -> BrowserContext:
        width, height = self.spec.viewport
        return await browser.new_context(viewport={"width": width, "height": height})

    async def _start_injections(self, browser: Browser) -> None:
        kinds = self.spec.inject
        if "orphan" in kinds:
            self.injected["orphan"] = {"pid": inject.start_daemon("orphan")}
        if "escape" in kinds:
            targets = self.spec.escape_targets
            self.injected["escape"] = {"pid": inject.start_daemon("escape", targets),
                                       "targets": targets}
        if "heap" in kinds:
            context = self.shared or await self._new_context(browser)
            self.heap_page = await context.new_page()
            self.injected["heap"] = {"arrays": 0, "rate_mb": self.spec.inject_rate_mb}
        if "pages" in kinds:
            self.injected["pages"] = {"kept": 0}
        if "tmpfile" in kinds:
            self.injected["tmpfile"] = {"files": 0}

    # -- one operation ------------------------------------------------------------------------
    async def _screenshot(self, browser: Browser, url: str) -> int:
        timeout_ms = self.spec.operation_timeout_s * 1000
        context = self.shared or await self._new_context(browser)
        page = await context.new_page()
        try:
            await page.goto(url, timeout=timeout_ms, wait_until="load")
            return len(await page.screenshot(type="png", timeout=timeout_ms))
        finally:
            if "pages" in self.spec.inject:
                self.kept.append(page)
                self.injected["pages"]["kept"] = len(self.kept)
            else:
                with contextlib.suppress(PlaywrightError):
                    await page.close()
                    if context is not self.shared:
                        await context.close()

    async def _operation(self, browser: Browser, n: int, url: str) -> Operation:
        start = time.monotonic()
        nbytes, error = 0, None
        try:
            nbytes = await asyncio.wait_for(self._screenshot(browser, url),
                                            2 * self.spec.operation_timeout_s + 5)
        except (PlaywrightError, TimeoutError, OSError) as exc:
            error = _error_line(exc)
            self.failed += 1
        return Operation(op=n, **self.emitter.stamp(start), url=url,
                         latency_s=round(time.monotonic() - start, 4), bytes=nbytes,
                         ok=error is None, error=error)

    async def _after_operation(self, n: int) -> None:
        """Per-operation injections, after the operation's latency was taken."""
        try:
            if self.heap_page is not None:
                chunks = math.ceil(self.spec.inject_rate_mb)
                per_chunk = int(self.spec.inject_rate_mb * HEAP_CHUNK_BYTES / chunks / 8)
                arrays = await self.heap_page.evaluate(_HEAP_PUSH, [chunks, per_chunk])
                self.injected["heap"]["arrays"] = arrays
            if "tmpfile" in self.spec.inject:
                inject.leave_files(self.run_id, n)
                self.injected["tmpfile"]["files"] += 2
        except (PlaywrightError, OSError) as exc:
            print(f"injection failed: {_error_line(exc)}", file=sys.stderr, flush=True)

    async def _open_watch_page(self, browser: Browser, url: str) -> None:
        """--js-heap: a page kept open on the first URL for the whole run, as a user keeps a
        dashboard open; its heap is measured with the other long-lived pages."""
        context = self.shared or await self._new_context(browser)
        self.watch_page = await context.new_page()
        try:
            await self.watch_page.goto(url, timeout=self.spec.operation_timeout_s * 1000)
        except PlaywrightError as exc:
            print(f"js-heap watch page: {_error_line(exc)}", file=sys.stderr, flush=True)

    def _long_lived(self) -> list[Page]:
        pages = [self.watch_page, self.heap_page, *self.kept]
        return [p for p in pages if p is not None and not p.is_closed()]

    async def _measure_js_heap(self) -> None:
        """After a forced GC in each long-lived page (DevTools protocol): the JS heap in use,
        DOM nodes and event listeners, summed; one ``jsheap`` record on stdout."""
        now = time.monotonic()
        if not self.spec.js_heap_interval_s or now - self.heap_measured \
                < self.spec.js_heap_interval_s:
            return
        self.heap_measured = now
        used = nodes = listeners = measured = 0
        for page in self._long_lived():
            try:
                cdp = await page.context.new_cdp_session(page)
                try:
                    await cdp.send("HeapProfiler.collectGarbage")
                    heap = await cdp.send("Runtime.getHeapUsage")
                    await cdp.send("Performance.enable")
                    metrics = {m["name"]: m["value"] for m in
                               (await cdp.send("Performance.getMetrics"))["metrics"]}
                finally:
                    await cdp.detach()
            except PlaywrightError as exc:
                print(f"js-heap: {_error_line(exc)}", file=sys.stderr, flush=True)
                continue
            used += int(heap["usedSize"])
            nodes += int(metrics.get("Nodes", 0))
            listeners += int(metrics.get("JSEventListeners", 0))
            measured += 1
        self.emitter.emit(JsHeapMeasurement(**self.emitter.stamp(now), pages=measured,
                                            used_bytes=used, dom_nodes=nodes,
                                            listeners=listeners).to_record())

    async def _settle(self, browser: Browser, n: int, slot_end: float) -> float:
        """A settle point after operation ``n``: a full GC in every open page, a critical
        memory-pressure signal to the browser, a wait for the memory they free to leave
        (SETTLE_WAIT_S, at most until ``slot_end``, the next operation's start), then the
        harness's sample (sandbox.settle_points.checkpoint); returns the seconds it took."""
        start = time.monotonic()
        try:
            for context in browser.contexts:
                for page in context.pages:
                    cdp = await context.new_cdp_session(page)
                    try:
                        await cdp.send("HeapProfiler.collectGarbage")
                    finally:
                        await cdp.detach()
            cdp = await browser.new_browser_cdp_session()
            try:
                await cdp.send("Memory.simulatePressureNotification", {"level": "critical"})
            finally:
                await cdp.detach()
        except PlaywrightError as exc:
            print(f"settle: {_error_line(exc)}", file=sys.stderr, flush=True)
        await asyncio.sleep(max(0.0, min(settle_points.SETTLE_WAIT_S,
                                         slot_end - time.monotonic())))
        await asyncio.to_thread(settle_points.checkpoint, f"op {n}")
        return round(time.monotonic() - start, 4)

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self, browser: Browser, urls: list[str]) -> int:
        """Operations every ``interval`` from the first one until ``duration_s`` has passed
        (an operation that overruns its slot delays the next; missed slots are not made up)."""
        begin = time.monotonic()
        deadline = begin + self.spec.duration_s
        next_start, n = begin, 0
        while not self.stop.is_set() and next_start < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, next_start - time.monotonic()))
            if self.stop.is_set():
                break
            op_start = time.monotonic()
            operation = await self._operation(browser, n, urls[n % len(urls)])
            await self._after_operation(n)
            every = self.spec.settle_every
            if every and (n + 1) % every == 0:  # its time counts inside the schedule
                operation = replace(operation, settle_s=await self._settle(
                    browser, n, op_start + self.spec.interval_s))
            self.emitter.emit(operation.to_record())
            await self._measure_js_heap()
            n += 1
            next_start = op_start + self.spec.interval_s
        return n

    async def _close(self, browser: Browser) -> str:
        try:
            await asyncio.wait_for(browser.close(), self.spec.close_timeout_s)
        except TimeoutError:
            return "timeout"
        except PlaywrightError as exc:
            return _error_line(exc)
        return "ok"

    async def run(self, urls: list[str]) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        playwright = await async_playwright().start()
        try:
            browser = await playwright.chromium.launch(
                executable_path=self.spec.chromium, headless=True, args=list(CHROMIUM_ARGS),
                timeout=60_000,
            )
        except PlaywrightError as exc:
            print(f"cannot launch Chromium {self.spec.chromium}: {_error_line(exc)}",
                  file=sys.stderr, flush=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(playwright.stop(), _STOP_TIMEOUT_S)
            return 1
        self.emitter.emit({"kind": "ready", **self.emitter.stamp(time.monotonic()),
                           "pid": os.getpid(), "browser": browser.version, "urls": urls})
        operations, close = 0, "not reached"
        try:
            if self.spec.context_policy == "reuse":
                self.shared = await self._new_context(browser)
            await self._start_injections(browser)
            if self.spec.js_heap_interval_s:
                await self._open_watch_page(browser, urls[0])
            operations = await self._loop(browser, urls)
        finally:
            close = await self._close(browser)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(playwright.stop(), _STOP_TIMEOUT_S)
            self.emitter.emit({
                "kind": "summary", **self.emitter.stamp(time.monotonic()),
                "operations": operations, "failed": self.failed, "stopped_by": self.stopped_by,
                "close": close, "injected": self.injected,
            })
        return 0


def main(spec: ScreenshotSpec, run_id: str) -> int:
    """Serve the built-in site when no URLs are given, run the loop, return the exit code."""
    emitter = Emitter(spec.clock_origin if spec.clock_origin is not None else time.monotonic())
    workload = ScreenshotWorkload(spec, run_id, emitter)
    if spec.urls:
        return asyncio.run(workload.run(spec.urls))
    with SiteServer() as site:
        return asyncio.run(workload.run(site.urls()))
