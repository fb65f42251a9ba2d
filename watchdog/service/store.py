"""Persisted state: per-(zone, condition) alert state, per-zone summaries and signature
histories, and the webhook outbox.

One SQLite file in WAL mode. Alert state, summaries and histories are opaque JSON objects owned
by their producers (alerts, service, engine/stall); the outbox holds every delivery a transition
produced, keyed by (event id, webhook), until it is delivered (2xx) or given up (kept as
``failed``, never deleted except by an explicit ``prune`` of delivered rows).

Crash safety: ``commit_cycle`` writes a whole check cycle (states, summaries, deliveries) in ONE
transaction, so a state change and the deliveries it produced are either both stored or both
absent; a replayed transition hits ``ON CONFLICT (event_id, webhook) DO NOTHING`` and never
delivers twice. ``synchronous=NORMAL`` keeps that atomicity across process crashes; on power loss
the last commits may roll back together (state and outbox alike), so the transition is simply
detected again.

Threading: sqlite3 calls block. Every method is short (one indexed statement) except
``commit_cycle`` of a large cycle (about 0.2 s for 10,000 zones with summaries). The intended use is
``await asyncio.to_thread(store.method, ...)`` from the event loop, which is what
``watchdog.alerting.delivery`` does; calling short methods directly from the loop is also fine. The
store holds one connection opened with ``check_same_thread=False`` and serialises all use of it with
a lock, so calls from the loop and from worker threads may interleave safely. Use one ``Store`` per
file per process.

Opening, validating, the schema and its migrations, and quarantine live in
watchdog.service.sqlite_file; this module is the ``Store`` interface the service, the
notifier and the tools use (what a second backend would implement too).

Recovery: a damaged file raises ``StateError`` at open, naming the path. ``quarantine(path)``
renames it (with its -wal and -shm files) to ``<path>.corrupt-<UTC timestamp>`` and logs
``state_quarantined``; the next open starts an empty state. The quarantined file keeps whatever
undelivered events it held, for inspection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from watchdog.errors import InvalidValueError, StateError
from watchdog.service.records import (
    AlertStateRecord,
    CycleResult,
    Delivery,
    DeliveryStatus,
    HistoryRecord,
    OutboxCounts,
    OutboxEntry,
    OutboxProgress,
    ZoneSummaryRecord,
)
from watchdog.service.sqlite_file import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    connect,
    quarantine,
    state_error,
)

# The records it reads and writes are watchdog.service.records (imported from there).
__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Store", "quarantine"]

_UPSERT_STATE = (
    "INSERT INTO alert_state (zone, condition, state, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (zone, condition) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at"
)
_UPSERT_SUMMARY = (
    "INSERT INTO zone_summary (zone, summary, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT (zone) DO UPDATE SET summary = excluded.summary,"
    " updated_at = excluded.updated_at"
)
_UPSERT_HISTORY = (
    "INSERT INTO zone_history (zone, history, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT (zone) DO UPDATE SET history = excluded.history,"
    " updated_at = excluded.updated_at"
)
# Idempotent per (event id, webhook): a replayed transition never makes a second delivery.
# ON CONFLICT, unlike INSERT OR IGNORE, still rejects a row that breaks NOT NULL or CHECK.
_INSERT_DELIVERY = (
    "INSERT INTO outbox (event_id, webhook, body, headers, created_at, status, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (event_id, webhook) DO NOTHING"
)
_OUTBOX_COLUMNS = (
    "id, event_id, webhook, body, headers, created_at, status, attempts, next_attempt_at, "
    "last_attempt_at, last_status, last_error, finished_at"
)

# The event fields of a generic body (in _PROGRESS's json_extract order); json_valid first,
# since a body may be anything.
_EVENT_FIELDS = ("zone", "condition", "kind", "old_severity", "new_severity", "at")
_PROGRESS = (
    "SELECT id, event_id, webhook, status, attempts, next_attempt_at, last_status, finished_at,"
    " CASE WHEN json_valid(CAST(body AS TEXT)) AND json_type(CAST(body AS TEXT)) = 'object'"
    " THEN json_extract(CAST(body AS TEXT), '$.zone', '$.condition', '$.kind',"
    " '$.old_severity', '$.new_severity', '$.at')"
    " END FROM outbox WHERE id >= ? ORDER BY id DESC LIMIT ?"
)


class Store:
    """The SQLite state file. Opening it validates it; every failure is a ``StateError``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent); the last close checkpoints and removes the WAL."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writes ---------------------------------------------------------------------------------

    def commit_cycle(
        self,
        states: Iterable[AlertStateRecord] = (),
        deliveries: Iterable[Delivery] = (),
        summaries: Iterable[ZoneSummaryRecord] = (),
        histories: Iterable[HistoryRecord] = (),
        *,
        now: float | None = None,
    ) -> CycleResult:
        """Write states, summaries, histories and enqueue deliveries in one transaction (all or
        nothing)."""
        at = time.time() if now is None else now
        # Serialise before BEGIN, so a bad record fails fast without holding the write lock;
        # the last record of a key wins, as if written one after the other.
        latest_states = {(r.zone, r.condition): r.state for r in states}
        latest_summaries = {r.zone: r.summary for r in summaries}
        latest_histories = {r.zone: r.history for r in histories}
        rows = [_delivery_row(d, at) for d in deliveries]
        state_rows = [
            (zone, cond, _to_json(state, f"alert state of {zone} / {cond}"), at)
            for (zone, cond), state in latest_states.items()
            if state is not None
        ]
        summary_rows = [
            (zone, _to_json(summary, f"summary of {zone}"), at)
            for zone, summary in latest_summaries.items()
            if summary is not None
        ]
        history_rows = [
            (zone, _to_json(history, f"history of {zone}"), at)
            for zone, history in latest_histories.items()
            if history is not None
        ]
        with self._transaction("commit a check cycle") as conn:
            conn.executemany(_UPSERT_STATE, state_rows)
            conn.executemany(
                "DELETE FROM alert_state WHERE zone = ? AND condition = ?",
                [key for key, state in latest_states.items() if state is None],
            )
            conn.executemany(_UPSERT_SUMMARY, summary_rows)
            conn.executemany(
                "DELETE FROM zone_summary WHERE zone = ?",
                [(zone,) for zone, summary in latest_summaries.items() if summary is None],
            )
            conn.executemany(_UPSERT_HISTORY, history_rows)
            conn.executemany(
                "DELETE FROM zone_history WHERE zone = ?",
                [(zone,) for zone, history in latest_histories.items() if history is None],
            )
            enqueued = conn.executemany(_INSERT_DELIVERY, rows).rowcount if rows else 0
        return CycleResult(
            len(latest_states), len(latest_summaries), enqueued, len(rows) - enqueued
        )

    def enqueue(self, deliveries: Iterable[Delivery], *, now: float | None = None) -> int:
        """Enqueue deliveries alone (idempotent per (event id, webhook)); returns how many new."""
        return self.commit_cycle(deliveries=deliveries, now=now).enqueued

    def mark_delivered(self, entry_id: int, *, status: int, at: float) -> bool:
        """Record a 2xx attempt: the entry is done. False if it was no longer pending."""
        return self._finish_attempt(
            entry_id,
            "status = 'delivered', attempts = attempts + 1, last_attempt_at = :at,"
            " last_status = :status, finished_at = :at",
            {"at": at, "status": status},
        )

    def mark_retry(
        self,
        entry_id: int,
        *,
        status: int | None,
        error: str,
        at: float,
        next_attempt_at: float,
        held: bool = False,
    ) -> bool:
        """Record a failed attempt and when to try again; ``held`` when the fault is the
        entry's own (see ``next_pending``), not the receiver's or the network's."""
        return self._finish_attempt(
            entry_id,
            "attempts = attempts + 1, last_attempt_at = :at, last_status = :status,"
            " last_error = :error, next_attempt_at = :next, held = :held",
            {"at": at, "status": status, "error": error, "next": next_attempt_at, "held": held},
        )

    def mark_failed(
        self, entry_id: int, *, status: int | None, error: str, at: float, attempted: bool = True
    ) -> bool:
        """Give up on an entry (kept as ``failed``); ``attempted`` counts this as an attempt."""
        assignments = "status = 'failed', last_error = :error, finished_at = :at"
        if attempted:
            assignments += ", attempts = attempts + 1, last_attempt_at = :at, last_status = :status"
        return self._finish_attempt(
            entry_id, assignments, {"at": at, "status": status, "error": error}
        )

    def prune_delivered(self, finished_before: float) -> int:
        """Delete delivered entries finished before a time; failed ones are never pruned.

        A pruned (event id, webhook) could be enqueued again, so prune only well after any
        transition could be replayed (days, not minutes).
        """
        with self._transaction("prune delivered entries") as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE status = 'delivered' AND finished_at < ?",
                (finished_before,),
            ).rowcount

    # -- reads ----------------------------------------------------------------------------------

    def alert_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every stored alert state, keyed by (zone, condition)."""
        rows = self._read("read alert states", "SELECT zone, condition, state FROM alert_state")
        return {(zone, cond): json.loads(state) for zone, cond, state in rows}

    def zone_summaries(self) -> dict[str, dict[str, Any]]:
        """Every stored zone summary, keyed by zone."""
        rows = self._read("read zone summaries", "SELECT zone, summary FROM zone_summary")
        return {zone: json.loads(summary) for zone, summary in rows}

    def zone_histories(self) -> dict[str, dict[str, Any]]:
        """Every stored signature history (engine/stall), keyed by zone."""
        rows = self._read("read signature histories", "SELECT zone, history FROM zone_history")
        return {zone: json.loads(history) for zone, history in rows}

    def next_pending(self, webhook: str, now: float | None = None) -> OutboxEntry | None:
        """The webhook's next entry to send: the oldest pending one, so events reach a receiver
        in the order they happened even after an outage or a restart (a "recovered" never
        overtakes the "raised" it closes). Entries held back for a fault of their own (the
        receiver rejected that body, its headers cannot be sent) step aside until they are due,
        so one bad entry does not hold up the rest."""
        at = time.time() if now is None else now
        rows = self._read(
            "read the outbox",
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND webhook = ?"  # noqa: S608
            " ORDER BY (held AND next_attempt_at > ?),"
            " CASE WHEN held AND next_attempt_at > ? THEN next_attempt_at ELSE 0 END, id LIMIT 1",
            (webhook, at, at),
        )
        return _entry(rows[0]) if rows else None

    def pending_webhooks(self) -> set[str]:
        """Names of the webhooks that have pending entries."""
        rows = self._read(
            "read the outbox", "SELECT DISTINCT webhook FROM outbox WHERE status = 'pending'"
        )
        return {name for (name,) in rows}

    def entries(
        self, *, webhook: str | None = None, status: DeliveryStatus | None = None
    ) -> list[OutboxEntry]:
        """Outbox entries, oldest first, optionally of one webhook and/or one status."""
        rows = self._read(
            "read the outbox",
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox"  # noqa: S608
            " WHERE (:webhook IS NULL OR webhook = :webhook)"
            " AND (:status IS NULL OR status = :status)"
            " ORDER BY id",
            {"webhook": webhook, "status": None if status is None else str(status)},
        )
        return [_entry(row) for row in rows]

    def outbox_progress(self, from_id: int, limit: int) -> list[OutboxProgress]:
        """The newest ``limit`` entries with an id of at least ``from_id``, oldest first."""
        rows = self._read("read the outbox", _PROGRESS, (from_id, limit))
        return [_progress(row) for row in reversed(rows)]

    def outbox_counts(self) -> dict[str, OutboxCounts]:
        """Per webhook, how many entries are pending, delivered and failed."""
        rows = self._read(
            "count the outbox",
            "SELECT webhook, status, COUNT(*) FROM outbox GROUP BY webhook, status",
        )
        tallies: dict[str, dict[str, int]] = {}
        for webhook, status, count in rows:
            tallies.setdefault(webhook, {})[status] = count
        return {name: OutboxCounts(**tally) for name, tally in tallies.items()}

    def pending_summary(self) -> dict[str, tuple[int, float]]:
        """Per webhook with pending entries: how many, and the oldest one's ``created_at``."""
        rows = self._read(
            "summarize the pending outbox",
            "SELECT webhook, COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'"
            " GROUP BY webhook",
        )
        return {webhook: (int(count), float(oldest)) for webhook, count, oldest in rows}

    # -- plumbing -------------------------------------------------------------------------------

    def _finish_attempt(self, entry_id: int, assignments: str, params: dict[str, Any]) -> bool:
        with self._transaction("record a delivery attempt") as conn:
            sql = f"UPDATE outbox SET {assignments} WHERE id = :id AND status = 'pending'"  # noqa: S608
            return conn.execute(sql, {**params, "id": entry_id}).rowcount == 1

    def _read(self, what: str, sql: str, params: Any = ()) -> list[Any]:
        with self._lock:
            conn = self._open_connection(what)
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise state_error(self.path, what, exc) from exc

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; ROLLBACK on any exception."""
        with self._lock:
            conn = self._open_connection(what)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                raise state_error(self.path, what, exc) from exc

    def _open_connection(self, what: str) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"state file {self.path}: cannot {what}: the store is closed")
        return self._conn


# -- rows -----------------------------------------------------------------------------------------


def _delivery_row(delivery: Delivery, at: float) -> tuple[str, str, bytes, str, float, float]:
    if not delivery.event_id or not delivery.webhook:
        raise InvalidValueError("a delivery needs a non-empty event id and webhook name")
    if not isinstance(delivery.body, bytes | bytearray | memoryview):
        raise InvalidValueError(f"delivery {delivery.event_id}: the body must be bytes")
    headers = _to_json(dict(delivery.headers), f"headers of delivery {delivery.event_id}")
    return (delivery.event_id, delivery.webhook, bytes(delivery.body), headers, at, at)


def _to_json(value: Mapping[str, Any], what: str) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{what} is not storable as JSON: {exc}") from exc


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    # Columns in _OUTBOX_COLUMNS order, which is the field order of OutboxEntry.
    id_, event_id, webhook, body, headers, created_at, status, *rest = row
    return OutboxEntry(
        id_, event_id, webhook, bytes(body), json.loads(headers), created_at,
        DeliveryStatus(status), *rest,
    )  # fmt: skip


def _progress(row: tuple[Any, ...]) -> OutboxProgress:
    id_, event_id, webhook, status, attempts, next_at, last_status, finished_at, fields = row
    event: dict[str, Any] | None = None
    if fields is not None:
        values = json.loads(fields)
        if all(isinstance(v, str) for v in values):
            event = dict(zip(_EVENT_FIELDS, values, strict=True))
    return OutboxProgress(
        id_, event_id, webhook, DeliveryStatus(status), attempts, next_at, last_status,
        finished_at, event,
    )  # fmt: skip
