"""The screenshot workload: Playwright + system Chromium, paced screenshots of the built-in
site or the user's URLs, with optional fault injections. Runs as its own process inside the
slice: ``python -m sandbox.workloads.screenshot --config JSON``."""

from sandbox.workloads.screenshot.spec import (
    CHROMIUM_ARGS,
    CONTEXT_POLICIES,
    INJECTIONS,
    NETWORKS,
    ScreenshotSpec,
    parse_viewport,
)

__all__ = [
    "CHROMIUM_ARGS",
    "CONTEXT_POLICIES",
    "INJECTIONS",
    "NETWORKS",
    "ScreenshotSpec",
    "parse_viewport",
]
