"""The service's judging step as a pure function: observation in, everything decided out."""

from __future__ import annotations

import json
import subprocess
import sys

from observations import one_server

from watchdog.config.parse import ServiceConfig, WebhookConfig, ZoneConfig
from watchdog.engine.alerts import AlertPolicy, Condition, Origin
from watchdog.engine.findings import Severity
from watchdog.engine.observations import ZoneObservation
from watchdog.engine.schedule import Reason
from watchdog.service.judge import Judgement, judge_zone, schedule_settings

HOUR, DAY = 3600, 86400
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
LIFE = 14 * DAY  # warning 10% = 33.6 h before expiration
SOON = T0 + 600  # an expiration that crosses into strict failure before the 15-minute interval
ZONE = "example.com."
ORIGIN = Origin("watchdog.test", "0.1.0")
SERVICE = ServiceConfig(interval=900, jitter=0)
WARN_HOOK = WebhookConfig("ops", "generic", "http://127.0.0.1:9/warn")
SLACK_HOOK = WebhookConfig("chat", "slack", "http://127.0.0.1:9/slack")
PAGER = WebhookConfig(
    "pager", "generic", "http://127.0.0.1:9/page", min_severity=Severity.STRICT_FAIL
)
OTHER_ZONES = WebhookConfig("other", "generic", "http://127.0.0.1:9/other", zones=("example.net.",))
HOOKS = (WARN_HOOK, SLACK_HOOK, PAGER, OTHER_ZONES)


def observation(expiration: int | None) -> ZoneObservation:
    """One server serving SOA and DNSKEY signed until ``expiration``; None: it is silent."""
    return one_server(ZONE, expiration, lifetime=LIFE)


def judge(obs: ZoneObservation, now: int, states: Judgement | None = None) -> Judgement:
    zone = ZoneConfig(ZONE)
    return judge_zone(
        obs,
        now,
        zone_policy=zone.policy,
        states=states.new_states if states else {},
        alert_policy=AlertPolicy(renotify=zone.renotify, unreachable_after=2),
        schedule=schedule_settings(SERVICE),
        webhooks=HOOKS,
        origin=ORIGIN,
    )


def test_a_warning_is_rendered_for_the_webhooks_that_take_it() -> None:
    """Entering the warning fires one event, rendered for each matching webhook only."""
    j = judge(observation(SOON), T0)
    assert j.report.severity is Severity.WARNING
    assert [(e.condition, e.new_severity) for e in j.events] == [
        (Condition.EXPIRY, Severity.WARNING)
    ]
    assert [d.webhook for d in j.deliveries] == ["ops", "chat"]
    generic = json.loads(j.deliveries[0].body)
    assert generic["id"] == j.events[0].id == j.deliveries[1].event_id
    assert generic["zone"] == ZONE
    assert "blocks" in json.loads(j.deliveries[1].body)  # Slack's body, not the generic one


def test_the_plan_is_the_next_crossing_and_the_summary_its_record() -> None:
    """A zone in warning is checked again one second after strict validators start failing."""
    j = judge(observation(SOON), T0)
    deadlines = j.report.deadlines
    assert deadlines is not None
    assert (j.plan.zone, j.plan.reason, j.plan.due) == (
        ZONE,
        Reason.CROSSING,
        deadlines.strict_fail_at + 1,
    )
    assert j.summary.zone == ZONE
    assert j.summary.summary == {
        "checked_at": T0,
        "severity": "warning",
        "expiry_severity": "warning",
        "warning_at": deadlines.warning_at,
        "strict_fail_at": deadlines.strict_fail_at,
        "skew_exhausted_at": deadlines.skew_exhausted_at,
        "failures": 0,
        "next_check": j.plan.due,
        "next_reason": "crossing",
        "signer": "signer: learning the refresh pattern (0 of 2 refreshes seen)",
    }


def test_each_check_is_recorded_in_the_zone_history() -> None:
    """The judgement carries the zone's history with this check in it, ready to store; a run of
    identical checks extends one sample, and no signer event comes while learning."""
    first = judge(observation(T0 + 10 * DAY), T0)
    again = judge_zone(
        observation(T0 + 10 * DAY),
        T0 + 900,
        zone_policy=ZoneConfig(ZONE).policy,
        states=first.new_states,
        alert_policy=AlertPolicy(),
        schedule=schedule_settings(SERVICE),
        webhooks=HOOKS,
        origin=ORIGIN,
        history=first.history,
    )
    [(_, samples)] = again.history.servers.items()
    assert [(s.first_seen, s.last_seen) for s in samples] == [(T0, T0 + 900)]
    assert again.report.signer is not None and again.report.signer.state == "learning"
    assert Condition.SIGNER not in {e.condition for e in (*first.events, *again.events)}


def test_crossing_into_strict_fail_pages_and_a_repeat_says_nothing() -> None:
    """At the crossing the pager webhook is added; the same verdict again sends nothing."""
    first = judge(observation(SOON), T0)
    second = judge(observation(SOON), first.plan.due, first)
    assert second.report.severity is Severity.STRICT_FAIL
    assert [d.webhook for d in second.deliveries] == ["ops", "chat", "pager"]
    again = judge(observation(SOON), first.plan.due + 60, second)
    assert (again.events, again.deliveries) == ((), [])


def test_only_changed_states_are_written() -> None:
    """A check that changes no alert state asks the store to write none."""
    first = judge(observation(T0 + 10 * DAY), T0)
    assert {r.condition for r in first.states} == {c.value for c in Condition}
    again = judge(observation(T0 + 10 * DAY), T0 + 900, first)
    assert again.states == []
    assert again.plan.reason is Reason.INTERVAL and again.plan.due == T0 + 1800


def test_silence_retries_with_backoff_and_fires_after_unreachable_after() -> None:
    """A silent zone is retried sooner than the interval; the second failure fires unreachable."""
    first = judge(observation(None), T0)
    assert first.events == () and first.plan.reason is Reason.RETRY
    assert first.summary.summary is not None and first.summary.summary["failures"] == 1
    second = judge(observation(None), first.plan.due, first)
    assert [e.condition for e in second.events] == [Condition.UNREACHABLE]
    assert second.plan.due - first.plan.due > first.plan.due - T0  # backs off


def test_the_same_input_gives_the_same_bytes() -> None:
    """Judging is deterministic: replayed after a crash, the deliveries are the same bytes."""
    a, b = judge(observation(SOON), T0), judge(observation(SOON), T0)
    assert a.deliveries == b.deliveries and a.plan == b.plan


def test_judging_loads_no_io_module_beyond_the_config_package() -> None:
    """Importing the judge adds no socket, asyncio, sqlite3, httpx, store, prober or delivery."""
    code = (
        "import sys; import watchdog.config.parse; before = set(sys.modules);"
        "import watchdog.service.judge; print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    added = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "watchdog.service.judge" in added
    io = {"socket", "asyncio", "sqlite3", "httpx", "selectors", "ssl"}
    assert [m for m in added if m in io or m.startswith(("watchdog.probe", "httpx"))] == []
    assert [m for m in added if m.startswith("watchdog.service.") and m not in _PURE] == []


_PURE = {"watchdog.service.judge", "watchdog.service.records"}
