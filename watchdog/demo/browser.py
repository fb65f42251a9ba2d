"""Debian's ``chromium``, headless, for a look at the status page: its DOM, or a screenshot.

Used by the browser tests and by ``python -m watchdog.demo.screenshot`` (the README's picture).
Every run gets a fresh profile directory and the flags that keep chromium from talking to
anything but the page it is given (no sync, no component updates, no background networking,
no QUIC); the pages are on 127.0.0.1. ``--no-sandbox``: CI runs as root, where chromium
refuses its sandbox.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from watchdog.errors import WatchdogError

__all__ = ["BrowserError", "chromium", "dump_dom", "screenshot"]

_TIMEOUT = 90.0
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)


class BrowserError(WatchdogError):
    """chromium is missing, or did not produce what it was asked for."""


def chromium() -> str | None:
    """The chromium binary on PATH, if any."""
    return shutil.which("chromium")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise BrowserError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="watchdog-chromium-") as profile:
        try:
            return subprocess.run(
                [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(f"chromium did not finish within {_TIMEOUT:.0f} s") from exc


def dump_dom(url: str) -> str:
    """The DOM chromium built from ``url``, serialised: what the browser made of the page."""
    done = _run("--dump-dom", url)
    if done.returncode != 0 or not done.stdout.strip():
        raise BrowserError(
            f"chromium --dump-dom {url}: exit {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout


def screenshot(url: str, path: Path, size: tuple[int, int] = (1280, 900)) -> Path:
    """A PNG of ``url`` at ``path`` (a window of ``size`` pixels); returns ``path``."""
    path.unlink(missing_ok=True)
    done = _run(
        f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", f"--screenshot={path}", url
    )
    if done.returncode != 0 or not path.exists():
        raise BrowserError(
            f"chromium --screenshot {url}: exit {done.returncode}: {done.stderr[-2000:]}"
        )
    return path
