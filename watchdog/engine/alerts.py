"""Alert lifecycle (DESIGN.md 4): previous state + a new ZoneReport -> new state and events.

Pure: no clock, no I/O. The moment of a transition is the report's ``checked_at``; the
watchdog's host and version come in as an ``Origin``. The store persists ``AlertState`` with
``to_dict``/``from_dict`` and must save the new states and enqueue the events in ONE SQLite
transaction, so that a crash leaves either both or neither.

Alerts are keyed by (zone, condition), each with its own severity ladder:

    expiry       OK < WARNING < STRICT_FAIL < SKEW_EXHAUSTED   (ZoneReport.expiry_severity)
    bogus        OK < BOGUS           something does not validate whatever the clock says
    unreachable  OK < UNREACHABLE     some server failed ``unreachable_after`` checks in a row
    unknown      OK < UNKNOWN         the watchdog cannot judge (zone not signed, algorithm we
                                      cannot verify)
    signer       OK < WARNING         the signer (or one secondary) stopped refreshing: learned
                                      from the zone's history (engine/stall.py); only the
                                      service judges it (ZoneReport.signer), so a report
                                      without it leaves the state as it was

"unknown" is a condition of its own because it is exactly when the expiry condition goes blind:
a zone whose signer was switched off, or rolled to an algorithm we cannot check, must not look
like silence. Kept apart, it neither hides nor is hidden by an expiry or bogus alert.

What a report can say about each condition:
- expiry, bogus and unknown are judged only from reports in which at least one server answered
  (no answers is the unreachable condition's business, and an unanswered DNSKEY query must not
  read as "not signed" or as a DS mismatch);
- a FALL (recovery) of those three is declared only from a complete observation, every server
  answering: otherwise a stale server that stops answering would "recover" the zone and the
  alert would flap with its reachability. A rise needs no such care: what we saw is already bad.

Event ids: uuid5 of (zone, condition, epoch, sequence, old, new, kind). ``sequence`` counts the
events of the key and ``epoch`` is the moment the key's state was first created; both are in
the persisted state, so replaying a transition from the same persisted state after a crash
gives the same ids whatever the new report's time, and receivers (and the outbox) can
deduplicate on them. The clock is deliberately not part of the id: a replay re-probes at a new
``now``. A new epoch after a lost state file keeps new ids from colliding with old ones a
receiver has already seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from watchdog.engine.assess import ZoneReport
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.timeline import Deadline
from watchdog.errors import InvalidValueError, StateError

__all__ = [
    "AlertEvent",
    "AlertPolicy",
    "AlertState",
    "Condition",
    "EventDeadlines",
    "EventKind",
    "Origin",
    "ServerState",
    "SignatureRef",
    "transition",
    "transition_zone",
]

STATE_FORMAT = 1
# Fixed namespace for event ids (uuid5); changing it would change every id.
_EVENT_NAMESPACE = uuid.UUID("6f1c2d4e-8a3b-5c7d-9e0f-1a2b3c4d5e6f")
_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)


class Condition(StrEnum):
    """What an alert is about; one state and one stream of events per (zone, condition)."""

    EXPIRY = "expiry"
    BOGUS = "bogus"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"
    SIGNER = "signer"


class EventKind(StrEnum):
    """Why an event was emitted: severity rose, fell (to OK or a lower level), or a reminder."""

    RAISED = "raised"
    RECOVERED = "recovered"
    RENOTIFY = "renotify"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Lifecycle knobs: reminder interval (0 = never remind) and the unreachable threshold."""

    renotify: int = 86400
    unreachable_after: int = 3

    def __post_init__(self) -> None:
        for name, minimum in (("renotify", 0), ("unreachable_after", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidValueError(
                    f"{name} must be a whole number >= {minimum}, not {value!r}"
                )


@dataclass(frozen=True, slots=True)
class Origin:
    """The watchdog instance that emits events, named in every body."""

    host: str
    version: str


@dataclass(frozen=True, slots=True)
class AlertState:
    """The persisted memory of one (zone, condition): what was last announced, and when."""

    zone: str
    condition: Condition
    severity: Severity  # the last announced severity (OK when nothing is wrong)
    since: int  # when this severity began
    notified_at: int | None  # when the last event was emitted; None before the first one
    sequence: int  # events emitted for this key so far
    epoch: int  # when this key's state was first created
    failures: int = 0  # consecutive failed checks (unreachable condition only)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping; ``from_dict`` reads it back."""
        return {
            "format": STATE_FORMAT,
            "zone": self.zone,
            "condition": self.condition.value,
            "severity": self.severity.value,
            "since": self.since,
            "notified_at": self.notified_at,
            "sequence": self.sequence,
            "epoch": self.epoch,
            "failures": self.failures,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Read a mapping written by ``to_dict``; StateError names the first bad key."""
        if not isinstance(data, Mapping):
            raise StateError(f"alert state must be a JSON object, not {type(data).__name__}")
        if data.get("format") != STATE_FORMAT:
            raise StateError(
                f"alert state format {data.get('format')!r} is not {STATE_FORMAT}; "
                "the state file was written by another version of dnssec-watchdog"
            )
        zone = _field(data, "zone", str)
        condition = _enum(data, "condition", Condition)
        severity = _enum(data, "severity", Severity)
        notified = data.get("notified_at")
        if notified is not None:
            notified = _field(data, "notified_at", int)
        return cls(
            zone=zone,
            condition=condition,
            severity=severity,
            since=_field(data, "since", int),
            notified_at=notified,
            sequence=_field(data, "sequence", int),
            epoch=_field(data, "epoch", int),
            failures=_field(data, "failures", int),
        )


def _field(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise StateError(f"alert state key {key!r}: expected {kind.__name__}, got {value!r}")
    return value


def _enum(data: Mapping[str, Any], key: str, kind: type[_E]) -> _E:
    value = _field(data, key, str)
    try:
        return kind(value)
    except ValueError:
        raise StateError(f"alert state key {key!r}: unknown value {value!r}") from None


@dataclass(frozen=True, slots=True)
class SignatureRef:
    """The RRSIG that sets a deadline, and the server that served it (times are POSIX)."""

    server: str
    server_name: str | None
    owner: str
    rtype: str
    key_tag: int
    algorithm: int
    inception: int
    expiration: int


@dataclass(frozen=True, slots=True)
class EventDeadlines:
    """The zone's thresholds (DESIGN.md 2) and the signatures behind them."""

    warning_at: int
    strict_fail_at: int
    skew_exhausted_at: int
    unbound_skew: int
    signature: SignatureRef  # sets warning_at and strict_fail_at
    unbound_signature: SignatureRef  # sets skew_exhausted_at (usually the same one)


@dataclass(frozen=True, slots=True)
class ServerState:
    """One authoritative server address as the report saw it."""

    address: str
    name: str | None
    reachable: bool
    serial: int | None
    severity: Severity
    strict_fail_at: int | None


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One announcement: a transition of one (zone, condition), with the report's evidence."""

    id: str
    zone: str
    condition: Condition
    kind: EventKind
    old_severity: Severity
    new_severity: Severity
    sequence: int
    at: int  # the check that caused it (ZoneReport.checked_at)
    since: int  # when new_severity began
    failures: int  # consecutive failed checks at that moment
    # False only for a reminder whose severity this check could not see (servers silent) and
    # which is carried over from earlier checks; rises and falls are always observed.
    confirmed: bool
    zone_severity: Severity
    signed: bool
    deadlines: EventDeadlines | None
    servers: tuple[ServerState, ...]
    findings: tuple[Finding, ...]
    origin: Origin

    @property
    def resolved(self) -> bool:
        """True when this event closes the alert (back to OK)."""
        return self.new_severity is Severity.OK

    @property
    def routing_severity(self) -> Severity:
        """The higher of old and new: what webhook filters (min_severity) should compare, so a
        recovery reaches every webhook that heard the raise."""
        return max(self.old_severity, self.new_severity, key=lambda s: s.rank)


def _complete(report: ZoneReport) -> bool:
    return bool(report.servers) and all(s.reachable for s in report.servers)


def _any_answer(report: ZoneReport) -> bool:
    return any(s.reachable for s in report.servers)


def _all_findings(report: ZoneReport) -> tuple[Finding, ...]:
    """Zone-level and per-server findings, each once, worst first (stable otherwise)."""
    seen = dict.fromkeys([*report.findings, *(f for s in report.servers for f in s.findings)])
    return tuple(sorted(seen, key=lambda f: -f.severity.rank))


def _observed(condition: Condition, report: ZoneReport) -> Severity | None:
    """The content conditions' severity in this report; None when it cannot tell."""
    if not _any_answer(report):
        return None
    if condition is Condition.SIGNER:
        return report.signer.severity if report.signer is not None else None
    if condition is Condition.EXPIRY:
        if not report.signed:
            return Severity.OK  # nothing left that can expire
        return report.expiry_severity if report.deadlines is not None else None
    severities = {f.severity for f in _all_findings(report)}
    severities |= {s.severity for s in report.servers if s.reachable}
    severities.add(report.severity)
    if condition is Condition.BOGUS:
        return Severity.BOGUS if Severity.BOGUS in severities else Severity.OK
    return Severity.UNKNOWN if Severity.UNKNOWN in severities else Severity.OK


def _target(
    previous: AlertState, report: ZoneReport, policy: AlertPolicy, failures: int
) -> tuple[Severity, bool]:
    """The severity to hold after this report, and whether this report itself showed it."""
    if previous.condition is Condition.UNREACHABLE:
        failing = failures >= policy.unreachable_after
        return (Severity.UNREACHABLE if failing else Severity.OK), True
    observed = _observed(previous.condition, report)
    if observed is None:
        return previous.severity, False
    if observed.rank < previous.severity.rank and not _complete(report):
        return previous.severity, False  # a fall needs every server's answer (module docstring)
    return observed, True


def _event_id(state: AlertState, old: Severity, new: Severity, kind: EventKind) -> str:
    name = "\x1f".join(
        [state.zone, state.condition.value, str(state.epoch), str(state.sequence), old, new, kind]
    )
    return str(uuid.uuid5(_EVENT_NAMESPACE, name))


def transition(
    previous: AlertState | None,
    condition: Condition,
    report: ZoneReport,
    policy: AlertPolicy,
    origin: Origin,
) -> tuple[AlertState, AlertEvent | None]:
    """One (zone, condition): the new state and at most one event for this report."""
    now = report.checked_at
    if previous is None:
        previous = AlertState(report.zone, condition, Severity.OK, now, None, 0, now)
    elif previous.zone != report.zone or previous.condition is not condition:
        raise InvalidValueError(
            f"state of ({previous.zone}, {previous.condition}) given for "
            f"({report.zone}, {condition})"
        )
    # Only the unreachable condition counts failed checks (any server silent, or none found).
    failures = 0
    if condition is Condition.UNREACHABLE and not _complete(report):
        failures = previous.failures + 1
    new, confirmed = _target(previous, report, policy, failures)
    old = previous.severity
    if new.rank > old.rank:
        kind: EventKind | None = EventKind.RAISED
    elif new.rank < old.rank:
        kind = EventKind.RECOVERED
    elif new is not Severity.OK and policy.renotify and _reminder_due(previous, now, policy):
        kind = EventKind.RENOTIFY
    else:
        kind = None
    if kind is None:
        return replace(previous, failures=failures), None
    state = replace(
        previous,
        severity=new,
        since=_began(condition, new, report) if new is not old else previous.since,
        notified_at=now,
        sequence=previous.sequence + 1,
        failures=failures,
    )
    return state, _event(state, old, kind, confirmed, report, origin)


def _began(condition: Condition, severity: Severity, report: ZoneReport) -> int:
    """When ``severity`` began: for the expiry ladder the engine knows the exact threshold
    second (it may lie before this check, e.g. after the watchdog itself was down); for
    everything else, the check that saw it."""
    d = report.deadlines
    if condition is Condition.EXPIRY and d is not None:
        threshold = {
            Severity.WARNING: d.warning_at,
            Severity.STRICT_FAIL: d.strict_fail_at,
            Severity.SKEW_EXHAUSTED: d.skew_exhausted_at,
        }.get(severity)
        if threshold is not None and threshold <= report.checked_at:
            return threshold
    return report.checked_at


def _reminder_due(previous: AlertState, now: int, policy: AlertPolicy) -> bool:
    if previous.notified_at is None:
        return True
    return now - previous.notified_at >= policy.renotify


def transition_zone(
    previous: Mapping[Condition, AlertState],
    report: ZoneReport,
    policy: AlertPolicy,
    origin: Origin,
) -> tuple[dict[Condition, AlertState], tuple[AlertEvent, ...]]:
    """Every condition of one zone: new states for all of them, events in condition order."""
    states: dict[Condition, AlertState] = {}
    events: list[AlertEvent] = []
    for condition in Condition:
        state, event = transition(previous.get(condition), condition, report, policy, origin)
        states[condition] = state
        if event is not None:
            events.append(event)
    return states, tuple(events)


def _event(
    state: AlertState,
    old: Severity,
    kind: EventKind,
    confirmed: bool,
    report: ZoneReport,
    origin: Origin,
) -> AlertEvent:
    return AlertEvent(
        id=_event_id(state, old, state.severity, kind),
        zone=state.zone,
        condition=state.condition,
        kind=kind,
        old_severity=old,
        new_severity=state.severity,
        sequence=state.sequence,
        at=report.checked_at,
        since=state.since,
        failures=state.failures,
        confirmed=confirmed,
        zone_severity=report.severity,
        signed=report.signed,
        deadlines=_deadlines(report),
        servers=tuple(
            ServerState(
                s.address,
                s.name,
                s.reachable,
                s.serial,
                s.severity,
                s.deadlines.strict_fail_at if s.deadlines else None,
            )
            for s in report.servers
        ),
        findings=_all_findings(report),
        origin=origin,
    )


def _deadlines(report: ZoneReport) -> EventDeadlines | None:
    d = report.deadlines
    if d is None:
        return None
    names = {s.address: s.name for s in report.servers}

    def ref(deadline: Deadline) -> SignatureRef:
        sig, timeline = deadline.signature, deadline.timeline
        return SignatureRef(
            server=deadline.server,
            server_name=names.get(deadline.server),
            owner=deadline.owner,
            rtype=deadline.rtype,
            key_tag=sig.key_tag,
            algorithm=sig.algorithm,
            inception=timeline.inception,
            expiration=timeline.expiration,
        )

    return EventDeadlines(
        warning_at=d.warning_at,
        strict_fail_at=d.strict_fail_at,
        skew_exhausted_at=d.skew_exhausted_at,
        unbound_skew=d.unbound_skew,
        signature=ref(d.strict_fail),
        unbound_signature=ref(d.skew_exhausted),
    )
