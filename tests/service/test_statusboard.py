"""The status page's snapshot kept by the service: zones, reports, events and delivery states
read back from a real SQLite outbox (delivered, retrying with the next attempt, given up)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.render.snapshot import DeliveryState
from watchdog.service.statusboard import StatusBoard
from watchdog.service.store import Delivery, Store

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86400


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state file, closed after the test."""
    with Store(tmp_path / "state.sqlite") as opened:
        yield opened


def report(zone: str, expires_in: int) -> ZoneReport:
    sig = SignatureObservation(
        zone, "SOA", 7, 13, NOW - DAY, NOW + expires_in, 3600, Verification.VALID
    )
    server = ServerObservation(
        "127.0.0.1:53", None, True, 1, (RRsetObservation(zone, "SOA", 60, (sig,)),)
    )
    return assess_zone(
        ZoneObservation(zone, (server,), ChainStatus.TRUST_ANCHOR), NOW, ZonePolicy()
    )


def event_body(zone: str, kind: str = "raised") -> bytes:
    fields = {
        "schema": 1, "zone": zone, "condition": "expiry", "kind": kind,
        "old_severity": "ok", "new_severity": "warning", "at": "2030-01-01T00:00:00Z",
    }  # fmt: skip
    return json.dumps(fields).encode()


def test_zones_are_pending_until_checked_then_ordered_by_deadline() -> None:
    """Configured zones show as pending; recorded reports put them in deadline order."""
    board = StatusBoard()
    board.set_zones(["late.test.", "soon.test.", "new.test."], NOW)
    assert {z.severity for z in board.rebuild(NOW).zones} == {"pending"}
    board.record(report("late.test.", 20 * DAY), NOW + 900)
    board.record(report("soon.test.", DAY), NOW + 60)
    board.record(report("gone.test.", DAY), NOW + 60)
    names = [z.name for z in board.rebuild(NOW).zones]
    assert names == ["soon.test.", "late.test.", "new.test."]
    board.set_zones(["late.test."], NOW)
    assert [z.name for z in board.rebuild(NOW).zones] == ["late.test."]


def test_delivery_states_come_from_the_outbox(store: Store) -> None:
    """Delivered, retrying (with the next attempt) and given up, per webhook, as stored."""
    board = StatusBoard()
    board.set_zones(["a.test."], NOW)
    body = event_body("a.test.")
    store.enqueue([Delivery("e1", w, body) for w in ("ops", "chat", "pager")], now=NOW)
    entries = {e.webhook: e.id for e in store.entries()}
    store.mark_delivered(entries["ops"], status=204, at=NOW + 1)
    store.mark_retry(
        entries["chat"], status=503, error="HTTP 503", at=NOW + 1, next_attempt_at=NOW + 61
    )
    store.mark_failed(entries["pager"], status=410, error="HTTP 410", at=NOW + 2)
    board.refresh_deliveries(store)
    (event,) = board.rebuild(NOW).by_name["a.test."].events
    assert (event.id, event.kind, event.new_severity, event.at) == ("e1", "raised", "warning", NOW)
    states = {d.webhook: d for d in event.deliveries}
    assert states["ops"].state is DeliveryState.DELIVERED and states["ops"].finished_at == NOW + 1
    assert states["chat"].state is DeliveryState.RETRYING
    assert (states["chat"].next_attempt_at, states["chat"].last_status) == (NOW + 61, 503)
    assert states["pager"].state is DeliveryState.GIVEN_UP and states["pager"].attempts == 1
    # The retry succeeds later: the next read sees it (the pending entry is read again).
    store.mark_delivered(entries["chat"], status=200, at=NOW + 61)
    board.refresh_deliveries(store)
    (event,) = board.rebuild(NOW).by_name["a.test."].events
    assert {d.webhook: d.state for d in event.deliveries}["chat"] is DeliveryState.DELIVERED


def test_bodies_that_are_not_generic_events_are_skipped(store: Store) -> None:
    """A Slack or garbled body names no zone: nothing is made up from it, nothing breaks."""
    board = StatusBoard()
    board.set_zones(["a.test."], NOW)
    store.enqueue(
        [
            Delivery("e1", "slack", b'{"text": "a.test. warning"}'),
            Delivery("e2", "ops", b"\xff\xfe{not json"),
            Delivery("e3", "ops", b'["a.test."]'),
            Delivery("e4", "ops", event_body("other.test.")),
        ],
        now=NOW,
    )
    board.refresh_deliveries(store)
    assert board.rebuild(NOW).by_name["a.test."].events == ()
