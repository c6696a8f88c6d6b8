"""The screenshot workload's settings: one dataclass, validated, carried as JSON on the
workload's command line (``--config``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sandbox.host.browsers import DISTRIBUTION

if TYPE_CHECKING:
    from sandbox.config import RunConfig

INJECTIONS = ("pages", "heap", "orphan", "escape", "tmpfile")
CONTEXT_POLICIES = ("reuse", "fresh")
NETWORKS = ("isolated", "host")

#: The features Playwright (1.65) turns off itself. Chromium keeps only the last
#: ``--disable-features`` it is given, so ours must repeat them (tests/test_screenshot_args.py
#: checks this list against the installed Playwright).
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin", "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled",
    "PreconnectToSearch", "msForceBrowserSignIn", "msEdgeUpdateLaunchServicesPreferredVersion",
)
#: Headless Chromium gives every window (Playwright: every fresh context) the omnibox popup
#: WebUI of the location bar, a chrome://omnibox-popup.top-chrome renderer that loads up to
#: ~400 JS modules for as long as the window lives: as much CPU as the page's own renderer,
#: on the same 2 cores as the screenshot, so the slower a screenshot the more it costs
#: (docs/performance.md, "Where the overhead comes from").
OMNIBOX_WEBUI_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")

#: Off on top of Playwright's defaults (which already set most of them): no traffic to
#: Google's services, no updater, no GPU process on a headless CI runner, no omnibox WebUI.
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES + OMNIBOX_WEBUI_FEATURES),
)


@dataclass
class ScreenshotSpec:
    """What the screenshot workload does.

    ``urls`` empty means the built-in site (served inside the run). ``network`` None means
    ``isolated`` for the built-in site and ``host`` for user URLs. ``clock_origin`` is the
    run's start on CLOCK_MONOTONIC (shared by all processes), so operation times ``t`` line
    up with the samples; None means the workload's own start. ``escape_targets`` are the
    cgroup.procs files outside the slice the ``escape`` injection writes itself into (set by
    the launcher).
    """

    urls: list[str] = field(default_factory=list)
    duration_s: float = 60.0
    operations_per_minute: float = 60.0
    viewport: tuple[int, int] = (1280, 720)
    context_policy: str = "reuse"
    inject: list[str] = field(default_factory=list)
    inject_rate_mb: float = 1.0
    network: str | None = None
    chromium: str = DISTRIBUTION[0]
    operation_timeout_s: float = 15.0
    close_timeout_s: float = 10.0
    clock_origin: float | None = None
    escape_targets: list[str] = field(default_factory=list)
    #: measure the JS heap and DOM nodes of the long-lived pages (after a forced GC) this
    #: often, in seconds; 0: off (``--js-heap``)
    js_heap_interval_s: float = 0.0
    #: a settle point every this many operations (GC in every page, memory pressure, then
    #: the harness's sample: docs/settle-points.md); 0: none
    settle_every: int = 0

    @classmethod
    def for_run(cls, config: RunConfig, *, chromium: str | None,
                clock_origin: float) -> ScreenshotSpec:
        """The spec of a run's screenshot workload (``chromium`` None: the distribution's)."""
        spec = cls(urls=config.urls, duration_s=config.duration_s,
                   operations_per_minute=config.operations_per_minute,
                   context_policy=config.context_policy, inject=config.inject,
                   network=config.network, clock_origin=clock_origin,
                   js_heap_interval_s=config.js_heap, settle_every=config.settle_every)
        if chromium:
            spec.chromium = chromium
        if config.inject_rate_mb:
            spec.inject_rate_mb = config.inject_rate_mb
        return spec

    @property
    def resolved_network(self) -> str:
        return self.network or ("host" if self.urls else "isolated")

    @property
    def interval_s(self) -> float:
        return 60.0 / self.operations_per_minute

    def validate(self) -> ScreenshotSpec:
        """Raise ValueError with one clear line for the first bad setting."""
        for url in self.urls:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https", "file") or not (
                parsed.netloc or parsed.scheme == "file"
            ):
                raise ValueError(f"bad URL {url!r}: expected http://, https:// or file://")
        for name in ("duration_s", "operations_per_minute", "operation_timeout_s",
                     "close_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(self.inject_rate_mb, int | float) and 0 < self.inject_rate_mb <= 512):
            raise ValueError(f"inject_rate_mb must be in (0, 512], got {self.inject_rate_mb!r}")
        if not (isinstance(self.settle_every, int) and 0 <= self.settle_every <= 10_000):
            raise ValueError(f"settle_every must be 0-10000, got {self.settle_every!r}")
        width, height = self.viewport
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise ValueError(f"viewport {width}x{height} out of range (16..8192 each way)")
        if self.context_policy not in CONTEXT_POLICIES:
            raise ValueError(f"context policy {self.context_policy!r}: expected "
                             f"{' or '.join(CONTEXT_POLICIES)}")
        if unknown := [k for k in self.inject if k not in INJECTIONS]:
            raise ValueError(f"unknown injection {unknown[0]!r}: expected one of "
                             f"{', '.join(INJECTIONS)}")
        if self.network is not None and self.network not in NETWORKS:
            raise ValueError(f"network {self.network!r}: expected isolated or host")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScreenshotSpec:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"unknown setting {unknown[0]!r} in the workload config")
        spec = cls(**data)
        spec.viewport = parse_viewport(spec.viewport)
        spec.urls = list(spec.urls)
        spec.inject = list(spec.inject)
        return spec.validate()


def parse_viewport(value: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"1280x720"`` or a pair -> (1280, 720)."""
    try:
        if isinstance(value, str):
            width, height = (int(v) for v in value.lower().split("x"))
        else:
            width, height = (int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad viewport {value!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from exc
    return width, height
