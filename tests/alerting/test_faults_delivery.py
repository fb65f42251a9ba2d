"""Issue 8, delivery side: whatever a webhook receiver does, no event is lost.

tests/alerting/test_delivery.py already pins most single behaviours (refused, 500, 429 and 503 with
Retry-After, read timeout, redirect not followed, untrusted TLS, give-up, restart, secrets);
RELIABILITY.md cites them. Added here:

- the behaviours it lacks, on raw HTTP servers on 127.0.0.1 that misbehave at the byte level: a
  slow body, a status line and headers trickled a byte at a time (which used to hold a lane
  forever: httpx's timeouts are per read), bytes that are not HTTP, a connection closed without
  an answer;
- for every receiver fault, the count that matters: events produced (enqueued) against events
  delivered (a 2xx), failed (given up, kept) and pending. Nothing may be lost: produced ==
  delivered + failed + pending, every event id reaches the receiver once it recovers, and a
  given-up event is kept and logged. ``pytest -s`` prints one table row per case.

SIGKILL of the real service mid-delivery is tests/service/test_service_restart.py
(at-least-once, one event id per transition).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from receivers import Receiver, Reply, free_port, tls_contexts
from structlog.testing import capture_logs

from watchdog.alerting.delivery import RetryPolicy, Timeouts, WebhookDelivery, WebhookTarget
from watchdog.service.store import Delivery, DeliveryStatus, Store

HOST = "127.0.0.1"
EVENTS = 5
FAST = RetryPolicy(base=0.02, cap=0.1, give_up_after=120)
# Per-operation timeouts; an attempt as a whole is bounded by their sum (3.5 s here).
QUICK = Timeouts(connect=1.0, read=0.5, write=1.0, pool=1.0)
ATTEMPT_LIMIT = QUICK.connect + QUICK.read + QUICK.write + QUICK.pool


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as opened:
        yield opened


def produce(store: Store, webhook: str = "ops") -> list[str]:
    """Enqueue EVENTS deliveries whose body names their event id; return the ids."""
    ids = [f"ev-{webhook}-{i}" for i in range(EVENTS)]
    store.enqueue(
        [Delivery(e, webhook, json.dumps({"event": e}).encode(), {}) for e in ids], now=time.time()
    )
    return ids


@asynccontextmanager
async def delivering(store: Store, url: str, **options: Any) -> AsyncIterator[WebhookDelivery]:
    """A notifier for one webhook "ops" running in the background; stopped on exit."""
    options.setdefault("policy", FAST)
    options.setdefault("timeouts", QUICK)
    stop = asyncio.Event()
    async with WebhookDelivery(store, [WebhookTarget("ops", url)], **options) as notifier:
        task = asyncio.create_task(notifier.run(stop))
        try:
            yield notifier
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)


async def eventually(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Tally:
    """Events produced against where each one ended, for one receiver fault."""

    case: str
    produced: int
    delivered: int
    failed: int
    pending: int
    received_ids: int  # distinct event ids the receiver saw

    @property
    def lost(self) -> int:
        return self.produced - self.delivered - self.failed - self.pending

    def row(self) -> str:
        return (
            f"| {self.case} | {self.produced} | {self.delivered} | {self.failed} | "
            f"{self.pending} | {self.lost} |"
        )


def tally(case: str, store: Store, ids: list[str], received: set[str]) -> Tally:
    counts = store.outbox_counts().get("ops")
    assert counts is not None
    result = Tally(case, len(ids), counts.delivered, counts.failed, counts.pending,
                   len(received & set(ids)))  # fmt: skip
    print(result.row())
    assert result.lost == 0
    return result


# --- a receiver that misbehaves at the byte level ------------------------------------------------

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class RawReceiver:
    """An HTTP server on 127.0.0.1 written on raw streams, so that it can break HTTP. Each
    connection takes the next behaviour of ``script`` (then "ok"); request bodies are kept."""

    def __init__(self, script: list[str]) -> None:
        self.script = collections.deque(script)
        self.bodies: list[bytes] = []
        self.answered: list[str] = []  # the behaviour each connection got
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> RawReceiver:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.sockets[0].getsockname()[1]}/hook"

    def ids(self) -> set[str]:
        return {json.loads(b)["event"] for b in self.bodies}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            body = await reader.readexactly(length)
            behaviour = self.script.popleft() if self.script else "ok"
            self.answered.append(behaviour)
            await self._behaviour(behaviour)(writer)
            if behaviour == "ok":
                self.bodies.append(body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up on us: that is the point of these behaviours
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.discard(task)

    @staticmethod
    async def _trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.2) -> None:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)

    @staticmethod
    async def _ok(writer: asyncio.StreamWriter) -> None:
        writer.write(OK_RESPONSE)
        await writer.drain()

    @classmethod
    async def _trickled_headers(cls, writer: asyncio.StreamWriter) -> None:
        # Each byte within the read timeout, the whole far beyond any sensible attempt.
        await cls._trickle(writer, b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 400 + b"\r\n\r\n")

    @classmethod
    async def _slow_body(cls, writer: asyncio.StreamWriter, status: bytes = b"200 OK") -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 1000\r\n\r\n")
        await writer.drain()
        await cls._trickle(writer, b"x" * 1000)

    @classmethod
    async def _slow_body_500(cls, writer: asyncio.StreamWriter) -> None:
        await cls._slow_body(writer, b"500 Internal Server Error")

    @staticmethod
    async def _garbage(writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        pass  # closed without a byte of answer

    def _behaviour(self, name: str) -> Callable[[asyncio.StreamWriter], Awaitable[None]]:
        method: Callable[[asyncio.StreamWriter], Awaitable[None]] = getattr(
            self, "_" + name.replace("-", "_")
        )
        return method


# --- behaviours test_notify.py does not cover -------------------------------------------------


async def test_a_slow_body_after_a_2xx_does_not_hold_the_delivery(store: Store) -> None:
    """200 and headers at once, then a body trickling for minutes: delivered on the status
    line, the body is never waited for (nothing in it matters)."""
    ids = produce(store)
    async with RawReceiver(["slow-body"] * EVENTS) as receiver:
        started = time.monotonic()
        async with delivering(store, receiver.url()):
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
        elapsed = time.monotonic() - started
    assert receiver.answered == ["slow-body"] * EVENTS
    assert elapsed < EVENTS * ATTEMPT_LIMIT  # a bound: no attempt waited for its body
    tally("slow body after 200", store, ids, set(ids))


async def test_a_slow_body_after_a_500_is_a_failure_then_retried(store: Store) -> None:
    """A 500 whose body trickles: the failure is known from the status line; retried; sent."""
    ids = produce(store)
    async with RawReceiver(["slow-body-500"]) as receiver:
        async with delivering(store, receiver.url()):
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
        assert receiver.ids() == set(ids)
    assert "HTTP 500" in {e.last_error for e in store.entries()}
    tally("slow body after 500", store, ids, receiver.ids())


async def test_trickled_headers_cannot_hold_a_lane(store: Store) -> None:
    """A receiver sending its status line and headers a byte every 0.2 s (each read within
    the 0.5 s read timeout): the attempt is cut at the sum of the timeouts, recorded as an
    attempt timeout, and the event is sent on the next attempt."""
    ids = produce(store)
    with capture_logs() as logs:
        async with RawReceiver(["trickled-headers"]) as receiver:
            started = time.monotonic()
            async with delivering(store, receiver.url()):
                await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
            elapsed = time.monotonic() - started
    failed = [e for e in logs if e["event"] == "delivery_failed"]
    assert [e["error"] for e in failed] == [
        f"attempt timeout: no complete answer within {ATTEMPT_LIMIT:g} s"
    ]
    assert elapsed < 2 * ATTEMPT_LIMIT + 5  # one cut attempt, then the rest at once
    tally("status line and headers trickled", store, ids, receiver.ids())


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("garbage", "receiver broke the HTTP protocol"),
        ("close", "receiver broke the HTTP protocol"),
    ],
)
async def test_an_answer_that_is_not_http_is_a_failure_then_retried(
    store: Store, behaviour: str, error: str
) -> None:
    """Bytes that are not HTTP, or a connection closed without answer: a failed attempt
    described without the URL, then retried and sent."""
    ids = produce(store)
    async with RawReceiver([behaviour]) as receiver, delivering(store, receiver.url()):
        await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
    errors = {e.last_error or "" for e in store.entries()} - {""}
    assert errors and all(e.startswith(error) and HOST not in e for e in errors), errors
    tally(f"answer {behaviour}", store, ids, receiver.ids())


# --- produced against delivered, for every receiver fault -----------------------------------------


async def _recovering(store: Store, replies: list[Reply], case: str) -> None:
    """``replies`` first, then 200s: every produced event is delivered."""
    ids = produce(store)
    with Receiver(replies) as receiver:
        async with delivering(store, receiver.url()):
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
        received = {json.loads(r.body)["event"] for r in receiver.requests}
    assert received == set(ids)
    tally(case, store, ids, received)


@pytest.mark.parametrize(
    ("case", "replies"),
    [
        ("500 three times", [Reply(500)] * 3),
        ("503 with Retry-After: 1", [Reply(503, {"Retry-After": "1"})]),
        ("429 with Retry-After: 1", [Reply(429, {"Retry-After": "1"})]),
        ("timeout (answer after the read timeout)", [Reply(delay=10)]),
        ("redirect to another host, twice", [Reply(302, {"Location": "http://127.0.0.2/x"})] * 2),
    ],
)
async def test_every_event_survives_a_receiver_fault(
    store: Store, case: str, replies: list[Reply]
) -> None:
    """The receiver fails first, then recovers: produced == delivered, each id received."""
    await _recovering(store, replies, case)


async def test_every_event_survives_connection_refused(store: Store) -> None:
    """Nothing listens, then the receiver starts on that port: every event arrives."""
    ids = produce(store)
    port = free_port()
    async with delivering(store, f"http://{HOST}:{port}/hook"):
        await eventually(lambda: store.entries()[0].attempts >= 2, "two refused attempts")
        with Receiver(port=port) as receiver:
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
            received = {json.loads(r.body)["event"] for r in receiver.requests}
    assert received == set(ids)
    assert store.entries()[0].last_error == "connection failed: connection refused"
    tally("connection refused, then up", store, ids, received)


async def test_an_untrusted_certificate_is_rejected_then_nothing_is_lost(
    store: Store, tmp_path: Path
) -> None:
    """A self-signed receiver: no request reaches it, every event stays pending with the TLS
    reason; once the certificate is trusted (here: the client context), all are delivered."""
    server_tls, client_tls = tls_contexts(tmp_path)
    ids = produce(store)
    with Receiver(tls=server_tls) as receiver:
        async with delivering(store, receiver.url()):
            await eventually(lambda: store.entries()[0].attempts >= 2, "two attempts")
        assert receiver.requests == []
        assert store.outbox_counts()["ops"].pending == EVENTS
        assert (store.entries()[0].last_error or "").startswith(
            "connection failed: TLS certificate verification failed"
        )
        async with delivering(store, receiver.url(), tls_context=client_tls):
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
        received = {json.loads(r.body)["event"] for r in receiver.requests}
    tally("untrusted TLS certificate, then trusted", store, ids, received)


async def test_a_receiver_down_past_the_give_up_age_keeps_every_event_as_failed(
    store: Store,
) -> None:
    """Down for longer than give_up_after: every event is kept as failed, each logged as
    delivery_gave_up (error level) and counted; none is silently dropped."""
    ids = produce(store)
    policy = RetryPolicy(base=0.02, cap=0.05, give_up_after=0.5)
    with capture_logs() as logs:
        async with delivering(store, f"http://{HOST}:{free_port()}/hook", policy=policy) as n:
            await eventually(lambda: store.outbox_counts()["ops"].failed == EVENTS, "given up")
            assert n.stats.gave_up == EVENTS
    gave_up = [e for e in logs if e["event"] == "delivery_gave_up"]
    assert sorted(e["event_id"] for e in gave_up) == sorted(ids)
    assert all(e["log_level"] == "error" for e in gave_up)
    assert [e.status for e in store.entries()] == [DeliveryStatus.FAILED] * EVENTS
    tally("receiver down past the give-up age", store, ids, set())


async def test_a_restart_mid_delivery_sends_the_same_event_id_again(store: Store) -> None:
    """The notifier is stopped while the receiver holds a request (the flush bound cuts it):
    the next notifier sends it again under the same event id; nothing else is repeated."""
    ids = produce(store)
    with Receiver([Reply(hold=True)]) as receiver:
        async with WebhookDelivery(store, [WebhookTarget("ops", receiver.url())], policy=FAST,
                            timeouts=QUICK) as first:  # fmt: skip
            assert await first.flush(0.5) == EVENTS  # cut off in flight: all still pending
        receiver.release()
        async with delivering(store, receiver.url()):
            await eventually(lambda: store.outbox_counts()["ops"].delivered == EVENTS, "sent")
        seen = [json.loads(r.body)["event"] for r in receiver.requests]
    assert sorted(set(seen)) == sorted(ids)
    assert seen.count(ids[0]) == 2 and len(seen) == EVENTS + 1  # at-least-once, one id
    tally("notifier stopped mid-request, restarted", store, ids, set(seen))
