"""Browser tests' side of watchdog.demo.browser: skip without chromium, keep screenshots.

Screenshots go to ``tests/.artifacts`` (git-ignored), so a CI run can keep them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.demo import browser

__all__ = ["ARTIFACTS", "dump_dom", "require_chromium", "screenshot"]

ARTIFACTS = Path(__file__).resolve().parent / ".artifacts"


def require_chromium() -> None:
    """Skip the test, saying how to get chromium, when it is not installed."""
    if browser.chromium() is None:
        pytest.skip("chromium is not installed (tests/install-debian-deps.sh installs it)")


def dump_dom(url: str) -> str:
    """The DOM chromium built from ``url``."""
    require_chromium()
    return browser.dump_dom(url)


def screenshot(url: str, name: str, size: tuple[int, int] = (1280, 900)) -> Path:
    """A PNG of ``url`` in ``tests/.artifacts/name``."""
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    return browser.screenshot(url, ARTIFACTS / name, size)
