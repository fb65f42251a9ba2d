"""The watch service: the scheduler loop, signals, systemd, and the glue between the modules.

One asyncio loop. Each wake-up takes the zones whose plan is due (watchdog.engine.schedule), probes
them as one batch (watchdog.probe.prober), judges each as it comes in (watchdog.engine.assess),
turns the verdicts into alert events (watchdog.engine.alerts), and stores the new states together
with the rendered deliveries, a chunk of zones per SQLite transaction (watchdog.service.store),
before waking the notifier (watchdog.alerting.delivery). Batches run as tasks, so a slow zone never
holds up a due crossing of another.

Clocks: sleeping uses the loop's monotonic clock; plans and deadlines use wall time. Every tick
compares the two; a step of the wall clock (NTP) re-plans instead of missing or doubling alerts
(doubling is impossible anyway: alert state is persisted per (zone, condition)).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from watchdog import __version__
from watchdog.alerting.delivery import RetryPolicy, Timeouts, WebhookDelivery, WebhookTarget
from watchdog.alerting.payloads import render, signature_headers
from watchdog.config.parse import (
    Config,
    ServiceConfig,
    ZoneConfig,
    load_config,
    webhook_matches,
)
from watchdog.engine.alerts import (
    AlertEvent,
    AlertPolicy,
    AlertState,
    Condition,
    Origin,
    transition_zone,
)
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.observations import ZoneObservation
from watchdog.engine.schedule import Plan, Reason, Schedule, ScheduleSettings, plan_next
from watchdog.engine.timeutil import rfc3339
from watchdog.errors import ConfigError, StateError, WatchdogError
from watchdog.probe.pool import ProbePool, ProbeWorkerError, tune_gc
from watchdog.probe.prober import Prober, ZoneTarget
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.store import AlertStateRecord, Delivery, Store, ZoneSummaryRecord
from watchdog.service.systemd import SystemdNotifier

__all__ = ["EX_CANTCREAT", "EX_CONFIG", "Service", "run_service", "validate_config"]

log = structlog.get_logger("watchdog.service.loop")

EX_CONFIG = 78  # sysexits.h: configuration error (the unit's RestartPreventExitStatus)
EX_CANTCREAT = 73  # sysexits.h: cannot create/open the state file
_TICK = 1.0  # longest sleep: bounds clock-step detection and shutdown latency
_CLOCK_STEP = 2.0  # seconds of wall/monotonic disagreement that count as a clock step
_SHUTDOWN_FLUSH = 10.0  # seconds to finish in-flight deliveries on SIGTERM
_RETRY_AFTER = 60  # seconds before a check that failed as a whole is tried again (at most)
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
    "query_timeout",
    "retries",
    "log_format",
    "log_level",
)


def _secrets(config: Config) -> list[str]:
    return [s for w in config.webhooks for s in (w.url, w.hmac_secret) if s]


def _targets(config: Config) -> list[WebhookTarget]:
    return [
        WebhookTarget(w.name, w.url, w.kind, w.hmac_secret.encode() if w.hmac_secret else None)
        for w in config.webhooks
    ]


def _prober(service: ServiceConfig) -> Prober | ProbePool:
    """The prober of ``probe_workers``: this process alone (1), or a pool of that many."""
    if service.probe_workers == 1:
        return Prober(service.probe_settings())
    return ProbePool(
        service.probe_settings(),
        service.probe_workers,
        log_format=service.log_format,
        log_level=service.log_level,
    )


def _zone_target(zone: ZoneConfig) -> ZoneTarget:
    return ZoneTarget(
        zone=zone.name, servers=zone.servers, trust_anchor=zone.trust_anchor, extra=zone.extra
    )


def _summary(report: ZoneReport, failures: int, plan: Plan) -> dict[str, Any]:
    d = report.deadlines
    return {
        "checked_at": report.checked_at,
        "severity": report.severity.value,
        "expiry_severity": report.expiry_severity.value,
        "warning_at": d.warning_at if d else None,
        "strict_fail_at": d.strict_fail_at if d else None,
        "skew_exhausted_at": d.skew_exhausted_at if d else None,
        "failures": failures,
        "next_check": plan.due,
        "next_reason": plan.reason.value,
    }


@dataclass
class _Zone:
    config: ZoneConfig
    target: ZoneTarget
    policy: AlertPolicy
    states: dict[Condition, AlertState]
    severity: str = "pending"


@dataclass(frozen=True)
class _Checked:
    """What one check of one zone decided, stored in one transaction before it takes effect."""

    zone: _Zone
    report: ZoneReport
    new_states: dict[Condition, AlertState]
    events: tuple[AlertEvent, ...]
    plan: Plan
    states: list[AlertStateRecord]
    deliveries: list[Delivery]
    summary: ZoneSummaryRecord


def _log_check(c: _Checked) -> None:
    for event in c.events:
        log.info(
            "alert_fired",
            zone=event.zone,
            condition=event.condition.value,
            kind=event.kind.value,
            old=event.old_severity.value,
            new=event.new_severity.value,
            event_id=event.id,
        )
    d = c.report.deadlines
    log.info(
        "zone_checked",
        zone=c.zone.config.name,
        severity=c.report.severity.value,
        strict_fail_at=rfc3339(d.strict_fail_at) if d else None,
        next_check=rfc3339(c.plan.due),
        reason=c.plan.reason.value,
    )


class Service:
    """Owns the config, the state, the prober and the notifier for one run of the process."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        redactor: Redactor,
        systemd: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.redactor = redactor
        self.systemd = systemd or SystemdNotifier()
        self.origin = Origin(host=socket.gethostname(), version=__version__)
        self.schedule = Schedule()
        self.zones: dict[str, _Zone] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._batches: set[asyncio.Task[None]] = set()
        self._prober: Prober | ProbePool | None = None
        self._notifier: WebhookDelivery | None = None
        self._notifier_task: asyncio.Task[None] | None = None
        self._notifier_stop = asyncio.Event()
        self._reload_requested = False
        self.cycles = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            self._load_zones(self.config)
            async with _prober(self.config.service) as prober:
                self._prober = prober
                await self._start_notifier()
                self.systemd.ready(self._status())
                log.info(
                    "service_started",
                    zones=len(self.zones),
                    webhooks=len(self.config.webhooks),
                    state=str(self.config.service.state_path),
                )
                pinger = asyncio.create_task(self._watchdog_pings())
                try:
                    await self._loop()
                finally:
                    pinger.cancel()
                    self.systemd.stopping()
                    for task in self._batches:
                        task.cancel()
                    await asyncio.gather(*self._batches, return_exceptions=True)
                    await self._stop_notifier(_SHUTDOWN_FLUSH)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.systemd.close()
        log.info("service_stopped")
        return 0

    def stop(self) -> None:
        log.info("shutdown_requested")
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake.set()

    async def _start_notifier(self) -> None:
        s = self.config.service
        self._notifier_stop = asyncio.Event()
        self._notifier = WebhookDelivery(
            self.store,
            _targets(self.config),
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
        )
        await self._notifier.__aenter__()
        self._notifier_task = asyncio.create_task(self._notifier.run(self._notifier_stop))

    async def _stop_notifier(self, flush: float) -> None:
        if self._notifier is None:
            return
        deadline = time.monotonic() + flush
        self._notifier_stop.set()
        if self._notifier_task is not None:
            # An attempt in flight may wait up to delivery_timeout for a slow receiver; the
            # shutdown bound wins, and an attempt cut off stays pending (sent at next start).
            done, _ = await asyncio.wait({self._notifier_task}, timeout=flush)
            if not done:
                self._notifier_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier_task
        pending = await self._notifier.flush(max(0.0, deadline - time.monotonic()))
        await self._notifier.__aexit__(None, None, None)
        if pending:
            log.info("deliveries_left_pending", count=pending)
        self._notifier = None

    # -- zones and config ----------------------------------------------------------------------

    def _load_zones(self, config: Config) -> None:
        """Apply a config's zones: keep the state of zones that stay, plan new ones now."""
        stored: dict[str, dict[Condition, AlertState]] = {}
        for (zone, condition), data in self.store.alert_states().items():
            if zone not in self.zones:
                with contextlib.suppress(WatchdogError, ValueError):
                    stored.setdefault(zone, {})[Condition(condition)] = AlertState.from_dict(data)
        now = int(time.time())
        wanted = {z.name: z for z in config.zones}
        for name in list(self.zones):
            if name not in wanted:
                del self.zones[name]
                self.schedule.remove(name)
                log.info("zone_removed", zone=name)
        for name, zc in wanted.items():
            policy = AlertPolicy(renotify=zc.renotify, unreachable_after=zc.unreachable_after)
            if name in self.zones:
                z = self.zones[name]
                z.config, z.target, z.policy = zc, _zone_target(zc), policy
                continue
            self.zones[name] = _Zone(zc, _zone_target(zc), policy, stored.get(name, {}))
            self.schedule.set(Plan(now, name, Reason.FIRST))
        self.config = config

    async def _reload(self) -> None:
        self._reload_requested = False
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
            self.systemd.ready(self._status())
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
        self.redactor.update(_secrets(new))
        old_zones = set(self.zones)
        self._load_zones(new)
        await self._stop_notifier(flush=2.0)
        await self._start_notifier()
        log.info(
            "config_reloaded",
            zones=len(self.zones),
            added=len(set(self.zones) - old_zones),
            removed=len(old_zones - set(self.zones)),
        )
        self.systemd.ready(self._status())

    # -- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        offset = time.time() - time.monotonic()
        while not self._stop.is_set():
            if self._reload_requested:
                await self._reload()
            drift = (time.time() - time.monotonic()) - offset
            if abs(drift) > _CLOCK_STEP:
                offset += drift
                log.warning("clock_step", seconds=round(drift, 3))
                self.schedule.replan(int(time.time()), self._schedule_settings())
            due = self.schedule.pop_due(int(time.time()))
            if due:
                task = asyncio.create_task(self._check([p.zone for p in due]))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
            next_due = self.schedule.next_due()
            delay = _TICK if next_due is None else min(_TICK, max(0.0, next_due - time.time()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _schedule_settings(self) -> ScheduleSettings:
        s = self.config.service
        return ScheduleSettings(interval=s.interval, jitter=min(1.0, s.jitter / max(1, s.interval)))

    async def _check(self, names: Sequence[str]) -> None:
        zones = [self.zones[n] for n in names if n in self.zones]
        unstored = {z.config.name: z for z in zones}  # emptied as chunks are stored
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

    def _retry_later(self, zones: Sequence[_Zone]) -> None:
        retry = int(time.time()) + min(_RETRY_AFTER, self.config.service.interval)
        for z in zones:
            if self.zones.get(z.config.name) is z:
                self.schedule.set(Plan(retry, z.config.name, Reason.RETRY))
        self._wake.set()

    async def _check_zones(self, zones: Sequence[_Zone], unstored: dict[str, _Zone]) -> None:
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
                if self.zones.get(z.config.name) is not z:  # removed by a reload meanwhile
                    del unstored[z.config.name]
                    continue
                try:
                    chunk.append(self._judge(z, obs, int(time.time())))
                except Exception:  # a bug judging one zone must not hold up the others
                    log.exception("check_failed", zone=z.config.name)
                    del unstored[z.config.name]
                    self._retry_later([z])
                if len(chunk) >= _CHUNK:
                    await self._store(chunk, unstored)
                    chunk = []
        await self._store(chunk, unstored)
        self.cycles += 1
        self.systemd.status(self._status())
        self._wake.set()

    async def _store(self, checked: Sequence[_Checked], unstored: dict[str, _Zone]) -> None:
        """Store one chunk of checks in one transaction, then let them take effect."""
        if not checked:
            return
        await asyncio.to_thread(
            self.store.commit_cycle,
            [r for c in checked for r in c.states],
            [d for c in checked for d in c.deliveries],
            [c.summary for c in checked],
        )
        # Only now that they are stored: an unstored transition must be seen (and announced)
        # again by the next check, not remembered as announced.
        for c in checked:
            del unstored[c.zone.config.name]
            c.zone.states, c.zone.severity = c.new_states, c.report.severity.value
            _log_check(c)
            if self.zones.get(c.zone.config.name) is c.zone:
                self.schedule.set(c.plan)
        if any(c.deliveries for c in checked) and self._notifier is not None:
            self._notifier.wake()
        self._wake.set()

    def _judge(self, z: _Zone, obs: ZoneObservation, now: int) -> _Checked:
        """One zone's verdict, new alert states, events and next plan; changes nothing."""
        report = assess_zone(obs, now, z.config.policy)
        new_states, events = transition_zone(z.states, report, z.policy, self.origin)
        failures = new_states[Condition.UNREACHABLE].failures
        plan = plan_next(
            z.config.name,
            now,
            self._schedule_settings(),
            next_crossing=report.deadlines.next_crossing(now) if report.deadlines else None,
            failures=failures,
        )
        deliveries: list[Delivery] = []
        for event in events:
            for w in self.config.webhooks:
                if webhook_matches(w, event.zone, event.routing_severity):
                    req = render(event, w.kind, None, now)  # type: ignore[arg-type]
                    deliveries.append(Delivery(event.id, w.name, req.body, req.headers))
        return _Checked(
            zone=z,
            report=report,
            new_states=new_states,
            events=events,
            plan=plan,
            # z.states is what the store holds (read from it, replaced only after a commit):
            # a state the check left as it was needs no write.
            states=[
                AlertStateRecord(z.config.name, c.value, s.to_dict())
                for c, s in new_states.items()
                if z.states.get(c) != s
            ],
            deliveries=deliveries,
            summary=ZoneSummaryRecord(z.config.name, _summary(report, failures, plan)),
        )

    def _status(self) -> str:
        counts = Counter(z.severity for z in self.zones.values())
        order = [
            "ok",
            "warning",
            "unknown",
            "unreachable",
            "strict_fail",
            "skew_exhausted",
            "bogus",
            "pending",
        ]
        parts = ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
        nxt = self.schedule.next_due()
        when = f"; next check {rfc3339(nxt)[11:]}" if nxt is not None else ""
        noun = "zone" if len(self.zones) == 1 else "zones"
        return f"{len(self.zones)} {noun}: {parts or 'none'}{when}"

    async def _watchdog_pings(self) -> None:
        """WATCHDOG=1 from the loop itself: if the loop hangs, the pings stop and systemd
        restarts the service (sd_watchdog_enabled(3))."""
        interval = self.systemd.watchdog_interval
        if interval is None:
            return
        while True:
            self.systemd.ping()
            await asyncio.sleep(interval)


def validate_config(path: Path, env: Mapping[str, str] | None = None) -> int:
    """``--validate-config``: every problem on stderr, exit 0 or 78."""
    import sys

    try:
        config = load_config(path, env)
    except ConfigError as exc:
        print(f"dnssec-watchdog: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(f"{path}: ok, {len(config.zones)} zones, {len(config.webhooks)} webhooks")
    return 0


def run_service(path: Path) -> int:
    """``--serve``: load, open, run until SIGTERM. Exit 0, or 78 / 73 for startup failures."""
    tune_gc()
    redactor = Redactor()
    configure_logging("auto", redactor)
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("config_invalid", source=exc.source, problems=exc.problems)
        return EX_CONFIG
    redactor.update(_secrets(config))
    level = logging.getLevelNamesMapping()[config.service.log_level.upper()]
    configure_logging(config.service.log_format, redactor, level=level)
    try:
        store = Store(config.service.state_path)
    except StateError as exc:
        log.error("state_unusable", error=str(exc))
        return EX_CANTCREAT
    try:
        return asyncio.run(Service(config, store, redactor=redactor).run())
    finally:
        store.close()
