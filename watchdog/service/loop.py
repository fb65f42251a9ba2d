"""The watch service: the scheduler loop, signals, systemd, and the glue between the modules.

One asyncio loop. Each wake-up takes the zones whose plan is due (watchdog.engine.schedule),
probes them as one batch (watchdog.probe.prober), judges each as it comes in (the pure
watchdog.service.judge: report, alert transitions, next plan, rendered deliveries), and stores
the new states together with the deliveries, a chunk of zones per SQLite transaction
(watchdog.service.store), before waking the webhook lanes (watchdog.service.notifications).
Batches run as tasks, so a slow zone never holds up a due crossing of another. The zones and
their plans are watchdog.service.zones; the process entry points are watchdog.service.main.

Clocks: every time is read through an injected ``Clock`` (watchdog.service.clock). Sleeping uses
the loop's monotonic clock; plans and deadlines use wall time. Every tick compares the two; a
step of the wall clock (NTP) re-plans instead of missing or doubling alerts (doubling is
impossible anyway: alert state is persisted per (zone, condition)). DESIGN.md 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from watchdog import __version__
from watchdog.config.parse import Config, ServiceConfig, load_config
from watchdog.engine.alerts import Origin
from watchdog.engine.observations import ZoneObservation
from watchdog.engine.schedule import Plan, Reason, Schedule
from watchdog.engine.timeutil import rfc3339
from watchdog.errors import ConfigError, StateError
from watchdog.probe.pool import ProbePool, ProbeWorkerError
from watchdog.probe.prober import Prober
from watchdog.service.clock import SYSTEM_CLOCK, Clock
from watchdog.service.judge import Judgement, judge_zone, schedule_settings
from watchdog.service.logsetup import Redactor
from watchdog.service.notifications import Notifications, secrets
from watchdog.service.records import HistoryRecord
from watchdog.service.statusboard import StatusBoard, refresh_forever
from watchdog.service.statuspages import add_status_routes
from watchdog.service.store import Store
from watchdog.service.supervisor import Spawn, Supervisor
from watchdog.service.systemd import SystemdNotifier
from watchdog.service.telemetry import Telemetry
from watchdog.service.zones import WatchedZone, ZoneTable, stored_histories, stored_states

__all__ = ["Service"]

log = structlog.get_logger("watchdog.service.loop")

_TICK = 1.0  # longest sleep: bounds clock-step detection and shutdown latency
_CLOCK_STEP = 2.0  # seconds of wall/monotonic disagreement that count as a clock step
_SHUTDOWN_FLUSH = 10.0  # seconds to finish in-flight deliveries on SIGTERM
_RELOAD_FLUSH = 2.0  # seconds for in-flight deliveries before a reload restarts the lanes
_RETRY_AFTER = 60  # seconds before a check that failed as a whole is tried again (at most)
# The scheduler loop makes progress every _TICK; silent this long, it is wedged (supervisor.py).
# Generous: a reload (config read, lanes restarted after a _RELOAD_FLUSH) runs inside the loop.
_SCHEDULER_WITHIN = 60.0
# Zones judged and stored per transaction. Small enough that a chunk's observations and reports
# are little work for the garbage collector, large enough that a commit is cheap per zone.
_CHUNK = 250
# Keys of [watchdog] a reload cannot apply: the store, the prober and logging are set up once.
_RESTART_KEYS = (
    "state_path",
    "resolver",
    "max_concurrency",
    "per_server_concurrency",
    "probe_workers",
    "validators",
    "query_timeout",
    "retries",
    "log_format",
    "log_level",
    "metrics_listen",
)


def _prober(service: ServiceConfig, spawn: Spawn) -> Prober | ProbePool:
    """The prober of ``probe_workers``: this process alone (1), or a pool of that many."""
    if service.probe_workers == 1:
        return Prober(service.probe_settings())
    return ProbePool(
        service.probe_settings(),
        service.probe_workers,
        log_format=service.log_format,
        log_level=service.log_level,
        spawn=spawn,
    )


@dataclass(frozen=True)
class _Checked:
    """One zone's judgement, with the zone it is about, waiting to be stored."""

    zone: WatchedZone
    judgement: Judgement


