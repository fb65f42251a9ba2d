"""What the lab needs installed, so tests can skip with a clear reason when it is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from .clock import faketime_library, malloc_debug_library

__all__ = ["LAB_BINARIES", "missing_binaries"]

# Every oracle run signs a zone with ldns and serves it from NSD.
LAB_BINARIES = ("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds")

# Preloaded libraries, named by their Debian package.
_LIBRARIES: dict[str, Callable[[], Path | None]] = {
    "libfaketime": faketime_library,
    "libc_malloc_debug": malloc_debug_library,
}


def missing_binaries(names: Iterable[str]) -> list[str]:
    """The commands (on PATH or in /usr/sbin) and libraries among ``names`` not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = []
    for name in names:
        library = _LIBRARIES.get(name)
        found = library() if library else shutil.which(name, path=search)
        if found is None:
            missing.append(name)
    return missing
