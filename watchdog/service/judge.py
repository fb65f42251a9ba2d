"""The service's judging step, pure: one zone's observation in, everything it decides out.

observation -> report (watchdog.engine.assess), with the signer's refresh pattern judged from
the zone's history (watchdog.engine.stall) -> alert transitions (watchdog.engine.alerts)
-> next plan (watchdog.engine.schedule) -> rendered deliveries (watchdog.alerting.payloads)
and the records to store (watchdog.service.records). No clock (``now`` is an argument), no
store, no network: the loop (watchdog.service.loop) stores what this returns in one transaction
and only then lets it take effect. DESIGN.md 3 (functional core) and 4 (alert lifecycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchdog.alerting.payloads import render
from watchdog.config.parse import ServiceConfig, WebhookConfig, webhook_matches
from watchdog.engine.alerts import (
    AlertEvent,
    AlertPolicy,
    AlertState,
    Condition,
    Origin,
    transition_zone,
)
from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.observations import ZoneObservation
from watchdog.engine.schedule import Plan, ScheduleSettings, plan_next
from watchdog.engine.stall import (
    DEFAULT_MARGIN,
    History,
    StallMargin,
    assess_stall,
    record,
    with_stall,
)
from watchdog.service.records import AlertStateRecord, Delivery, ZoneSummaryRecord

__all__ = ["Judgement", "judge_zone", "render_deliveries", "schedule_settings", "zone_summary"]


@dataclass(frozen=True)
class Judgement:
    """What one check of one zone decided; nothing of it has taken effect yet."""

    report: ZoneReport
    new_states: dict[Condition, AlertState]
    events: tuple[AlertEvent, ...]
    plan: Plan
    states: list[AlertStateRecord]  # only the states that changed: what the store must write
    deliveries: list[Delivery]
    summary: ZoneSummaryRecord
    history: History  # the zone's history with this check in it


def schedule_settings(service: ServiceConfig) -> ScheduleSettings:
    """The scheduler's settings of a ``[watchdog]`` section (jitter as a share of interval)."""
    return ScheduleSettings(
        interval=service.interval, jitter=min(1.0, service.jitter / max(1, service.interval))
    )


def judge_zone(
    observation: ZoneObservation,
    now: int,
    *,
    zone_policy: ZonePolicy,
    states: Mapping[Condition, AlertState],
    alert_policy: AlertPolicy,
    schedule: ScheduleSettings,
    webhooks: Sequence[WebhookConfig],
    origin: Origin,
    history: History | None = None,
    stall_margin: StallMargin = DEFAULT_MARGIN,
) -> Judgement:
    """One zone's verdict, new alert states, events, next plan and deliveries at ``now``.

    ``states`` is what the store holds for the zone (read from it, replaced only after a
    commit): a state this check leaves as it was needs no write. ``history`` is the zone's
    signature history as stored (None: an empty one); the new one is in the judgement.
    """
    zone = observation.zone
    report = assess_zone(observation, now, zone_policy)
    history = record(history or History(), report)
    report = with_stall(report, assess_stall(history, report, stall_margin))
    new_states, events = transition_zone(states, report, alert_policy, origin)
    failures = new_states[Condition.UNREACHABLE].failures
    plan = plan_next(
        zone,
        now,
        schedule,
        next_crossing=report.deadlines.next_crossing(now) if report.deadlines else None,
        failures=failures,
    )
    return Judgement(
        report=report,
        new_states=new_states,
        events=events,
        plan=plan,
        states=[
            AlertStateRecord(zone, c.value, s.to_dict())
            for c, s in new_states.items()
            if states.get(c) != s
        ],
        deliveries=render_deliveries(events, webhooks, now),
        summary=ZoneSummaryRecord(zone, zone_summary(report, failures, plan)),
        history=history,
    )


def render_deliveries(
    events: Sequence[AlertEvent], webhooks: Sequence[WebhookConfig], now: int
) -> list[Delivery]:
    """One delivery per (event, webhook whose filters take it), its body rendered at ``now``."""
    deliveries = []
    for event in events:
        for w in webhooks:
            if webhook_matches(w, event.zone, event.routing_severity):
                req = render(event, w.kind, None, now)  # type: ignore[arg-type]
                deliveries.append(Delivery(event.id, w.name, req.body, req.headers))
    return deliveries


def zone_summary(report: ZoneReport, failures: int, plan: Plan) -> dict[str, Any]:
    """The stored last-observation summary of a zone (the ``zone_summary`` table)."""
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
        "signer": report.signer.summary if report.signer else None,
    }