def _log_check(c: _Checked) -> None:
    j = c.judgement
    for event in j.events:
        log.info(
            "alert_fired",
            zone=event.zone,
            condition=event.condition.value,
            kind=event.kind.value,
            old=event.old_severity.value,
            new=event.new_severity.value,
            event_id=event.id,
        )
    d, cov = j.report.deadlines, j.report.coverage
    log.info(
        "zone_checked",
        zone=c.zone.name,
        severity=j.report.severity.value,
        strict_fail_at=rfc3339(d.strict_fail_at) if d else None,
        set_by=f"{d.strict_fail.owner} {d.strict_fail.rtype}" if d else None,
        next_check=rfc3339(j.plan.due),
        reason=j.plan.reason.value,
        # What this check covered; coverage "apex" with wanted "transfer" or "walk" is a
        # fallback, and the finding saying why is in the report.
        coverage=cov.mode if cov else None,
        coverage_wanted=cov.wanted if cov else None,
        rrsets=cov.rrsets if cov else None,
    )


class Service:
    """Owns the config, the state, the prober and the notifier for one run of the process.

    ``clock`` is where every wall and monotonic time is read (the real clocks by default).
    ``run()`` is the whole service; ``probing()`` and ``run_cycle()`` drive one check at a time
    without the loop (benchmarks, tests).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        redactor: Redactor,
        systemd: SystemdNotifier | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.store = store
        self.redactor = redactor
        self.systemd = systemd or SystemdNotifier()
        self.clock = clock
        self.origin = Origin(host=socket.gethostname(), version=__version__)
        self.zones = ZoneTable()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._batches: set[asyncio.Task[None]] = set()
        self._prober: Prober | ProbePool | None = None
        # Every long-lived task runs under it; its health() gates WATCHDOG=1.
        self.supervisor = Supervisor(clock=clock.monotonic)
        self.telemetry = Telemetry(config, store, clock, __version__)
        self.telemetry.health = self.supervisor.health
        self.telemetry.restarts = lambda: self.supervisor.restarts
        for name, check in self.telemetry.checks().items():
            self.supervisor.add_check(name, check)
        self.notifications = Notifications(store, clock, self.supervisor, self.telemetry.deliveries)
        self._reload_requested = False
        self.cycles = 0
        self.status_board = StatusBoard()  # what the status page shows
        add_status_routes(self.telemetry.routes, self.status_board, clock.wall)

    @property
    def schedule(self) -> Schedule:
        return self.zones.schedule

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            async with self.probing():
                await self.notifications.start(self.config)
                self.systemd.ready(self.zones.status())
                log.info(
                    "service_started",
                    zones=len(self.zones),
                    webhooks=len(self.config.webhooks),
                    state=str(self.config.service.state_path),
                )
                self.supervisor.spawn("systemd-watchdog", self._watchdog_pings)
                self.supervisor.spawn(
                    "status-board",
                    lambda: refresh_forever(self.status_board, self.store, self.clock.wall),
                )
                scheduler = self.supervisor.spawn(
                    "scheduler", self._loop, progress_within=_SCHEDULER_WITHIN
                )
                self.telemetry.start(self.supervisor.spawn)
                try:
                    await scheduler  # returns on stop(); a crash in it is restarted
                finally:
                    scheduler.cancel()
                    await self.telemetry.stop()
                    self.systemd.stopping()
                    for task in self._batches:
                        task.cancel()
                    await asyncio.gather(*self._batches, return_exceptions=True)
                    await self.notifications.stop(_SHUTDOWN_FLUSH)
                    await self.supervisor.close()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.systemd.close()
        log.info("service_stopped")
        return 0

    @contextlib.asynccontextmanager
    async def probing(self) -> AsyncIterator[Prober | ProbePool]:
        """Load the config's zones and open the prober (``probe_workers`` of them) for the
        duration: what ``run()`` does before its loop, for callers of ``run_cycle()``."""
        self._load_zones(self.config)
        async with _prober(self.config.service, self.supervisor.spawn) as prober:
            self._prober = prober
            try:
                yield prober
            finally:
                self._prober = None

    async def run_cycle(self, names: Sequence[str] | None = None) -> None:
        """Check ``names`` (default: every zone) now, as the loop checks a due batch: probe,
        judge, store chunk by chunk, plan each zone's next check. Inside ``probing()``."""
        if self._prober is None:
            raise RuntimeError("run_cycle() needs the prober: call it inside probing()")
        await self._check(list(self.zones.zones) if names is None else names)

    def stop(self) -> None:
        log.info("shutdown_requested")
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake.set()

    # -- zones and config ----------------------------------------------------------------------

    def _load_zones(self, config: Config) -> None:
        """Apply a config's zones: keep the state of zones that stay, plan new ones now."""
        changes = self.zones.apply(
            config,
            stored_states(self.store.alert_states()),
            self.clock.now(),
            stored_histories(self.store.zone_histories()),
        )
        for name in changes.removed:
            log.info("zone_removed", zone=name)
        self.status_board.set_zones(self.zones.zones, self.clock.now())
        self.config = config
        self.telemetry.zones_configured(config, self.zones.zones)

    async def _reload(self) -> None:
        self._reload_requested = False
        # MONOTONIC_USEC must be CLOCK_MONOTONIC itself: systemd compares it with its own clock.
        self.systemd.reloading(time.monotonic_ns() // 1000)
        path = Path(self.config.source)
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error(
                "config_reload_failed",
                source=exc.source,
                problems=exc.problems,
                kept="previous config",
            )
            self.systemd.ready(self.zones.status())
            return
        changed = [
            key
            for key in _RESTART_KEYS
            if getattr(new.service, key) != getattr(self.config.service, key)
        ]
        if changed:
            # Kept as they are, so the config in use says what runs (and a later reload warns
            # again while the file differs).
            log.warning("restart_needed", keys=[f"watchdog.{k}" for k in changed])
            kept = {k: getattr(self.config.service, k) for k in changed}
            new = replace(new, service=replace(new.service, **kept))
        self.redactor.update(secrets(new))
        old_zones = set(self.zones.zones)
        self._load_zones(new)
        await self.notifications.restart(self.config, _RELOAD_FLUSH)
        self.telemetry.reload(self.config, self.supervisor.spawn)
        log.info(
            "config_reloaded",
            zones=len(self.zones),
            added=len(set(self.zones.zones) - old_zones),
            removed=len(old_zones - set(self.zones.zones)),
        )
        self.systemd.ready(self.zones.status())

    # -- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        clock = self.clock
        offset = clock.wall() - clock.monotonic()
        while not self._stop.is_set():
            self.supervisor.progress("scheduler")
            if self._reload_requested:
                await self._reload()
            drift = (clock.wall() - clock.monotonic()) - offset
            if abs(drift) > _CLOCK_STEP:
                offset += drift
                log.warning("clock_step", seconds=round(drift, 3))
                self.schedule.replan(clock.now(), schedule_settings(self.config.service))
            due = self.schedule.pop_due(clock.now())
            if due:
                task = asyncio.create_task(self._check([p.zone for p in due]))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
            next_due = self.schedule.next_due()
            delay = _TICK if next_due is None else min(_TICK, max(0.0, next_due - clock.wall()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _check(self, names: Sequence[str]) -> None:
        zones = [z for z in (self.zones.get(n) for n in names) if z is not None]
        unstored = {z.name: z for z in zones}  # emptied as chunks are stored
        started = self.clock.monotonic()
        try:
            await self._check_zones(zones, unstored)
        except StateError as exc:
            # Nothing of this chunk was stored, so nothing was announced: it is done again.
            log.error("state_write_failed", zones=len(unstored), error=str(exc))
            self._retry_later(list(unstored.values()))
        except ProbeWorkerError as exc:  # a worker died (killed, out of memory): started anew
            log.error("check_failed", zones=len(unstored), error=str(exc))
            self._retry_later(list(unstored.values()))
        except Exception:  # a bug in the prober must not drop these zones from the schedule
            log.exception("check_failed", zones=len(unstored))
            self._retry_later(list(unstored.values()))
        finally:
            self.telemetry.failed(len(unstored))
            self.telemetry.batch_took(self.clock.monotonic() - started)

    def _retry_later(self, zones: Sequence[WatchedZone]) -> None:
        retry = self.clock.now() + min(_RETRY_AFTER, self.config.service.interval)
        for z in zones:
            if self.zones.current(z):
                self.schedule.set(Plan(retry, z.name, Reason.RETRY))
        self._wake.set()

    async def _check_zones(
        self, zones: Sequence[WatchedZone], unstored: dict[str, WatchedZone]
    ) -> None:
        """Probe ``zones``; judge each as it comes in and store them chunk by chunk.

        A chunk is one transaction (states and deliveries together), so memory and the work
        of the garbage collector stay those of a chunk, not of a 10,000-zone batch, and the
        first verdicts take effect (alerts, crossing plans) while the rest is still probed.
        """
        assert self._prober is not None
        chunk: list[_Checked] = []
        async with contextlib.aclosing(self._prober.probe_each([z.target for z in zones])) as done:
            async for index, obs in done:
                z = zones[index]
                if not self.zones.current(z):  # removed by a reload meanwhile
                    del unstored[z.name]
                    continue
                try:
                    chunk.append(_Checked(z, self._judge(z, obs)))
                except Exception:  # a bug judging one zone must not hold up the others
                    log.exception("check_failed", zone=z.name)
                    del unstored[z.name]
                    self.telemetry.failed(1)
                    self._retry_later([z])
                if len(chunk) >= _CHUNK:
                    await self._store(chunk, unstored)
                    chunk = []
        await self._store(chunk, unstored)
        self.cycles += 1
        self.systemd.status(self.zones.status())
        self._wake.set()

    def _judge(self, z: WatchedZone, obs: ZoneObservation) -> Judgement:
        return judge_zone(
            obs,
            self.clock.now(),
            zone_policy=z.config.policy,
            states=z.states,
            alert_policy=z.policy,
            schedule=schedule_settings(self.config.service),
            webhooks=self.config.webhooks,
            origin=self.origin,
            history=z.history,
            stall_margin=z.config.stall_margin,
        )

    async def _store(self, checked: Sequence[_Checked], unstored: dict[str, WatchedZone]) -> None:
        """Store one chunk of checks in one transaction, then let them take effect."""
        if not checked:
            return
        await asyncio.to_thread(
            self.store.commit_cycle,
            [r for c in checked for r in c.judgement.states],
            [d for c in checked for d in c.judgement.deliveries],
            [c.judgement.summary for c in checked],
            [HistoryRecord(c.zone.name, c.judgement.history.to_dict()) for c in checked],
        )
        # Only now that they are stored: an unstored transition must be seen (and announced)
        # again by the next check, not remembered as announced.
        for c in checked:
            del unstored[c.zone.name]
            c.zone.states = c.judgement.new_states
            c.zone.history = c.judgement.history
            c.zone.severity = c.judgement.report.severity.value
            self.telemetry.checked(c.judgement.report, c.judgement.plan.due)
            j = c.judgement
            self.status_board.record(
                j.report, j.plan.due, j.events, [(d.event_id, d.webhook) for d in j.deliveries]
            )
            _log_check(c)
            if self.zones.current(c.zone):
                self.schedule.set(c.judgement.plan)
        if any(c.judgement.deliveries for c in checked):
            self.notifications.wake()
        self._wake.set()

    async def _watchdog_pings(self) -> None:
        """WATCHDOG=1 only while every supervised component made progress recently: if the
        loop or a part of the service hangs, the pings stop and systemd restarts the service
        (sd_watchdog_enabled(3))."""
        interval = self.systemd.watchdog_interval
        if interval is None:
            return
        withheld: tuple[str, ...] = ()
        while True:
            health = self.supervisor.health()
            if health.healthy:
                self.systemd.ping()
            elif health.reasons != withheld:
                log.error("watchdog_ping_withheld", reasons=list(health.reasons))
            withheld = health.reasons
            await asyncio.sleep(interval)
