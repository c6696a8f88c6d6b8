"""The built-in site: a handful of static pages (text, images, canvas, a long list, timers)
served by stdlib http.server on 127.0.0.1 from a thread of the workload, so it lives in the
workload's network namespace and needs no outside service. The PNG images are made in code."""

from __future__ import annotations

import random
import struct
import threading
import zlib
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
PAGES = ("article.html", "images.html", "canvas.html", "list.html", "timers.html")
SERVED_SUFFIXES = {".html", ".css", ".svg"}


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, ...]]) -> bytes:
    """An RGB PNG; ``pixel(x, y)`` returns an (r, g, b) tuple of 0-255 ints."""
    rows = b"".join(
        b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def generated_images() -> dict[str, bytes]:
    noise = random.Random(1)
    return {
        "/gradient.png": png(128, 128, lambda x, y: (x * 2, y * 2, 255 - x - y // 2)),
        "/noise.png": png(64, 64, lambda x, y: (noise.randrange(256),) * 3),
    }


class _Handler(SimpleHTTPRequestHandler):
    generated: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.generated.get(self.path)
        if body is None:
            if Path(self.path.split("?", 1)[0]).suffix not in SERVED_SUFFIXES:
                self.send_error(404)
                return
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the workload's stderr is for errors only."""


class SiteServer:
    """The site on 127.0.0.1, a free port, served from a daemon thread."""

    def __init__(self) -> None:
        handler = type("SiteHandler", (_Handler,), {"generated": generated_images()})
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(SITE_DIR))
        )
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="site",
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def urls(self) -> list[str]:
        return [self.base_url + page for page in PAGES]

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
