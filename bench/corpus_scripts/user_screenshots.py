"""Take screenshots of a few local pages with Playwright (sync API) and Debian's Chromium, the
way a user would script it, optionally with a leak of a known mechanism.

    python user_screenshots.py --duration 300 --ops-per-minute 20 --context fresh
    python user_screenshots.py --duration 300 --ops-per-minute 20 --leak driver --kb-per-op 300

One line per screenshot on stdout (``shot N ok ... wall=UNIX_TIME``), so a harness log shows
progress and the operation times can be read back from it.

Leaks (--leak):
  driver  this Python process keeps --kb-per-op KB of random bytes per screenshot
  pages   every --pages-every screenshots one page (with --context fresh: its context) stays open
  jsheap  one long-lived page keeps --kb-per-op KB per screenshot in a global JS array
          (Uint8Arrays written in full, so the memory is committed)
  step    one --step-mb MB allocation at half of --duration (in the long-lived page's JS with
          --step-where js, in this process with --step-where python), then nothing more
  cache   this process keeps --kb-per-op KB per screenshot until --cache-cap-mb is held
  fds     this process keeps one more file (/dev/null) open per screenshot
  threads this process keeps one more idle thread per screenshot
  procs   this process starts one more `sleep` child per screenshot and keeps it

--churn-mb N (any leak or none): allocate N MB per screenshot, write it, and free it (a clean
script with a large transient allocation).

--settle-every N: after every N screenshots (and the leak's step) ``sandbox.settle(browser)``:
a GC in every page, a memory-pressure signal, then the harness's settle sample
(docs/settle-points.md); the shot line then says ``settle=SECONDS``. With --settle-gc-only:
the GC alone, no pressure signal.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# The flags sandbox's built-in screenshot workload adds (sandbox/workloads/screenshot/spec.py);
# Playwright adds --no-sandbox itself, it is repeated here so the script also works alone.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 720}
TIMEOUT_MS = 15_000

_ROWS = "".join(f"<tr><td>{i}</td><td>item {i}</td><td>{i * 37 % 1000}</td></tr>"
                for i in range(400))
PAGES = {
    "/article.html": "<!doctype html><title>Article</title><style>body{font:16px serif;"
                     "max-width:40em;margin:2em auto}</style><h1>A long article</h1>"
                     + "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60,
    "/table.html": "<!doctype html><title>Table</title><table border=1>" + _ROWS + "</table>",
    "/canvas.html": "<!doctype html><title>Canvas</title><canvas id=c width=1200 height=650>"
                    "</canvas><script>const x=document.getElementById('c').getContext('2d');"
                    "for(let i=0;i<3000;i++){x.fillStyle=`hsl(${i%360},70%,50%)`;"
                    "x.beginPath();x.arc((i*97)%1200,(i*61)%650,8+i%30,0,7);x.fill();}"
                    "</script>",
    "/svg.html": "<!doctype html><title>SVG</title><svg width=1200 height=650>"
                 + "".join(f"<rect x={i * 13 % 1180} y={i * 7 % 630} width=20 height=20 "
                           f"fill='hsl({i % 360},60%,60%)'/>" for i in range(600))
                 + "</svg>",
    "/holder.html": "<!doctype html><title>holder</title><p>long-lived page",
}
URLS = ["/article.html", "/table.html", "/canvas.html", "/svg.html"]

JS_KEEP = """(kb) => {
  const a = new Uint8Array(kb * 1024);
  for (let i = 0; i < a.length; i++) a[i] = (i * 31 + 7) & 255 | 1;
  window.__kept = window.__kept || [];
  window.__kept.push(a);
  return window.__kept.length;
}"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = PAGES.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def filled(nbytes: int) -> bytes:
    """nbytes of random data: every page really written (and not shareable)."""
    return os.urandom(nbytes)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60, help="seconds of screenshots")
    p.add_argument("--ops-per-minute", type=float, default=20)
    p.add_argument("--context", choices=("fresh", "reuse"), default="fresh")
    p.add_argument("--leak", choices=("none", "driver", "pages", "jsheap", "step", "cache", "fds",
                                          "threads", "procs"),
                   default="none")
    p.add_argument("--kb-per-op", type=int, default=300)
    p.add_argument("--pages-every", type=int, default=5, help="pages leak: keep 1 page in K")
    p.add_argument("--step-mb", type=int, default=50)
    p.add_argument("--step-where", choices=("js", "python"), default="js")
    p.add_argument("--cache-cap-mb", type=float, default=60)
    p.add_argument("--churn-mb", type=int, default=0, help="allocate and free N MB per shot")
    p.add_argument("--settle-every", type=int, default=0,
                   help="a settle point every N screenshots (sandbox.settle); 0: none")
    p.add_argument("--settle-gc-only", action="store_true",
                   help="settle with the GC alone, no memory-pressure signal")
    args = p.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    kept_bytes: list[bytes] = []  # driver, cache and python step leaks
    kept_pages = []  # pages leak: (page, context or None)
    kept_files = []  # fds leak
    kept_threads: list[threading.Thread] = []  # threads leak
    kept_procs: list[subprocess.Popen] = []  # procs leak
    held = 0  # bytes the leak holds so far (nominal)
    stepped = False
    interval = 60.0 / args.ops_per_minute
    failed = 0

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS, timeout=60_000)
        print(f"browser {browser.version} up, pages at {base}, leak={args.leak}", flush=True)
        shared = browser.new_context(viewport=VIEWPORT) if args.context == "reuse" else None
        holder = None
        if args.leak in ("jsheap", "step") and not (args.leak == "step"
                                                     and args.step_where == "python"):
            holder_ctx = shared or browser.new_context(viewport=VIEWPORT)
            holder = holder_ctx.new_page()
            holder.goto(base + "/holder.html")

        begin = time.monotonic()
        deadline = begin + args.duration
        next_start, n = begin, 0
        while not stop.is_set() and next_start < deadline:
            if stop.wait(max(0.0, next_start - time.monotonic())):
                break
            op_start = time.monotonic()
            wall = time.time()
            url = base + URLS[n % len(URLS)]
            context = shared or browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            size, error = 0, None
            try:
                page.goto(url, timeout=TIMEOUT_MS, wait_until="load")
                size = len(page.screenshot(type="png", timeout=TIMEOUT_MS))
            except PlaywrightError as exc:
                error = str(exc).strip().splitlines()[0][:200]
                failed += 1
            if args.leak == "pages" and n % args.pages_every == args.pages_every - 1:
                kept_pages.append((page, None if context is shared else context))
            else:
                try:
                    page.close()
                    if context is not shared:
                        context.close()
                except PlaywrightError as exc:
                    print(f"close failed: {exc}", file=sys.stderr, flush=True)
            latency = time.monotonic() - op_start

            # the leak, after the screenshot
            under_cap = held < args.cache_cap_mb * 1000 * 1024  # MB = 1000 KiB, as --kb-per-op
            if args.leak == "driver" or (args.leak == "cache" and under_cap):
                kept_bytes.append(filled(args.kb_per_op * 1024))
                held += args.kb_per_op * 1024
            elif args.leak == "fds":
                kept_files.append(open(os.devnull, "rb"))  # noqa: SIM115 (the leak)
            elif args.leak == "procs":
                kept_procs.append(subprocess.Popen(["sleep", "3600"]))
            elif args.leak == "threads":
                worker = threading.Thread(target=stop.wait, daemon=True)
                worker.start()
                kept_threads.append(worker)
            elif args.leak == "jsheap":
                holder.evaluate(JS_KEEP, args.kb_per_op)
                held += args.kb_per_op * 1024
            elif args.leak == "step" and not stepped and op_start - begin >= args.duration / 2:
                if holder is not None:
                    holder.evaluate(JS_KEEP, args.step_mb * 1024)
                else:
                    kept_bytes.append(filled(args.step_mb * 1024 * 1024))
                held += args.step_mb * 1024 * 1024
                stepped = True
                print(f"step: {args.step_mb} MB allocated ({args.step_where})", flush=True)

            if args.churn_mb:
                churn = filled(args.churn_mb * 1024 * 1024)
                del churn

            settled = ""
            if args.settle_every and (n + 1) % args.settle_every == 0:
                from sandbox import settle  # only here: the script also runs without sandbox

                settle_start = time.monotonic()
                settle(browser, f"shot {n}", pressure=not args.settle_gc_only)
                settled = f"settle={time.monotonic() - settle_start:.3f}s "
            status = "ok" if error is None else f"FAILED {error}"
            print(f"shot {n} {status} latency={latency:.3f}s bytes={size} "
                  f"url={url} held_kb={held // 1024} open_pages={len(kept_pages)} "
                  f"{settled}wall={wall:.3f}", flush=True)
            n += 1
            next_start = op_start + interval

        print(f"done: {n} screenshots, {failed} failed, leak held {held // 1024} KB, "
              f"{len(kept_pages)} pages left open", flush=True)
        browser.close()
    for child in kept_procs:
        child.kill()
        child.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
