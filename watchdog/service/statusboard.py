"""The status page's snapshot, kept by the service: what the pages read, never waiting on I/O.

The service tells the board about every stored check (``record``) and every config load
(``set_zones``); a task of the service reads the outbox every few seconds in a thread
(``refresh_deliveries``) for the delivery state of recent events, and re-sorts the zones
once a second when something changed (``rebuild``). A request only takes the latest
``snapshot()``: a page is at most about a second behind the stored checks, and never waits
for a sort of 10,000 zones.
After a restart, recent events are found again in the outbox bodies of generic webhooks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from watchdog.engine.alerts import AlertEvent
from watchdog.engine.assess import ZoneReport
from watchdog.errors import StateError
from watchdog.render.snapshot import (
    DeliveryState,
    SentEvent,
    StatusSnapshot,
    WebhookDelivery,
    ZoneStatus,
)
from watchdog.service.records import DeliveryStatus, OutboxProgress
from watchdog.service.store import Store

__all__ = ["EVENTS_PER_ZONE", "StatusBoard", "refresh_forever"]

log = structlog.get_logger(__name__)

EVENTS_PER_ZONE = 10
_OUTBOX_WINDOW = 5000  # newest outbox rows read at start and at most per refresh
_REFRESH = 5.0  # seconds between outbox reads
_REBUILD = 1.0  # seconds between re-sorts while checks come in: how stale a page may be


@dataclass
class _Entry:
    report: ZoneReport | None = None
    next_check: int | None = None


def _state(p: OutboxProgress) -> WebhookDelivery:
    if p.status is DeliveryStatus.DELIVERED:
        state = DeliveryState.DELIVERED
    elif p.status is DeliveryStatus.FAILED:
        state = DeliveryState.GIVEN_UP
    else:
        state = DeliveryState.RETRYING if p.attempts else DeliveryState.QUEUED
    pending = p.status is DeliveryStatus.PENDING
    return WebhookDelivery(
        webhook=p.webhook,
        state=state,
        attempts=p.attempts,
        next_attempt_at=int(p.next_attempt_at) if pending else None,
        finished_at=int(p.finished_at) if p.finished_at is not None else None,
        last_status=p.last_status,
    )


def _slim(report: ZoneReport) -> ZoneReport:
    """The report without its per-RRset verdicts, which no page shows: every signature of
    every RRset of 10,000 zones would be kept in memory for nothing."""
    return replace(report, servers=tuple(replace(s, rrsets=()) for s in report.servers))


def _posix(text: str) -> int | None:
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return None


class StatusBoard:
    """Zones, their last reports and recent events; ``snapshot()`` for the pages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zones: dict[str, _Entry] = {}
        self._events: dict[str, deque[SentEvent]] = {}
        self._deliveries: dict[str, dict[str, WebhookDelivery]] = {}
        self._from_id = 0  # the outbox is read from here on (the oldest entry still pending)
        self._snapshot: StatusSnapshot | None = None
        self._dirty = True

    def set_zones(self, names: Iterable[str], now: int) -> None:
        """The configured zones: new ones wait for their first check, removed ones go."""
        wanted = set(names)
        with self._lock:
            for name in list(self._zones):
                if name not in wanted:
                    del self._zones[name]
                    self._events.pop(name, None)
            for name in wanted:
                self._zones.setdefault(name, _Entry(next_check=now))
            self._dirty = True

    def record(
        self,
        report: ZoneReport,
        next_check: int,
        events: Sequence[AlertEvent] = (),
        queued: Iterable[tuple[str, str]] = (),
    ) -> None:
        """A stored check of one zone (only zones ``set_zones`` named are kept), with its
        events and the (event id, webhook) deliveries it put in the outbox."""
        with self._lock:
            for event_id, webhook in queued:
                self._deliveries.setdefault(event_id, {}).setdefault(
                    webhook, WebhookDelivery(webhook, DeliveryState.QUEUED)
                )
            entry = self._zones.get(report.zone)
            if entry is None:
                return
            entry.report, entry.next_check = _slim(report), next_check
            for e in events:
                self._add_event(
                    e.zone,
                    SentEvent(
                        e.id,
                        e.condition.value,
                        e.kind.value,
                        e.old_severity.value,
                        e.new_severity.value,
                        e.at,
                    ),
                )
            self._dirty = True

    def _add_event(self, zone: str, event: SentEvent) -> None:
        queue = self._events.setdefault(zone, deque(maxlen=EVENTS_PER_ZONE))
        if all(e.id != event.id for e in queue):
            queue.appendleft(event)

    def refresh_deliveries(self, store: Store) -> None:
        """Read the outbox entries changed or added since the last read (blocking: a thread)."""
        rows = store.outbox_progress(self._from_id, _OUTBOX_WINDOW)
        with self._lock:
            for p in rows:
                self._deliveries.setdefault(p.event_id, {})[p.webhook] = _state(p)
                if p.event is not None and p.event["zone"] in self._zones:
                    at = _posix(p.event["at"])
                    if at is not None:
                        e = p.event
                        self._add_event(
                            e["zone"],
                            SentEvent(
                                p.event_id,
                                e["condition"],
                                e["kind"],
                                e["old_severity"],
                                e["new_severity"],
                                at,
                            ),
                        )
            pending = [p.id for p in rows if p.status is DeliveryStatus.PENDING]
            if rows:
                self._from_id = min(pending) if pending else rows[-1].id + 1
            self._forget_deliveries()
            self._dirty = True

    def _forget_deliveries(self) -> None:
        """Keep delivery states only for events some zone still shows."""
        if len(self._deliveries) <= 2 * EVENTS_PER_ZONE * max(1, len(self._zones)):
            return
        shown = {e.id for queue in self._events.values() for e in queue}
        self._deliveries = {k: v for k, v in self._deliveries.items() if k in shown}

    def snapshot(self, now: int) -> StatusSnapshot:
        """The latest snapshot, without waiting for a re-sort (``rebuild`` makes them, in the
        service's task); only the very first request builds one."""
        current = self._snapshot
        return current if current is not None else self.rebuild(now)

    def rebuild(self, now: int) -> StatusSnapshot:
        """A new snapshot when something changed since the last one (blocking: a thread).

        The zones are copied under the lock; the sort runs outside it, so requests go on
        reading the previous snapshot meanwhile.
        """
        with self._lock:
            if self._snapshot is not None and not self._dirty:
                return self._snapshot
            self._dirty = False
            zones = [
                ZoneStatus(
                    name,
                    entry.report,
                    entry.next_check,
                    tuple(
                        SentEvent(
                            e.id, e.condition, e.kind, e.old_severity, e.new_severity, e.at,
                            tuple(self._deliveries.get(e.id, {}).values()),
                        )
                        for e in self._events.get(name, ())
                    ),
                )
                for name, entry in self._zones.items()
            ]  # fmt: skip
        built = StatusSnapshot.build(now, zones)
        self._snapshot = built
        return built


async def refresh_forever(board: StatusBoard, store: Store, clock: Callable[[], float]) -> None:
    """The service's task: a new snapshot every ``_REBUILD`` seconds when something changed,
    and the outbox's delivery states every ``_REFRESH`` seconds."""
    last_read = -_REFRESH
    while True:
        if clock() - last_read >= _REFRESH:
            last_read = clock()
            try:
                await asyncio.to_thread(board.refresh_deliveries, store)
            except StateError as exc:  # shown as "unknown" until the next read succeeds
                log.warning("status_refresh_failed", error=str(exc))
        await asyncio.to_thread(board.rebuild, int(clock()))
        await asyncio.sleep(_REBUILD)
