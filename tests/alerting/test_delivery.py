"""Webhook delivery against real loopback receivers: retries, Retry-After, lanes, give-up, TLS."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from receivers import Receiver, Reply, free_port, tls_contexts
from structlog.testing import capture_logs

from watchdog.alerting.delivery import (
    RetryPolicy,
    Timeouts,
    WebhookDelivery,
    WebhookTarget,
    backoff_delay,
    parse_retry_after,
)
from watchdog.alerting.payloads import SIGNATURE_HEADER, signature_headers, verify_signature
from watchdog.errors import InvalidValueError
from watchdog.service.store import Delivery, DeliveryStatus, OutboxEntry, Store

FAST = RetryPolicy(base=0.02, cap=0.1, give_up_after=60)
SECRET = b"hmac-key-never-logged"


class _Ceiling(random.Random):
    """Jitter that always picks the top of its range, so a delay is exactly the backoff cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state file, closed after the test."""
    with Store(tmp_path / "state.db") as opened:
        yield opened


@asynccontextmanager
async def delivering(
    store: Store, targets: list[WebhookTarget], **options: Any
) -> AsyncIterator[WebhookDelivery]:
    """A notifier running in the background; stopped (and awaited) on exit."""
    options.setdefault("policy", FAST)
    stop = asyncio.Event()
    async with WebhookDelivery(store, targets, **options) as notifier:
        task = asyncio.create_task(notifier.run(stop))
        try:
            yield notifier
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)


async def eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)


def only_entry(store: Store, webhook: str = "ops") -> OutboxEntry:
    """The single outbox entry of a webhook."""
    [entry] = store.entries(webhook=webhook)
    return entry


def status_of(store: Store, webhook: str = "ops") -> DeliveryStatus:
    """Status of the single outbox entry of a webhook."""
    return only_entry(store, webhook).status


def enqueue(store: Store, *event_ids: str, webhook: str = "ops", now: float | None = None) -> None:
    """Enqueue JSON deliveries naming their event id in the body."""
    store.enqueue(
        [
            Delivery(
                e, webhook, b'{"event":"%s"}' % e.encode(), {"Content-Type": "application/json"}
            )
            for e in event_ids
        ],
        now=now,
    )


async def test_delivers_once_and_marks_delivered(store: Store) -> None:
    """A 2xx receiver gets the stored body and headers once; the entry becomes delivered."""
    enqueue(store, "ev-1")
    with Receiver([Reply(204)]) as receiver, capture_logs() as logs:
        async with delivering(store, [WebhookTarget("ops", receiver.url("/hooks/a"))]) as n:
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        [request] = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/a", b'{"event":"ev-1"}')
    assert request.headers["content-type"] == "application/json"
    assert (only_entry(store).attempts, only_entry(store).last_status) == (1, 204)
    assert n.stats.sent == 1
    sent = [e for e in logs if e["event"] == "delivery_sent"]
    assert sent == [
        {
            "event": "delivery_sent",
            "log_level": "info",
            "webhook": "ops",
            "event_id": "ev-1",
            "attempt": 1,
            "status": 204,
        }
    ]


async def test_server_error_is_retried_until_success(store: Store) -> None:
    """500 then 200: the same body is sent again and the entry is delivered after 2 attempts."""
    enqueue(store, "ev-1")
    with Receiver([Reply(500), Reply(200)]) as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        requests = receiver.requests
    assert [r.body for r in requests] == [b'{"event":"ev-1"}'] * 2
    entry = only_entry(store)
    assert (entry.attempts, entry.last_status, entry.last_error) == (2, 200, "HTTP 500")


async def test_429_retry_after_seconds_is_honoured(store: Store) -> None:
    """After 429 with Retry-After: 1 the next attempt waits at least that second."""
    enqueue(store, "ev-1")
    with Receiver([Reply(429, {"Retry-After": "1"})]) as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        first, second = receiver.requests
    # Without Retry-After, FAST would retry within 0.1 s.
    assert second.received_at - first.received_at >= 1.0


async def test_503_retry_after_http_date_is_honoured(store: Store) -> None:
    """After 503 with an HTTP-date Retry-After nothing is sent before that date."""
    retry_at = int(time.time()) + 2
    enqueue(store, "ev-1")
    reply = Reply(503, {"Retry-After": formatdate(retry_at, usegmt=True)})
    with Receiver([reply]) as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        _, second = receiver.requests
    assert second.received_at >= retry_at
    assert only_entry(store).attempts == 2


async def test_connection_refused_then_receiver_comes_up(store: Store) -> None:
    """Deliveries to a receiver that is down are retried and arrive once it listens."""
    port = free_port()
    enqueue(store, "ev-1")
    receiver = Receiver(port=port)
    async with delivering(store, [WebhookTarget("ops", receiver.url())]):
        await eventually(lambda: only_entry(store).attempts >= 2, "two failed attempts")
        assert only_entry(store).last_error == "connection failed: connection refused"
        with receiver:  # now it listens
            await eventually(lambda: status_of(store) == "delivered", "delivered")
            assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_is_not_followed(store: Store, status: int) -> None:
    """A 3xx is a failure, "redirect not followed"; the other host never sees a request."""
    enqueue(store, "ev-1")
    with Receiver(host="127.0.0.2") as elsewhere:
        redirect = Reply(status, {"Location": elsewhere.url("/stolen")})
        with Receiver(default=redirect) as receiver:
            async with delivering(store, [WebhookTarget("ops", receiver.url("/hook"))]):
                await eventually(lambda: only_entry(store).attempts >= 2, "two attempts")
            assert {r.path for r in receiver.requests} == {"/hook"}
        assert elsewhere.requests == []
    entry = only_entry(store)
    assert entry.status == DeliveryStatus.PENDING
    assert (entry.last_status, entry.last_error) == (
        status,
        f"redirect not followed (HTTP {status})",
    )


async def test_timeout_is_a_failure_then_retried(store: Store) -> None:
    """A receiver slower than the read timeout counts as a failed attempt, then is retried."""
    enqueue(store, "ev-1")
    timeouts = Timeouts(connect=2, read=0.2, write=2, pool=2)
    with Receiver([Reply(delay=30)]) as receiver, capture_logs() as logs:
        async with delivering(store, [WebhookTarget("ops", receiver.url())], timeouts=timeouts):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        assert len(receiver.requests) == 2
    failed = [e for e in logs if e["event"] == "delivery_failed"]
    assert [(e["attempt"], e["error"], e["status"]) for e in failed] == [(1, "read timeout", None)]


async def test_a_held_webhook_does_not_delay_another(store: Store) -> None:
    """While one receiver holds its request, the other webhook's deliveries go through."""
    enqueue(store, "slow-1", "slow-2", webhook="slow")
    enqueue(store, "fast-1", "fast-2", webhook="fast")
    with Receiver(default=Reply(hold=True)) as slow, Receiver() as fast:
        targets = [WebhookTarget("slow", slow.url()), WebhookTarget("fast", fast.url())]
        async with delivering(store, targets):
            await eventually(
                lambda: store.outbox_counts()["fast"].delivered == 2, "fast webhook delivered"
            )
            assert len(slow.requests) == 1  # its first request is still in flight
            assert store.outbox_counts()["slow"].pending == 2
            slow.release()
            await eventually(lambda: store.outbox_counts()["slow"].delivered == 2, "slow done")
    assert sorted(r.body for r in fast.requests) == [b'{"event":"fast-1"}', b'{"event":"fast-2"}']


