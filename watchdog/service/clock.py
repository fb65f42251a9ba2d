"""The service's clocks, injected: wall time for plans and deadlines, monotonic time for waits.

The service reads time only through a ``Clock``; tests pass one they move by hand, so a check
cycle, a clock step or a retry plan is a function call, not seconds of waiting. Sleeping itself
stays on the event loop (asyncio's monotonic clock): a test that must not wait drives
``Service.run_cycle`` instead of the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SYSTEM_CLOCK", "Clock"]


@dataclass(frozen=True, slots=True)
class Clock:
    """Where the service reads the time: ``wall()`` (POSIX seconds) and ``monotonic()``."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    def now(self) -> int:
        """Whole POSIX seconds: the ``now`` of the engine."""
        return int(self.wall())


SYSTEM_CLOCK = Clock()
