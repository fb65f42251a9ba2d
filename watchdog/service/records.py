"""The records the service and its store exchange: pure data, no I/O.

The judging step (watchdog.service.judge) produces them without touching the store; the store
(watchdog.service.store) persists them and reads them back. Kept apart so a pure module can
make them, and so another store behind the same interface speaks the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "AlertStateRecord",
    "CycleResult",
    "Delivery",
    "DeliveryStatus",
    "HistoryRecord",
    "OutboxCounts",
    "OutboxEntry",
    "OutboxProgress",
    "ZoneSummaryRecord",
]


class DeliveryStatus(StrEnum):
    """Where an outbox entry stands; only ``pending`` entries are ever sent."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AlertStateRecord:
    """The alert state of one (zone, condition); ``state=None`` deletes the stored one."""

    zone: str
    condition: str
    state: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ZoneSummaryRecord:
    """The last-observation summary of one zone; ``summary=None`` deletes the stored one."""

    zone: str
    summary: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """The signature history of one zone (engine/stall, bounded there); ``history=None``
    deletes the stored one."""

    zone: str
    history: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request to make: opaque body and headers, keyed by (event id, webhook)."""

    event_id: str
    webhook: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A delivery as stored, with the outcome of its attempts so far.

    ``last_error`` is the most recent failure (kept after a later success, for the record);
    ``finished_at`` is when it was delivered or given up.
    """

    id: int
    event_id: str
    webhook: str
    body: bytes
    headers: Mapping[str, str]
    created_at: float
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float
    last_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxProgress:
    """An outbox entry without its body, for the status page: where it stands, and the event's
    ``zone``, ``condition``, ``kind``, ``old_severity``, ``new_severity`` and ``at`` when the
    body is a generic (schema 1) event, else None (a Slack body does not carry them)."""

    id: int
    event_id: str
    webhook: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float
    last_status: int | None
    finished_at: float | None
    event: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many outbox entries of one webhook are in each status."""

    pending: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one ``commit_cycle`` wrote; ``duplicates`` are deliveries already in the outbox."""

    states: int
    summaries: int
    enqueued: int
    duplicates: int