async def test_a_down_webhook_does_not_delay_another(store: Store) -> None:
    """A webhook whose receiver refuses connections leaves the other one unaffected."""
    enqueue(store, "down-1", webhook="down")
    enqueue(store, "up-1", webhook="up")
    with Receiver() as up:
        targets = [
            WebhookTarget("down", f"http://127.0.0.1:{free_port()}/hook"),
            WebhookTarget("up", up.url()),
        ]
        async with delivering(store, targets):
            await eventually(lambda: status_of(store, "up") == "delivered", "up delivered")
            await eventually(lambda: only_entry(store, "down").attempts >= 2, "down retried")
    assert status_of(store, "down") == DeliveryStatus.PENDING


async def test_an_unwell_receiver_pauses_its_whole_lane(store: Store) -> None:
    """After a 503 no other entry of that webhook is tried until the backoff has passed."""
    enqueue(store, "ev-1", "ev-2", "ev-3")
    slow_retry = RetryPolicy(base=30, cap=30, give_up_after=3600)
    with Receiver(default=Reply(503)) as receiver:
        target = WebhookTarget("ops", receiver.url())
        async with WebhookDelivery(store, [target], policy=slow_retry, rng=_Ceiling()) as notifier:
            pending = await notifier.flush(timeout=5)
        assert len(receiver.requests) == 1
    assert pending == 3


