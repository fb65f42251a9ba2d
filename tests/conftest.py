"""Shared pytest fixtures; append new ones below, one section per concern."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from lab import missing_binaries

# -- real-DNS lab (tests/lab) -----------------------------------------------------------------


@pytest.fixture
def require_binaries() -> Callable[..., None]:
    """Call it with command or library names; the test is skipped, naming what is missing.

    CI installs everything (tests/install-debian-deps.sh), so there these tests run.
    """

    def require(*names: str) -> None:
        missing = missing_binaries(names)
        if missing and os.environ.get("CI"):
            # In CI everything is installed by `make test`; a missing tool is a broken setup,
            # not a reason to let the real-server tests quietly not run.
            pytest.fail(f"CI: not installed: {', '.join(missing)}")
        if missing:
            pytest.skip(
                f"not installed: {', '.join(missing)} "
                "(as root: sh tests/install-debian-deps.sh, or make debian-deps)"
            )

    return require
