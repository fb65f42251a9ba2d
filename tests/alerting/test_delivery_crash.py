"""A lane that meets something unforeseen: the entry is retried, the lane restarted, none lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from receivers import Receiver, Reply
from structlog.testing import capture_logs

from watchdog.alerting import delivery
from watchdog.alerting.delivery import RetryPolicy, WebhookDelivery, WebhookTarget
from watchdog.alerting.retry import Outcome
from watchdog.service.store import Delivery, Store
from watchdog.service.supervisor import Supervisor

FAST = RetryPolicy(base=0.02, cap=0.1, give_up_after=60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state file, closed after the test."""
    with Store(tmp_path / "state.db") as opened:
        yield opened


def _enqueue(store: Store, event_id: str, webhook: str) -> None:
    store.enqueue([Delivery(event_id, webhook, b"{}", {"Content-Type": "application/json"})])


async def _until_delivered(store: Store, webhook: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while sum(e.status == "delivered" for e in store.entries(webhook=webhook)) < count:
        assert time.monotonic() < deadline, f"{webhook}: {count} not delivered within 20 s"
        await asyncio.sleep(0.02)


async def test_a_crashing_attempt_is_retried_and_the_lane_restarted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug raised during an attempt: logged as task_crashed, the entry retried, delivered."""
    real = delivery.classify
    calls = 0

    def crash_once(status: int, headers: Mapping[str, str], now: float) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected fault")
        return real(status, headers, now)

    monkeypatch.setattr(delivery, "classify", crash_once)
    supervisor = Supervisor(backoff_base=0.01)
    _enqueue(store, "ev-1", "ops")
    stop = asyncio.Event()
    with Receiver(default=Reply(200)) as receiver, capture_logs() as logs:
        target = WebhookTarget("ops", receiver.url())
        async with WebhookDelivery(store, [target], policy=FAST, supervisor=supervisor) as n:
            task = asyncio.create_task(n.run(stop))
            await _until_delivered(store, "ops", 1)
            stop.set()
            await asyncio.wait_for(task, timeout=10)
    [entry] = store.entries(webhook="ops")
    assert (entry.attempts, entry.last_error) == (2, "internal error (RuntimeError)")
    assert supervisor.restarts == {"webhook:ops": 1}
    crashed = [e for e in logs if e["event"] == "task_crashed"]
    assert [(e["task"], e["error"]) for e in crashed] == [("webhook:ops", "injected fault")]
    failed = [e for e in logs if e["event"] == "delivery_failed"]
    assert [(e["webhook"], e["error"]) for e in failed] == [
        ("ops", "internal error (RuntimeError)")
    ]


async def test_a_non_ascii_retry_after_delays_its_lane_only(store: Store) -> None:
    """429 with "Retry-After: \\xb3" (issue 17): retried, and the good lane delivers meanwhile."""
    _enqueue(store, "ev-1", "hostile")
    _enqueue(store, "ev-1", "good")
    hostile_reply = Reply(429, headers={"Retry-After": "\xb3"})
    stop = asyncio.Event()
    with (
        Receiver([hostile_reply], default=Reply(200)) as hostile,
        Receiver(default=Reply(200)) as good,
        capture_logs() as logs,
    ):
        targets = [WebhookTarget("hostile", hostile.url()), WebhookTarget("good", good.url())]
        async with WebhookDelivery(store, targets, policy=FAST) as n:
            task = asyncio.create_task(n.run(stop))
            await _until_delivered(store, "good", 1)
            await _until_delivered(store, "hostile", 1)
            _enqueue(store, "ev-2", "good")
            n.wake()
            await _until_delivered(store, "good", 2)
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        assert hostile.requests[0].headers  # the receiver did answer the first attempt
    assert not [e for e in logs if e["event"] == "task_crashed"]
    failed = [e for e in logs if e["event"] == "delivery_failed"]
    assert [(e["webhook"], e["status"], e["error"]) for e in failed] == [
        ("hostile", 429, "HTTP 429")
    ]