async def test_a_rejected_body_delays_only_itself(store: Store) -> None:
    """A 400 is about one body: the webhook's other entries are still tried."""
    enqueue(store, "ev-1", "ev-2", "ev-3")
    slow_retry = RetryPolicy(base=30, cap=30, give_up_after=3600)
    with Receiver(default=Reply(400)) as receiver:
        target = WebhookTarget("ops", receiver.url())
        async with WebhookDelivery(store, [target], policy=slow_retry, rng=_Ceiling()) as notifier:
            pending = await notifier.flush(timeout=5)
        assert sorted(r.body for r in receiver.requests) == sorted(e.body for e in store.entries())
    assert pending == 3
    assert {e.last_error for e in store.entries()} == {"HTTP 400"}


async def test_an_unsendable_entry_does_not_stop_its_lane(store: Store) -> None:
    """An entry whose stored headers cannot be sent fails alone; the next one is delivered."""
    store.enqueue([Delivery("ev-bad", "ops", b"{}", {"X-Note": "caf\u00e9"})])
    enqueue(store, "ev-good")
    with Receiver() as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]):
            await eventually(
                lambda: store.outbox_counts()["ops"].delivered == 1, "good entry delivered"
            )
        assert [r.body for r in receiver.requests] == [b'{"event":"ev-good"}']
    bad = next(e for e in store.entries() if e.event_id == "ev-bad")
    assert (bad.status, bad.last_error) == (
        DeliveryStatus.PENDING,
        "request headers are not encodable",
    )


async def test_gives_up_after_the_age_and_keeps_the_entry(store: Store) -> None:
    """An entry that keeps failing past the give-up age is failed, counted, logged and kept."""
    enqueue(store, "ev-1")
    # The give-up age leaves room for a second attempt even on a loaded machine (a first
    # attempt that took 0.3 s alone made this test give up after one).
    policy = RetryPolicy(base=0.02, cap=0.05, give_up_after=1.5)
    with Receiver(default=Reply(500)) as receiver, capture_logs() as logs:
        async with delivering(store, [WebhookTarget("ops", receiver.url())], policy=policy) as n:
            await eventually(lambda: status_of(store) == "failed", "given up")
        requests = receiver.requests
    entry = only_entry(store)
    assert (entry.attempts, entry.last_status, entry.last_error) == (len(requests), 500, "HTTP 500")
    assert len(requests) >= 2
    assert n.stats.gave_up == 1
    assert store.outbox_counts()["ops"].failed == 1
    [gave_up] = [e for e in logs if e["event"] == "delivery_gave_up"]
    assert (gave_up["webhook"], gave_up["event_id"], gave_up["attempts"]) == (
        "ops",
        "ev-1",
        len(requests),
    )


async def test_an_old_entry_still_gets_one_attempt(store: Store) -> None:
    """An entry already past the give-up age (long outage) is tried once before giving up."""
    enqueue(store, "ev-old", now=time.time() - 7200)
    policy = RetryPolicy(base=0.02, cap=0.05, give_up_after=3600)
    with Receiver([Reply(200)]) as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())], policy=policy):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        assert len(receiver.requests) == 1


async def test_restart_delivers_a_pending_event_exactly_once(tmp_path: Path) -> None:
    """Enqueued, closed undelivered, reopened: delivered once, and a replay sends nothing."""
    path = tmp_path / "state.db"
    with Store(path) as first_run:
        enqueue(first_run, "ev-restart")
    with Receiver() as receiver, Store(path) as second_run:
        target = WebhookTarget("ops", receiver.url())
        async with delivering(second_run, [target]):
            await eventually(lambda: status_of(second_run) == "delivered", "delivered")
        enqueue(second_run, "ev-restart")  # the transition replayed after the restart
        async with WebhookDelivery(second_run, [target], policy=FAST) as notifier:
            assert await notifier.flush(timeout=5) == 0
        assert [r.body for r in receiver.requests] == [b'{"event":"ev-restart"}']
        assert [e.event_id for e in second_run.entries()] == ["ev-restart"]


