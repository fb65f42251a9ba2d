"""Shared pytest fixtures; append new ones below, one section per concern."""

from __future__ import annotations

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
        if missing:
            pytest.skip(
                f"not installed: {', '.join(missing)} "
                "(as root: sh tests/install-debian-deps.sh, or make debian-deps)"
            )

    return require
