"""How the service shows itself: the snapshot behind /metrics, the health rules, the HTTP
listener, the heartbeat, and the outbox figures.

The service tells ``Telemetry`` what happens (a zone's check stored, checks that failed, a
batch's duration, the zones of a new config); ``Telemetry`` keeps the in-memory ``Snapshot``
the pages read, and runs three long-lived tasks through the ``spawn`` it is given (the
supervisor's, so a crash is logged, counted and restarted):

- ``http``: the listener of ``[watchdog] metrics_listen`` (/metrics, /healthz; status pages
  add their routes to ``routes``);
- ``heartbeat``: the pings of ``[heartbeat]``, only while healthy;
- ``outbox-summary``: every ``_OUTBOX_EVERY`` seconds, the pending entries per webhook, read
  from SQLite in a thread, so no page ever waits on the store.

Health rules (``checks()``), besides the supervisor's "every task made progress":
- zones: every zone was checked on time. A zone's next check is never planned later than
  ``interval + jitter`` after its last (watchdog.engine.schedule.plan_next); one whose last
  stored check is older than twice the interval, plus jitter and the time a check may take
  with every query timing out, missed a whole check;
- webhooks: no lane is stuck past its retry budget. An entry older than
  ``delivery_give_up_after`` is given up at its next attempt, at most ``delivery_backoff_cap``
  later (watchdog.alerting.delivery); one still pending well after that was never attempted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from watchdog.alerting.delivery import DeliveryStats
from watchdog.config.parse import Config
from watchdog.engine.assess import ZoneReport
from watchdog.errors import StateError
from watchdog.service.clock import Clock
from watchdog.service.endpoints import HealthView, service_routes
from watchdog.service.heartbeat import Heartbeat
from watchdog.service.http import HttpServer, Routes
from watchdog.service.snapshot import OutboxState, Snapshot, zone_state
from watchdog.service.store import Store

__all__ = ["Telemetry", "Verdict"]

log = structlog.get_logger(__name__)

Factory = Callable[[], Coroutine[Any, Any, None]]
Spawn = Callable[[str, Factory], "asyncio.Task[None]"]
HealthCheck = Callable[[float], str | None]

_OUTBOX_EVERY = 15.0  # seconds between two reads of the outbox figures
_SWEEP_SLACK = 360  # seconds: the delivery sweep's period (300) and one outbox read, rounded up


@dataclass(frozen=True, slots=True)
class Verdict:
    """A health verdict (the shape of the supervisor's ``Health``)."""

    healthy: bool
    reasons: tuple[str, ...] = ()


class Telemetry:
    """The snapshot, health rules and observability tasks of one service run."""

    def __init__(self, config: Config, store: Store, clock: Clock, version: str) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.deliveries = DeliveryStats()  # given to every WebhookDelivery of this run
        self.snapshot = Snapshot(version=version, deliveries=self.deliveries.outcomes)
        self.restarts: Callable[[], Mapping[str, int]] = dict
        self.health: Callable[[], HealthView] = self.own_health
        self.routes: Routes = service_routes(self.snapshot, self._health, self._restarts)
        self.listening: tuple[str, int] | None = None  # the bound address, once listening
        self._unchecked_since: dict[str, float] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- what the service tells it --------------------------------------------------------------

    def zones_configured(self, config: Config, names: Iterable[str]) -> None:
        """The zones and webhooks of the config in use (at start and after each reload)."""
        wanted = set(names)
        self.snapshot.keep_only(wanted)
        now = self.clock.wall()
        for name in wanted - self.snapshot.zones.keys():
            self._unchecked_since.setdefault(name, now)
        for name in set(self._unchecked_since) - wanted:
            del self._unchecked_since[name]
        self.snapshot.webhooks = tuple(w.name for w in config.webhooks)

    def checked(self, report: ZoneReport, next_check: int) -> None:
        """A zone's check was stored."""
        self.snapshot.checked(zone_state(report, next_check))
        self._unchecked_since.pop(report.zone, None)

    def failed(self, zones: int) -> None:
        """``zones`` checks ended without a stored verdict."""
        self.snapshot.failed(zones)

    def batch_took(self, seconds: float) -> None:
        self.snapshot.observe_duration(seconds)

    # -- tasks ----------------------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Start the listener (if configured), the heartbeat (if configured), the outbox reads."""
        listen = self.config.service.metrics_listen
        if listen is not None:
            host, port = listen
            server = HttpServer(self.routes, host, port)
            self._tasks.append(spawn("http", lambda: server.serve(self._listening)))
        self._tasks.append(spawn("outbox-summary", self._summarize_outbox))
        self._start_heartbeat(spawn)

    def reload(self, config: Config, spawn: Spawn) -> None:
        """Apply a new config: webhooks, health budgets and the heartbeat follow it (the
        listener's address needs a restart: watchdog.service.loop _RESTART_KEYS)."""
        old = self.config.heartbeat
        self.config = config
        if config.heartbeat != old:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None
            self._start_heartbeat(spawn)

    async def stop(self) -> None:
        tasks = [t for t in (*self._tasks, self._heartbeat) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start_heartbeat(self, spawn: Spawn) -> None:
        if self.config.heartbeat is not None:
            heartbeat = Heartbeat(self.config.heartbeat, self._health)
            self._heartbeat = spawn("heartbeat", heartbeat.run)

    def _listening(self, host: str, port: int) -> None:
        self.listening = (host, port)

    async def _summarize_outbox(self) -> None:
        while True:
            try:
                summary = await asyncio.to_thread(self.store.pending_summary)
            except StateError as exc:
                log.warning("outbox_summary_failed", error=str(exc))
            else:
                self.snapshot.outbox = {
                    name: OutboxState(count, oldest) for name, (count, oldest) in summary.items()
                }
            await asyncio.sleep(_OUTBOX_EVERY)

    # -- health ---------------------------------------------------------------------------------

    def checks(self) -> dict[str, HealthCheck]:
        """The health rules, for the supervisor's ``add_check``."""
        return {"zones": self._zones_late, "webhooks": self._lanes_stuck}

    def own_health(self) -> Verdict:
        """These rules alone (until the service hands over a supervisor's health)."""
        reasons = [
            f"{name}: {reason}"
            for name, check in self.checks().items()
            if (reason := check(self.clock.monotonic())) is not None
        ]
        return Verdict(not reasons, tuple(reasons))

    def _zones_late(self, _monotonic: float) -> str | None:
        s = self.config.service
        allowed = 2 * s.interval + s.jitter + 4 * s.query_timeout * (s.retries + 1)
        oldest = min(
            [
                *(z.checked_at for z in self.snapshot.zones.values()),
                *self._unchecked_since.values(),
            ],
            default=None,
        )
        now = self.clock.wall()
        if oldest is None or now - oldest <= allowed:
            return None
        late = sum(1 for z in self.snapshot.zones.values() if now - z.checked_at > allowed)
        late += sum(1 for t in self._unchecked_since.values() if now - t > allowed)
        noun = "zone" if late == 1 else "zones"
        return f"{late} {noun} not checked for {now - oldest:.0f} s (allowed {allowed} s)"

    def _lanes_stuck(self, _monotonic: float) -> str | None:
        s = self.config.service
        budget = (
            s.delivery_give_up_after + s.delivery_backoff_cap + 4 * s.delivery_timeout
        ) + _SWEEP_SLACK
        now = self.clock.wall()
        stuck = sorted(
            name
            for name, state in self.snapshot.outbox.items()
            if state.oldest_created_at is not None and now - state.oldest_created_at > budget
        )
        if not stuck:
            return None
        return f"undelivered past the retry budget ({budget} s): {', '.join(stuck)}"

    def _health(self) -> HealthView:
        return self.health()

    def _restarts(self) -> Mapping[str, int]:
        return self.restarts()
