"""The screenshot workload's Chromium arguments: one --disable-features that keeps
Playwright's own and turns off the omnibox popup WebUI (Chromium keeps only the last
--disable-features it is given)."""

from __future__ import annotations

import re
from pathlib import Path

import playwright
import pytest

from sandbox.workloads.screenshot.spec import (
    CHROMIUM_ARGS,
    OMNIBOX_WEBUI_FEATURES,
    PLAYWRIGHT_DISABLED_FEATURES,
)


def _disabled() -> list[str]:
    values = [a.split("=", 1)[1] for a in CHROMIUM_ARGS if a.startswith("--disable-features=")]
    assert len(values) == 1, CHROMIUM_ARGS
    return values[0].split(",")


def test_one_disable_features_with_the_omnibox_webui_off():
    disabled = _disabled()
    assert set(OMNIBOX_WEBUI_FEATURES) <= set(disabled)
    assert set(PLAYWRIGHT_DISABLED_FEATURES) <= set(disabled)
    assert len(disabled) == len(set(disabled))


def _playwright_disabled_features() -> list[str] | None:
    """The ``disabledFeatures`` list of the installed Playwright driver's chromiumSwitches,
    or None when the bundle is not where Playwright 1.4x-1.6x keeps it."""
    package = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for bundle in (package / "coreBundle.js",
                   package / "server" / "chromium" / "chromiumSwitches.js"):
        if not bundle.is_file():
            continue
        found = re.search(r"disabledFeatures\s*=\s*\[(.*?)\]", bundle.read_text(), re.S)
        if found:
            body = re.sub(r"//[^\n]*", "", found.group(1))
            return re.findall(r"[\"']([^\"']+)[\"']", body)
    return None


def test_playwright_disabled_features_are_kept():
    """If Playwright adds a feature to its own list, ours must repeat it, or our
    --disable-features turns it back on."""
    theirs = _playwright_disabled_features()
    if theirs is None:
        pytest.skip("Playwright's chromiumSwitches not found in its driver bundle")
    assert theirs, "empty disabledFeatures parsed from the Playwright bundle"
    missing = sorted(set(theirs) - set(_disabled()))
    assert not missing, f"add to PLAYWRIGHT_DISABLED_FEATURES: {missing}"
