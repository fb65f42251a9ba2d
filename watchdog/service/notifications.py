"""The service's webhook lanes: started with the config's webhooks, restarted on reload, flushed
within a bound at shutdown. What they send is the outbox (watchdog.alerting.delivery)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from watchdog.alerting.delivery import (
    DeliveryStats,
    RetryPolicy,
    Timeouts,
    WebhookDelivery,
    WebhookTarget,
)
from watchdog.alerting.payloads import signature_headers
from watchdog.config.parse import Config
from watchdog.service.clock import Clock
from watchdog.service.store import Store
from watchdog.service.supervisor import Supervisor

__all__ = ["Notifications", "secrets"]

log = structlog.get_logger("watchdog.service.notifications")


def secrets(config: Config) -> list[str]:
    """The config's secrets (webhook URLs and HMAC keys, heartbeat URLs): what the log
    redactor hides."""
    return config.secrets()


def _targets(config: Config) -> list[WebhookTarget]:
    return [
        WebhookTarget(
            w.name, w.url, w.kind, w.hmac_secret.encode() if w.hmac_secret else None, w.ca_file
        )
        for w in config.webhooks
    ]


class Notifications:
    """The running ``WebhookDelivery`` of the current config, if started."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervisor: Supervisor | None = None,
        stats: DeliveryStats | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.supervisor = supervisor or Supervisor(clock=clock.monotonic)
        self.stats = stats if stats is not None else DeliveryStats()  # kept across reloads
        self.delivery: WebhookDelivery | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self, config: Config) -> None:
        s = config.service
        self._stop = asyncio.Event()
        self.delivery = WebhookDelivery(
            self.store,
            _targets(config),
            policy=RetryPolicy(
                base=s.delivery_backoff_base,
                cap=s.delivery_backoff_cap,
                give_up_after=s.delivery_give_up_after,
            ),
            timeouts=Timeouts(
                connect=s.delivery_timeout,
                read=s.delivery_timeout,
                write=s.delivery_timeout,
                pool=s.delivery_timeout,
            ),
            sign=signature_headers,
            supervisor=self.supervisor,
            stats=self.stats,
        )
        await self.delivery.__aenter__()
        self._task = asyncio.create_task(self.delivery.run(self._stop))

    async def restart(self, config: Config, flush: float) -> None:
        """Stop (``flush`` seconds for attempts in flight) and start with ``config``'s webhooks."""
        await self.stop(flush)
        await self.start(config)

    def wake(self) -> None:
        """New deliveries are in the outbox: send them now rather than at the next poll."""
        if self.delivery is not None:
            self.delivery.wake()

    async def stop(self, flush: float) -> None:
        """Stop the lanes, giving attempts in flight at most ``flush`` seconds in all."""
        if self.delivery is None:
            return
        deadline = self.clock.monotonic() + flush
        self._stop.set()
        if self._task is not None:
            # An attempt in flight may wait up to delivery_timeout for a slow receiver; the
            # shutdown bound wins, and an attempt cut off stays pending (sent at next start).
            done, _ = await asyncio.wait({self._task}, timeout=flush)
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = await self.delivery.flush(max(0.0, deadline - self.clock.monotonic()))
        await self.delivery.__aexit__(None, None, None)
        if pending:
            log.info("deliveries_left_pending", count=pending)
        self.delivery = None
