"""Webhook delivery from the persisted outbox: at-least-once, with backoff, one lane per webhook.

Each configured webhook has its own lane (a task, a lock, a wake-up event): a receiver that is
down or slow delays only its own deliveries. A lane sends its due entries one at a time, oldest
first. When an attempt fails in a way that says the receiver is unwell (no connection, timeout,
redirect, 408, 429, 5xx) the whole lane waits until that entry's next attempt, so a dead receiver
sees one request per backoff step, not one per queued event; a rejection of one body (other 4xx)
delays only that entry.

Retry timing: exponential backoff with full jitter, uniform(0, min(cap, base * 2^(n-1))) after
the n-th failure ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015), but never sooner
than a 429/503 Retry-After (RFC 9110 10.2.3: delay-seconds or HTTP-date). An entry is marked
delivered only after a 2xx. Every pending entry gets its attempt when due, even after a long
outage; a failed attempt whose next retry would fall past the give-up age gives up: the entry is
kept as ``failed``, logged as ``delivery_gave_up`` and counted in ``stats.gave_up``.

Every attempt is bounded as a whole by the sum of its timeouts (connect + write + read + pool):
httpx's timeouts apply to each network operation, so a receiver trickling its status line or
headers a byte at a time would otherwise hold its lane forever.

Redirects are never followed (a 3xx is a failure, "redirect not followed"), TLS certificates are
verified against the system's trust store (OpenSSL's default paths: /etc/ssl/certs on Debian),
or against a webhook's own ``ca_file`` (an internal CA) instead, and the webhook URL, which is
a secret, never appears in a log event or a stored error: events name the webhook, and
transport errors are described from their type, then scrubbed (watchdog.alerting.transport).

Store calls run through ``asyncio.to_thread`` (see ``watchdog.service.store``), so the loop
never waits on SQLite.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, Self, TypeVar

import httpx
import structlog

from watchdog.alerting.retry import Outcome, RetryPolicy, backoff_delay, classify, parse_retry_after
from watchdog.alerting.transport import ca_context, describe_transport_error
from watchdog.errors import InvalidValueError, StateError
from watchdog.service.records import DeliveryStatus, OutboxEntry
from watchdog.service.store import Store
from watchdog.service.supervisor import Supervisor

__all__ = [
    "DeliveryStats",
    "RetryPolicy",
    "Signer",
    "Timeouts",
    "WebhookDelivery",
    "WebhookTarget",
    "backoff_delay",
    "parse_retry_after",
]

log = structlog.get_logger(__name__)

Signer = Callable[[bytes, bytes, int], Mapping[str, str]]
"""``sign(body, secret, unix_time) -> headers`` adding a signature at send time (payloads.py)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")
_IDLE_POLL = 60.0  # also picks up entries enqueued without a wake()
_SWEEP_EVERY = 300.0


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A configured receiver. ``url`` and ``hmac_secret`` are secrets: ``repr`` hides them."""

    name: str
    url: str
    kind: str = "generic"
    hmac_secret: bytes | None = None
    ca_file: Path | None = None  # PEM CA certificates trusted instead of the system's

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidValueError("a webhook needs a non-empty name")
        try:
            parsed = httpx.URL(self.url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidValueError(
                f"webhook {self.name!r}: the url must be an absolute http:// or https:// URL "
                "(the value is not shown because it is a secret)"
            )

    def __repr__(self) -> str:
        secret = "<set>" if self.hmac_secret else None
        return (
            f"WebhookTarget(name={self.name!r}, kind={self.kind!r}, url=<hidden>, "
            f"hmac_secret={secret})"
        )


@dataclass(frozen=True, slots=True)
class Timeouts:
    """httpx timeouts, in seconds, for one attempt."""

    connect: float = 5.0
    read: float = 15.0
    write: float = 10.0
    pool: float = 5.0


@dataclass(slots=True)
class DeliveryStats:
    """Counters since start, for the service to show (``failed_attempts`` includes the last
    attempt of an entry given up). ``outcomes`` counts the same per (webhook, result), result
    being "sent", "failed" or "gave_up" (the metric dnssec_watchdog_deliveries_total)."""

    sent: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


class _Lane:
    def __init__(self, target: WebhookTarget) -> None:
        self.target = target
        self.lock = asyncio.Lock()
        self.wakeup = asyncio.Event()
        self.paused_until = 0.0


class WebhookDelivery:
    """Sends the outbox's pending entries to their webhooks; use as ``async with``."""

    def __init__(
        self,
        store: Store,
        targets: Iterable[WebhookTarget],
        *,
        policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        sign: Signer | None = None,
        tls_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        supervisor: Supervisor | None = None,
        stats: DeliveryStats | None = None,
    ) -> None:
        self._store = store
        self._supervisor = supervisor or Supervisor()
        self._lanes = {t.name: _Lane(t) for t in targets}
        self._policy = policy or RetryPolicy()
        t = timeouts or Timeouts()
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
        self._attempt_limit = t.connect + t.write + t.read + t.pool
        self._sign = sign
        self._verify = tls_context
        self._rng = rng or random.Random()
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._ca_clients: dict[Path, httpx.AsyncClient] = {}
        self.stats = stats if stats is not None else DeliveryStats()

    async def __aenter__(self) -> Self:
        # The system's trust store, not httpx's default (certifi's copy of Mozilla's list):
        # what an operator expects on Debian, and where an internal root is installed.
        self._client = self._new_client(self._verify or ssl.create_default_context())
        for lane in self._lanes.values():
            ca_file = lane.target.ca_file
            if ca_file is not None and ca_file not in self._ca_clients:
                self._ca_clients[ca_file] = self._new_client(ca_context(lane.target.name, ca_file))
        return self

    async def __aexit__(self, *exc: object) -> None:
        clients = [c for c in (self._client, *self._ca_clients.values()) if c is not None]
        self._client, self._ca_clients = None, {}
        for client in clients:
            await client.aclose()

    def _new_client(self, verify: ssl.SSLContext) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            verify=verify,
            headers={"User-Agent": "dnssec-watchdog"},
        )

    def wake(self, webhook: str | None = None) -> None:
        """New entries were enqueued (for one webhook or any): look at the outbox now."""
        for name, lane in self._lanes.items():
            if webhook is None or name == webhook:
                lane.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then let in-flight attempts finish and return."""
        self._require_client()
        # A lane waits at most _IDLE_POLL, and an attempt lasts at most _attempt_limit: a lane
        # silent for twice both is wedged.
        within = 2 * (_IDLE_POLL + self._attempt_limit)
        workers = [
            self._supervisor.spawn(
                _lane_task(lane), functools.partial(self._work, lane, stop), progress_within=within
            )
            for lane in self._lanes.values()
        ]
        workers.append(
            self._supervisor.spawn("webhook-sweep", functools.partial(self._sweep, stop))
        )
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            await asyncio.gather(*workers)
        finally:
            relay.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(relay, *workers, return_exceptions=True)

    async def flush(self, timeout: float) -> int:  # noqa: ASYNC109 -- a shutdown bound, by design
        """Send what is due now, all lanes in parallel, within ``timeout`` s; returns how many
        entries are still pending. An attempt cut off by the timeout stays pending (sent again
        at the next start: at-least-once)."""
        self._require_client()
        try:
            async with asyncio.timeout(timeout):
                lanes = list(self._lanes.values())
                drained = await asyncio.gather(
                    *(self._drain(lane) for lane in lanes), return_exceptions=True
                )
            for lane, result in zip(lanes, drained, strict=True):
                if isinstance(result, Exception):  # its entry stays pending: sent next start
                    log.error(
                        "delivery_flush_failed",
                        webhook=lane.target.name,
                        error_type=type(result).__name__,
                    )
        except TimeoutError:
            log.warning("delivery_flush_timed_out", timeout=timeout)
        counts = await self._call(self._store.outbox_counts)
        return sum(c.pending for c in counts.values())

    # -- lanes ----------------------------------------------------------------------------------

    async def _work(self, lane: _Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._supervisor.progress(_lane_task(lane))
            lane.wakeup.clear()
            try:
                due_at = await self._step(lane)
            except StateError as exc:
                log.error("outbox_unavailable", webhook=lane.target.name, error=str(exc))
                due_at = self._clock() + self._policy.base
            if due_at is not None and due_at <= self._clock():
                continue
            wait = _IDLE_POLL if due_at is None else due_at - self._clock()
            with suppress(TimeoutError):
                await asyncio.wait_for(lane.wakeup.wait(), timeout=min(wait, _IDLE_POLL))

    async def _drain(self, lane: _Lane) -> None:
        while (due_at := await self._step(lane)) is not None and due_at <= self._clock():
            pass

    async def _step(self, lane: _Lane) -> float | None:
        """Attempt the lane's first entry if it is due; return when the next one is due."""
        async with lane.lock:
            entry = await self._call(self._store.next_pending, lane.target.name, self._clock())
            if entry is None:
                return None
            due_at = max(entry.next_attempt_at, lane.paused_until)
            if due_at > self._clock():
                return due_at
            try:
                await self._attempt(lane, entry)
            except Exception as exc:
                # A bug met on the way (a header nobody foresaw): this entry is retried like
                # any failed attempt, never lost; the lane's supervisor logs and restarts it.
                await self._failed(lane, entry, _unexpected(exc))
                raise
            return self._clock()  # look again at once

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.wake()

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Give up entries of webhooks no longer configured once they pass the give-up age."""
        while not stop.is_set():
            try:
                await self._give_up_orphans()
            except StateError as exc:
                log.error("outbox_unavailable", error=str(exc))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_SWEEP_EVERY)

    async def _give_up_orphans(self) -> None:
        orphans = await self._call(self._store.pending_webhooks) - self._lanes.keys()
        for name in sorted(orphans):
            entries = await self._call(
                self._store.entries, webhook=name, status=DeliveryStatus.PENDING
            )
            log.warning("delivery_webhook_unknown", webhook=name, pending=len(entries))
            now = self._clock()
            for entry in entries:
                if now - entry.created_at < self._policy.give_up_after:
                    continue
                error = "webhook no longer configured"
                marked = await self._call(
                    self._store.mark_failed,
                    entry.id,
                    status=None,
                    error=error,
                    at=now,
                    attempted=False,
                )
                if marked:
                    self._gave_up(name, entry, entry.attempts, None, error, now)

    # -- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, lane: _Lane, entry: OutboxEntry) -> None:
        name = lane.target.name
        attempt = entry.attempts + 1
        started = self._clock()
        outcome = await self._post(lane.target, entry, started)
        now = self._clock()
        if outcome.error is None:
            assert outcome.status is not None
            await self._call(self._store.mark_delivered, entry.id, status=outcome.status, at=now)
            self.stats.sent += 1
            self.stats.outcomes[name, "sent"] += 1
            log.info(
                "delivery_sent",
                webhook=name,
                event_id=entry.event_id,
                attempt=attempt,
                status=outcome.status,
            )
            return
        await self._failed(lane, entry, outcome)

    async def _failed(self, lane: _Lane, entry: OutboxEntry, outcome: Outcome) -> None:
        """Record a failed attempt: retry after a backoff, or give up past the give-up age."""
        assert outcome.error is not None
        name = lane.target.name
        attempt = entry.attempts + 1
        now = self._clock()
        delay = backoff_delay(attempt, self._policy, self._rng)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        next_at = now + delay
        self.stats.failed_attempts += 1
        self.stats.outcomes[name, "failed"] += 1
        if outcome.receiver_unwell:
            lane.paused_until = next_at
        if next_at - entry.created_at > self._policy.give_up_after:
            await self._call(
                self._store.mark_failed,
                entry.id,
                status=outcome.status,
                error=outcome.error,
                at=now,
            )
            self._gave_up(name, entry, attempt, outcome.status, outcome.error, now)
            return
        await self._call(
            self._store.mark_retry,
            entry.id,
            status=outcome.status,
            error=outcome.error,
            at=now,
            next_attempt_at=next_at,
            held=not outcome.receiver_unwell,
        )
        log.warning(
            "delivery_failed",
            webhook=name,
            event_id=entry.event_id,
            attempt=attempt,
            status=outcome.status,
            error=outcome.error,
            retry_in=round(delay, 3),
        )

    def _gave_up(
        self,
        name: str,
        entry: OutboxEntry,
        attempts: int,
        status: int | None,
        error: str,
        now: float,
    ) -> None:
        self.stats.gave_up += 1
        self.stats.outcomes[name, "gave_up"] += 1
        log.error(
            "delivery_gave_up",
            webhook=name,
            event_id=entry.event_id,
            attempts=attempts,
            status=status,
            error=error,
            age=round(now - entry.created_at),
        )

    async def _post(self, target: WebhookTarget, entry: OutboxEntry, now: float) -> Outcome:
        headers = dict(entry.headers)
        if target.hmac_secret is not None and self._sign is not None:
            try:
                signed = dict(self._sign(entry.body, target.hmac_secret, int(now)))
            except Exception as exc:
                # The message could quote the secret: keep the type only.
                return Outcome(None, f"signing failed ({type(exc).__name__})")
            # Replace, whatever its case, a signature stored with the entry: it is stale.
            replaced = {name.lower() for name in signed}
            headers = {k: v for k, v in headers.items() if k.lower() not in replaced} | signed
        client = self._require_client()
        if target.ca_file is not None:
            client = self._ca_clients[target.ca_file]
        try:
            async with (
                asyncio.timeout(self._attempt_limit),
                client.stream("POST", target.url, content=entry.body, headers=headers) as response,
            ):
                return classify(response.status_code, response.headers, self._clock())
        except TimeoutError:
            limit = f"{self._attempt_limit:g}"
            error = f"attempt timeout: no complete answer within {limit} s"
            return Outcome(None, error, receiver_unwell=True)
        except httpx.HTTPError as exc:
            return Outcome(None, describe_transport_error(exc, target.url), receiver_unwell=True)
        except UnicodeError:  # a stored header httpx cannot encode: this entry's problem only
            return Outcome(None, "request headers are not encodable")

    # -- plumbing -------------------------------------------------------------------------------

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(
                "use the WebhookDelivery as 'async with WebhookDelivery(...) as notifier'"
            )
        return self._client

    async def _call(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await asyncio.to_thread(func, *args, **kwargs)


def _lane_task(lane: _Lane) -> str:
    return f"webhook:{lane.target.name}"


def _unexpected(exc: Exception) -> Outcome:
    # The type only: the message of an exception met near the request could quote the URL.
    # Counted as the receiver's fault, so the lane waits instead of spinning on it.
    return Outcome(None, f"internal error ({type(exc).__name__})", receiver_unwell=True)
