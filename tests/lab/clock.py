"""Faking "now" for validators (see the shared VALIDATOR-LAB notes).

Two ways, because not every validator survives libfaketime:
- a frozen clock: libfaketime preloaded with an absolute FAKETIME, exact to the second
  (unbound; named with glibc's malloc-debug library preloaded first, because Debian links it
  against jemalloc, which deadlocks under libfaketime, libfaketime issue #130);
- shifted signature dates: the validator runs on the real clock and the zone is signed with
  I + (R - now), E + (R - now) where R is the real second the query is sent in. Validators only
  compare now with I and E, so this is the same test (kresd, which deadlocks like named but is
  not rescued by malloc-debug; pdns-recursor 4.8, which stalls with a frozen clock ahead of the
  real one).
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from .process import LabError

__all__ = [
    "faketime_environment",
    "faketime_library",
    "malloc_debug_library",
    "next_second_after",
    "sleep_until",
]


def _package_file(package: str, filename: str) -> Path | None:
    """The file ``filename`` shipped by Debian package ``package`` (dpkg -L), if installed."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", package], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in listing.splitlines():
        path = Path(line.strip())
        if path.name == filename and path.exists():
            return path
    return None


@functools.cache
def faketime_library() -> Path | None:
    """libfaketimeMT.so.1 (the thread-safe variant), or None when libfaketime is missing."""
    return _package_file("libfaketime", "libfaketimeMT.so.1")


@functools.cache
def malloc_debug_library() -> Path | None:
    """glibc's libc_malloc_debug.so.0: preloaded before libfaketime, it keeps named alive."""
    return _package_file("libc6", "libc_malloc_debug.so.0")


def faketime_environment(
    at: int, *, malloc_debug: bool = False, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment that freezes a process's wall clock at POSIX second ``at``.

    FAKETIME is read as local time, hence TZ=UTC. The monotonic clock stays real
    (FAKETIME_DONT_FAKE_MONOTONIC; the older name DONT_FAKE_MONOTONIC is ignored by 0.9.10),
    so event loops and timeouts keep working.
    """
    faketime = faketime_library()
    if faketime is None:
        raise LabError("libfaketime is not installed (apt-get install libfaketime)")
    preload = [faketime]
    if malloc_debug:
        debug = malloc_debug_library()
        if debug is None:
            raise LabError("libc_malloc_debug.so.0 (package libc6) is missing")
        preload.insert(0, debug)
    environment = dict(os.environ if base is None else base)
    environment.update(
        TZ="UTC",
        FAKETIME=datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        LD_PRELOAD=" ".join(str(path) for path in preload),
    )
    return environment


def sleep_until(moment: float) -> None:
    """Sleep until the real clock reads ``moment`` (POSIX seconds, fractional)."""
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


def next_second_after(delay: float) -> int:
    """The first whole POSIX second that starts at least ``delay`` seconds from now."""
    return math.ceil(time.time() + delay)