async def test_each_attempt_is_signed_at_send_time(store: Store) -> None:
    """Every attempt carries payloads' signature of its body at that attempt's time, replacing
    a stale one stored with the entry."""
    before = int(time.time())
    stale = {SIGNATURE_HEADER.lower(): "t=1,v1=00", "Content-Type": "application/json"}
    store.enqueue([Delivery("ev-1", "ops", b'{"event":"ev-1"}', stale)])
    with Receiver([Reply(500), Reply(200)]) as receiver:
        target = WebhookTarget("ops", receiver.url(), hmac_secret=SECRET)
        async with delivering(store, [target], sign=signature_headers):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        requests = receiver.requests
    assert len(requests) == 2
    for request in requests:
        header = request.headers[SIGNATURE_HEADER.lower()]
        signed_at = int(header.removeprefix("t=").split(",")[0])
        assert before <= signed_at <= request.received_at
        assert verify_signature(header, request.body, SECRET, now=int(request.received_at))


async def test_wake_makes_a_new_entry_go_out_at_once(store: Store) -> None:
    """An idle notifier sends an entry enqueued later as soon as it is woken."""
    with Receiver() as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]) as notifier:
            await asyncio.sleep(0.05)  # let the lane go idle (its idle poll is 60 s)
            enqueue(store, "ev-late")
            notifier.wake()
            await receiver.async_wait_for(1)


async def test_flush_gives_up_waiting_at_its_bound(store: Store) -> None:
    """A held request is cut off at the flush bound and stays pending, with no attempt used."""
    enqueue(store, "ev-1")
    with Receiver(default=Reply(hold=True)) as receiver:
        async with WebhookDelivery(store, [WebhookTarget("ops", receiver.url())]) as notifier:
            assert await notifier.flush(timeout=0.3) == 1
        assert len(receiver.requests) == 1
    entry = only_entry(store)
    assert (entry.status, entry.attempts) == (DeliveryStatus.PENDING, 0)


async def test_entries_of_a_removed_webhook_are_given_up_when_old(store: Store) -> None:
    """Pending entries of an unconfigured webhook fail after the give-up age, loudly."""
    enqueue(store, "ev-old", webhook="gone", now=time.time() - 7200)
    enqueue(store, "ev-new", webhook="gone")
    policy = RetryPolicy(base=0.02, cap=0.05, give_up_after=3600)
    with Receiver() as receiver, capture_logs() as logs:
        async with delivering(store, [WebhookTarget("ops", receiver.url())], policy=policy) as n:
            await eventually(lambda: n.stats.gave_up == 1, "old entry given up")
    statuses = {e.event_id: (e.status, e.last_error) for e in store.entries()}
    assert statuses == {
        "ev-old": (DeliveryStatus.FAILED, "webhook no longer configured"),
        "ev-new": (DeliveryStatus.PENDING, None),
    }
    assert any(e["event"] == "delivery_webhook_unknown" and e["pending"] == 2 for e in logs)


async def test_self_signed_certificate_is_refused(store: Store, tmp_path: Path) -> None:
    """TLS is verified: a receiver with an untrusted certificate gets no request."""
    server_tls, _ = tls_contexts(tmp_path)
    enqueue(store, "ev-1")
    with Receiver(tls=server_tls) as receiver:
        async with delivering(store, [WebhookTarget("ops", receiver.url())]):
            await eventually(lambda: only_entry(store).attempts >= 1, "an attempt")
        assert receiver.requests == []
    error = only_entry(store).last_error or ""
    assert error.startswith("connection failed: TLS certificate verification failed")


