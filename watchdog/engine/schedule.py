"""When to check each zone next (DESIGN.md 4): the scheduler's decisions, without the clock.

A zone's next check is the earliest of
- its regular interval, shifted by a per-zone jitter so 10,000 zones do not fire at once;
- one second after the next threshold crossing the engine predicts for it, so a zone that will
  hit strict-fail at 14:23:07 is re-checked at 14:23:08 and the alert goes out then;
- a backoff retry after a failed probe, so UNREACHABLE is confirmed in minutes, not intervals.

Due times are wall-clock POSIX seconds (deadlines are wall-clock facts); the service sleeps on the
monotonic clock and calls ``Schedule.replan`` when it sees the wall clock step.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Plan", "Reason", "Schedule", "ScheduleSettings", "jitter_offset", "plan_next"]


class Reason(StrEnum):
    FIRST = "first"
    INTERVAL = "interval"
    CROSSING = "crossing"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    interval: int = 900  # seconds between regular checks
    jitter: float = 0.1  # fraction of the interval over which zones are spread
    retry_base: int = 30  # first retry after a failed probe
    retry_cap: int = 900  # longest retry delay


@dataclass(frozen=True, slots=True, order=True)
class Plan:
    due: int
    zone: str
    reason: Reason


def jitter_offset(zone: str, settings: ScheduleSettings) -> int:
    """A stable per-zone offset in [0, jitter * interval): the same zone always lands on the
    same phase, and many zones spread evenly (a hash, not a random draw, so restarts keep it)."""
    span = int(settings.interval * settings.jitter)
    if span <= 0:
        return 0
    digest = hashlib.blake2b(zone.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % span


def plan_next(
    zone: str,
    checked_at: int,
    settings: ScheduleSettings,
    *,
    next_crossing: int | None = None,
    failures: int = 0,
) -> Plan:
    """The next check of ``zone`` after a check that finished at ``checked_at``.

    ``next_crossing`` is the engine's next threshold moment after ``checked_at`` (the first
    second of the new state); ``failures`` the consecutive failed probes so far.
    """
    candidates = [
        Plan(checked_at + settings.interval + jitter_offset(zone, settings), zone, Reason.INTERVAL)
    ]
    if next_crossing is not None and next_crossing >= checked_at:
        candidates.append(Plan(next_crossing + 1, zone, Reason.CROSSING))
    if failures > 0:
        delay = min(settings.retry_cap, settings.retry_base * 2 ** min(failures - 1, 20))
        candidates.append(Plan(checked_at + delay, zone, Reason.RETRY))
    return min(candidates)


class Schedule:
    """A set of plans, at most one per zone, ordered by due time. No clock inside: callers pass
    ``now``."""

    def __init__(self) -> None:
        self._heap: list[Plan] = []
        self._current: dict[str, Plan] = {}

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, zone: object) -> bool:
        return zone in self._current

    def set(self, plan: Plan) -> None:
        """Replace the zone's plan (stale heap entries are skipped lazily)."""
        self._current[plan.zone] = plan
        heapq.heappush(self._heap, plan)

    def remove(self, zone: str) -> None:
        self._current.pop(zone, None)

    def plan_of(self, zone: str) -> Plan | None:
        return self._current.get(zone)

    def next_due(self) -> int | None:
        self._drop_stale()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: int, limit: int | None = None) -> list[Plan]:
        """Remove and return the plans due at or before ``now``, earliest first."""
        due: list[Plan] = []
        while self._heap and (limit is None or len(due) < limit):
            self._drop_stale()
            if not self._heap or self._heap[0].due > now:
                break
            plan = heapq.heappop(self._heap)
            del self._current[plan.zone]
            due.append(plan)
        return due

    def replan(self, now: int, settings: ScheduleSettings) -> None:
        """After a wall-clock step: nothing may be due later than one interval from the new
        now (a step backwards would otherwise postpone checks by the size of the step)."""
        latest = now + settings.interval + int(settings.interval * settings.jitter)
        for zone, plan in list(self._current.items()):
            if plan.due > latest:
                self.set(Plan(now + jitter_offset(zone, settings), zone, plan.reason))

    def _drop_stale(self) -> None:
        while self._heap and self._current.get(self._heap[0].zone) is not self._heap[0]:
            heapq.heappop(self._heap)