async def test_a_trusted_certificate_delivers(store: Store, tmp_path: Path) -> None:
    """With the receiver's certificate trusted, the same HTTPS delivery succeeds."""
    server_tls, client_tls = tls_contexts(tmp_path)
    enqueue(store, "ev-1")
    with Receiver(tls=server_tls) as receiver:
        target = WebhookTarget("ops", receiver.url())
        async with delivering(store, [target], tls_context=client_tls):
            await eventually(lambda: status_of(store) == "delivered", "delivered")
        assert len(receiver.requests) == 1


async def test_no_url_or_secret_in_logs_or_stored_errors(store: Store) -> None:
    """Refused, 500 and redirect outcomes never log or store the URL, its token or the key."""
    token = "T0KEN-s3cr3t"
    enqueue(store, "ev-refused", webhook="refused")
    enqueue(store, "ev-500", webhook="broken")
    enqueue(store, "ev-redirect", webhook="moved")
    with (
        Receiver(default=Reply(500)) as broken,
        Receiver(default=Reply(302, {"Location": f"http://127.0.0.1:1/{token}"})) as moved,
        capture_logs() as logs,
    ):
        targets = [
            WebhookTarget("refused", f"http://127.0.0.1:{free_port()}/{token}?key={token}", "x"),
            WebhookTarget("broken", broken.url(f"/{token}"), hmac_secret=SECRET),
            WebhookTarget("moved", moved.url(f"/{token}"), hmac_secret=SECRET),
        ]
        async with delivering(store, targets, sign=signature_headers):
            await eventually(
                lambda: all(e.attempts >= 2 for e in store.entries()), "two attempts each"
            )
    recorded = repr(logs) + repr([e.last_error for e in store.entries()]) + repr(targets)
    assert logs
    assert token not in recorded
    assert SECRET.decode() not in recorded
    assert "127.0.0.1" not in recorded


def test_invalid_url_error_does_not_show_the_url() -> None:
    """A bad webhook URL is refused by name, without echoing the (secret) value."""
    with pytest.raises(InvalidValueError, match="'ops'") as raised:
        WebhookTarget("ops", "ftp://example.net/T0KEN")
    assert "T0KEN" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Fri, 01 Jan 2027 00:01:40 GMT", 100.0),
        ("Thu, 31 Dec 2026 23:00:00 GMT", 0.0),  # a date in the past: no wait
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is delay-seconds or an HTTP-date (RFC 9110 10.2.3); anything else is ignored."""
    assert parse_retry_after(value, now=1_798_761_600.0) == expected  # 2027-01-01T00:00:00Z


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_under_the_capped_exponential(failures: int, seed: int) -> None:
    """The n-th delay lies in [0, min(cap, base * 2^(n-1))]."""
    policy = RetryPolicy(base=5, cap=600, give_up_after=86400)
    delay = backoff_delay(failures, policy, random.Random(seed))
    assert 0 <= delay <= min(600, 5 * 2 ** (failures - 1))


def test_backoff_reaches_its_ceiling() -> None:
    """With jitter at its top, delays double from the base up to the cap."""
    policy = RetryPolicy(base=5, cap=600, give_up_after=86400)
    delays = [backoff_delay(n, policy, _Ceiling()) for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600]


def test_target_repr_hides_url_and_secret() -> None:
    """repr() of a target, as logged by accident, shows neither URL nor key."""
    target = WebhookTarget("ops", "https://hooks.example.net/T0KEN", "slack", b"k3y")
    assert "T0KEN" not in repr(target)
    assert "k3y" not in repr(target)
    assert "ops" in repr(target)


async def test_lane_sends_oldest_first_after_an_outage(tmp_path: Path) -> None:
    """A "recovered" must not overtake the "raised" whose delivery failed during an outage."""
    with Store(tmp_path / "s.sqlite3") as store, Receiver() as receiver:
        store.enqueue([Delivery("raised", "ops", b"raised", {})], now=100.0)
        first = store.next_pending("ops")
        assert first is not None
        store.mark_retry(
            first.id, status=None, error="connection failed", at=100.0, next_attempt_at=160.0
        )
        store.enqueue([Delivery("recovered", "ops", b"recovered", {})], now=150.0)
        async with WebhookDelivery(
            store, [WebhookTarget("ops", receiver.url())], clock=lambda: 200.0
        ) as notifier:
            assert await notifier.flush(5) == 0
        assert [r.body for r in receiver.requests] == [b"raised", b"recovered"]
