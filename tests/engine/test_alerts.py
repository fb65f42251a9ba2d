"""Alert lifecycle: (zone, condition) transitions, reminders, replay-stable ids (DESIGN.md 4)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.engine.alerts import (
    AlertEvent,
    AlertPolicy,
    AlertState,
    Condition,
    EventKind,
    Origin,
    transition,
    transition_zone,
)
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.observations import (
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.errors import InvalidValueError, StateError

HOUR, DAY = 3600, 86400
WRAP = 2**32
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
LIFE = 14 * DAY  # warning 10% = 33.6 h before E; Unbound skew 1 day (L/10 capped at 86400)
ORIGIN = Origin("watchdog.test", "0.1.0")
OK, W, SF, SE = (
    Severity.OK,
    Severity.WARNING,
    Severity.STRICT_FAIL,
    Severity.SKEW_EXHAUSTED,
)
# Where E sits relative to "now" to put a 14-day signature on each rung of the expiry ladder.
EXPIRES_IN = {OK: 10 * DAY, W: 2 * HOUR, SF: -2 * HOUR, SE: -2 * DAY}
DEFAULT_POLICY = AlertPolicy()
NS1, NS2 = ("192.0.2.1:53", "ns1.example.com."), ("192.0.2.53:53", "ns2.example.com.")


def sig(expiration: int, rtype: str, verification: Verification) -> SignatureObservation:
    return SignatureObservation(
        owner="example.com.",
        rtype=rtype,
        key_tag=1111 if rtype != "DNSKEY" else 2222,
        algorithm=13,
        inception=(expiration - LIFE) % WRAP,
        expiration=expiration % WRAP,
        original_ttl=3600,
        verification=verification,
    )


def server(
    where: tuple[str, str],
    expiration: int,
    *,
    silent: bool = False,
    bogus: bool = False,
    signed: bool = True,
) -> ServerObservation:
    if silent:
        return ServerObservation(where[0], where[1], reachable=False)
    rrsets = tuple(
        RRsetObservation(
            "example.com.",
            rtype,
            3600,
            (
                sig(
                    expiration,
                    rtype,
                    Verification.BOGUS if bogus and rtype == "SOA" else Verification.VALID,
                ),
            )
            if signed
            else (),
        )
        for rtype in ("SOA", "DNSKEY")
    )
    return ServerObservation(where[0], where[1], serial=2027011501, rrsets=rrsets if signed else ())


def report(
    now: int,
    severity: Severity = OK,
    *,
    silent: Sequence[tuple[str, str]] = (),
    bogus: bool = False,
    signed: bool = True,
    healthy_ns1: bool = False,
) -> ZoneReport:
    """Two servers; ns2 (and ns1 too unless ``healthy_ns1``) serves signatures at ``severity``."""
    stale = now + EXPIRES_IN[severity]
    fresh = now + EXPIRES_IN[OK] if healthy_ns1 else stale
    servers = (
        server(NS1, fresh, silent=NS1 in silent, signed=signed),
        server(NS2, stale, silent=NS2 in silent, bogus=bogus, signed=signed),
    )
    result = assess_zone(ZoneObservation("example.com.", servers, signed=signed), now)
    if signed and len(silent) < 2:
        assert result.expiry_severity is severity  # the builder puts us on the intended rung
    return result


def run(
    steps: Sequence[ZoneReport],
    policy: AlertPolicy = DEFAULT_POLICY,
    states: dict[Condition, AlertState] | None = None,
) -> tuple[dict[Condition, AlertState], list[AlertEvent]]:
    states = dict(states or {})
    events: list[AlertEvent] = []
    for step in steps:
        states, new = transition_zone(states, step, policy, ORIGIN)
        events.extend(new)
    return states, events


def shape(events: Sequence[AlertEvent], condition: Condition) -> list[tuple[str, str, str]]:
    return [
        (e.kind.value, e.old_severity.value, e.new_severity.value)
        for e in events
        if e.condition is condition
    ]


# --- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            [(0, OK), (1, W), (2, SF), (3, SE)],
            [
                ("raised", "ok", "warning"),
                ("raised", "warning", "strict_fail"),
                ("raised", "strict_fail", "skew_exhausted"),
            ],
            id="rise-through-the-ladder",
        ),
        pytest.param([(0, OK), (1, OK), (30, OK)], [], id="healthy-stays-quiet"),
        pytest.param([(0, W), (1, W), (2, W)], [("raised", "ok", "warning")], id="stay-put"),
        pytest.param(
            [(0, W), (23, W), (24, W), (25, W), (48, W)],
            [
                ("raised", "ok", "warning"),
                ("renotify", "warning", "warning"),
                ("renotify", "warning", "warning"),
            ],
            id="renotify-every-24h",
        ),
        pytest.param(
            [(0, W), (20, SF), (30, SF), (44, SF)],
            [
                ("raised", "ok", "warning"),
                ("raised", "warning", "strict_fail"),
                ("renotify", "strict_fail", "strict_fail"),
            ],
            id="a-raise-restarts-the-reminder-clock",
        ),
        pytest.param(
            [(0, SF), (1, OK), (30, OK)],
            [("raised", "ok", "strict_fail"), ("recovered", "strict_fail", "ok")],
            id="recovery-to-ok",
        ),
        pytest.param(
            [(0, SE), (1, W)],
            [("raised", "ok", "skew_exhausted"), ("recovered", "skew_exhausted", "warning")],
            id="partial-recovery",
        ),
        pytest.param([(0, SE)], [("raised", "ok", "skew_exhausted")], id="first-check-failing"),
    ],
)
def test_expiry_transitions(
    steps: list[tuple[int, Severity]], expected: list[tuple[str, str, str]]
) -> None:
    """Rises, falls and 24 h reminders of the expiry ladder, each announced exactly once."""
    _, events = run([report(T0 + h * HOUR, s) for h, s in steps])
    assert shape(events, Condition.EXPIRY) == expected
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def test_renotify_can_be_switched_off() -> None:
    """renotify = 0: a week of WARNING gives the one raise and no reminders."""
    steps = [report(T0 + d * DAY, W) for d in range(8)]
    _, events = run(steps, AlertPolicy(renotify=0))
    assert shape(events, Condition.EXPIRY) == [("raised", "ok", "warning")]


def test_same_report_twice_gives_no_duplicate() -> None:
    """Feeding the very same report again changes nothing and announces nothing."""
    r = report(T0, SF)
    states, first = run([r])
    again, second = transition_zone(states, r, AlertPolicy(), ORIGIN)
    assert len(first) == 1
    assert second == ()
    assert again == states


def test_recovery_waits_for_every_server() -> None:
    """The stale server going silent is not a recovery: expiry holds until ns2 answers again."""
    _, events = run(
        [
            report(T0, SF, healthy_ns1=True),
            report(T0 + HOUR, OK, silent=[NS2]),
            report(T0 + 2 * HOUR, OK, silent=[NS2]),
            report(T0 + 3 * HOUR, OK),
        ]
    )
    assert shape(events, Condition.EXPIRY) == [
        ("raised", "ok", "strict_fail"),
        ("recovered", "strict_fail", "ok"),
    ]
    recovered = [e for e in events if e.kind is EventKind.RECOVERED]
    assert recovered[0].at == T0 + 3 * HOUR


def test_no_answer_at_all_judges_nothing_but_reachability() -> None:
    """All servers silent: expiry, bogus and unknown keep their state; only unreachable moves."""
    states, events = run(
        [report(T0, SF)] + [report(T0 + h * HOUR, OK, silent=[NS1, NS2]) for h in (1, 2, 3)]
    )
    assert shape(events, Condition.EXPIRY) == [("raised", "ok", "strict_fail")]
    assert shape(events, Condition.UNKNOWN) == []
    assert shape(events, Condition.BOGUS) == []
    assert shape(events, Condition.UNREACHABLE) == [("raised", "ok", "unreachable")]
    assert states[Condition.EXPIRY].severity is SF


def test_no_dnskey_because_nobody_answered_is_not_unsigned() -> None:
    """All silent and so no DNSKEY seen: neither "unknown" (not signed) nor an expiry recovery."""
    silent = assess_zone(
        ZoneObservation(
            "example.com.",
            (server(NS1, 0, silent=True), server(NS2, 0, silent=True)),
            signed=False,
        ),
        T0 + HOUR,
    )
    states, events = run([report(T0, SF), silent])
    assert shape(events, Condition.UNKNOWN) == []
    assert shape(events, Condition.EXPIRY) == [("raised", "ok", "strict_fail")]
    assert states[Condition.EXPIRY].severity is SF


def test_event_carries_the_deadlines_of_the_stale_server() -> None:
    """The event names the signature that sets the deadline, where it was served, and when."""
    now = T0
    _, events = run([report(now, W, healthy_ns1=True)])
    (event,) = events
    expiration = now + EXPIRES_IN[W]
    d = event.deadlines
    assert d is not None
    assert d.strict_fail_at == expiration + 1
    assert d.skew_exhausted_at == expiration + DAY + 1
    assert d.warning_at == expiration - LIFE // 10
    assert d.unbound_skew == DAY
    assert (d.signature.server, d.signature.server_name) == NS2
    assert d.signature.expiration == expiration
    assert d.signature.inception == expiration - LIFE
    assert d.signature.key_tag == (2222 if d.signature.rtype == "DNSKEY" else 1111)
    assert {(s.address, s.serial) for s in event.servers} == {
        (NS1[0], 2027011501),
        (NS2[0], 2027011501),
    }
    assert event.origin == ORIGIN
    assert event.findings and event.findings[0].severity is W


# --- bogus, unknown --------------------------------------------------------------------------


def test_bogus_is_independent_of_expiry() -> None:
    """A bogus RRset raises its own alert; fixing it recovers bogus and leaves expiry alone."""
    states, events = run(
        [
            report(T0, W, bogus=True),
            report(T0 + HOUR, W),
        ]
    )
    assert shape(events, Condition.BOGUS) == [
        ("raised", "ok", "bogus"),
        ("recovered", "bogus", "ok"),
    ]
    assert shape(events, Condition.EXPIRY) == [("raised", "ok", "warning")]
    assert states[Condition.EXPIRY].severity is W


def test_unsigned_zone_is_unknown_not_silence() -> None:
    """A zone that stops being signed raises "unknown"; its expiry alert resolves."""
    _, events = run([report(T0, W), report(T0 + HOUR, signed=False)])
    assert shape(events, Condition.UNKNOWN) == [("raised", "ok", "unknown")]
    assert shape(events, Condition.EXPIRY) == [
        ("raised", "ok", "warning"),
        ("recovered", "warning", "ok"),
    ]


# --- unreachable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "silent", "expected"),
    [
        pytest.param(3, "xx", [], id="two-failures-of-three"),
        pytest.param(3, "xxx", [("raised", 3)], id="third-failure-raises"),
        pytest.param(3, "xxxx.", [("raised", 3), ("recovered", 5)], id="recovers-on-answer"),
        pytest.param(3, "xx.xx.", [], id="an-answer-resets-the-count"),
        pytest.param(1, "x.", [("raised", 1), ("recovered", 2)], id="threshold-one"),
        pytest.param(5, "xxxxx", [("raised", 5)], id="threshold-five"),
    ],
)
def test_unreachable_needs_consecutive_failures(
    after: int, silent: str, expected: list[tuple[str, int]]
) -> None:
    """ "x" = ns2 silent, "." = all answer: the alert fires on the N-th failure in a row."""
    steps = [
        report(T0 + i * HOUR, OK, silent=[NS2] if c == "x" else []) for i, c in enumerate(silent)
    ]
    _, events = run(steps, AlertPolicy(unreachable_after=after))
    got = [
        (e.kind.value, (e.at - T0) // HOUR + 1)
        for e in events
        if e.condition is Condition.UNREACHABLE
    ]
    assert got == expected


def test_unreachable_event_counts_failures() -> None:
    """The raise carries the number of failed checks in a row."""
    _, events = run([report(T0 + i * HOUR, OK, silent=[NS2]) for i in range(3)])
    (event,) = events
    assert (event.condition, event.failures) == (Condition.UNREACHABLE, 3)
    assert [s.address for s in event.servers if not s.reachable] == [NS2[0]]


# --- ids and persistence ---------------------------------------------------------------------


def persisted(states: dict[Condition, AlertState]) -> dict[Condition, AlertState]:
    """What the store gives back: through JSON text and from_dict."""
    text = json.dumps({c.value: s.to_dict() for c, s in states.items()})
    return {Condition(c): AlertState.from_dict(d) for c, d in json.loads(text).items()}


def test_replay_from_persisted_state_gives_the_same_ids() -> None:
    """A crash after deciding but before sending: the replay, later, yields the same event ids."""
    states, _ = run([report(T0, W), report(T0 + HOUR, W)])
    live_states, live = transition_zone(states, report(T0 + 2 * HOUR, SF), AlertPolicy(), ORIGIN)
    replay_states, replay = transition_zone(
        persisted(states), report(T0 + 2 * HOUR + 300, SF), AlertPolicy(), ORIGIN
    )
    assert [e.id for e in live] == [e.id for e in replay]
    assert live and live[0].kind is EventKind.RAISED
    assert replay_states[Condition.EXPIRY].sequence == live_states[Condition.EXPIRY].sequence


def test_ids_are_unique_and_a_new_state_file_starts_new_ids() -> None:
    """Distinct events never share an id, even the same transition in a fresh epoch."""
    steps = [report(T0 + h * HOUR, s) for h, s in [(0, W), (24, W), (25, OK), (26, W), (50, W)]]
    _, events = run(steps)
    _, later = run([report(T0 + 100 * DAY, W)])
    ids = [e.id for e in events] + [e.id for e in later]
    assert len(ids) == len(set(ids)) == 6
    assert events[0].kind is later[0].kind is EventKind.RAISED


def test_state_round_trips_through_json() -> None:
    """to_dict is plain JSON and from_dict restores an equal state."""
    states, _ = run([report(T0 + i * HOUR, W, silent=[NS2]) for i in range(2)])
    assert persisted(states) == states
    assert states[Condition.UNREACHABLE].failures == 2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"severity": "purple"}, "severity"),
        ({"sequence": "3"}, "sequence"),
        ({"zone": None}, "zone"),
        ({"failures": True}, "failures"),
        ({"notified_at": 1.5}, "notified_at"),
        ({"format": 99}, "format"),
    ],
)
def test_corrupt_state_is_a_state_error_naming_the_key(change: dict[str, object], key: str) -> None:
    """A damaged state row is reported with the key that is wrong, not a KeyError."""
    states, _ = run([report(T0, W)])
    data = {**states[Condition.EXPIRY].to_dict(), **change}
    with pytest.raises(StateError, match=key):
        AlertState.from_dict(data)


def test_state_of_another_key_is_refused() -> None:
    """Passing the bogus state to the expiry transition is a programming error, said clearly."""
    states, _ = run([report(T0, OK)])
    with pytest.raises(InvalidValueError, match="bogus"):
        transition(states[Condition.BOGUS], Condition.EXPIRY, report(T0, OK), AlertPolicy(), ORIGIN)


@pytest.mark.parametrize("policy", [{"renotify": -1}, {"unreachable_after": 0}, {"renotify": 1.5}])
def test_bad_policy_is_refused(policy: dict[str, int]) -> None:
    """Negative reminders or a zero threshold are rejected with the knob's name."""
    with pytest.raises(InvalidValueError, match=next(iter(policy))):
        AlertPolicy(**policy)


# --- properties ------------------------------------------------------------------------------

LADDER = [OK, W, SF, SE]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(LADDER), st.integers(min_value=60, max_value=3 * DAY)),
        min_size=1,
        max_size=12,
    )
)
def test_events_only_on_change_or_reminder(steps: list[tuple[Severity, int]]) -> None:
    """Any sequence: unchanged severity emits at most a reminder; the state ends at the last."""
    policy = AlertPolicy()
    state: AlertState | None = None
    now = T0
    seen: set[str] = set()
    for severity, gap in steps:
        now += gap
        before = state.severity if state else OK
        last = state.notified_at if state else None
        state, event = transition(state, Condition.EXPIRY, report(now, severity), policy, ORIGIN)
        if severity is before:
            due = severity is not OK and (last is None or now - last >= policy.renotify)
            assert (event is not None) == due
            assert event is None or event.kind is EventKind.RENOTIFY
        else:
            assert event is not None
            assert (event.old_severity, event.new_severity) == (before, severity)
            rising = LADDER.index(severity) > LADDER.index(before)
            assert event.kind is (EventKind.RAISED if rising else EventKind.RECOVERED)
        if event is not None:
            assert event.id not in seen
            seen.add(event.id)
    assert state is not None and state.severity is steps[-1][0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=14), st.integers(min_value=1, max_value=4))
def test_unreachable_fires_exactly_at_the_nth_failure(silent: list[bool], after: int) -> None:
    """Raised when a run of failures reaches N, recovered at the first answer after that."""
    policy = AlertPolicy(unreachable_after=after)
    state: AlertState | None = None
    run_length = 0
    for i, fails in enumerate(silent):
        r = report(T0 + i * HOUR, OK, silent=[NS2] if fails else [])
        state, event = transition(state, Condition.UNREACHABLE, r, policy, ORIGIN)
        was_raised = run_length >= after
        run_length = run_length + 1 if fails else 0
        if fails and run_length == after:
            assert event is not None and event.kind is EventKind.RAISED
        elif not fails and was_raised:
            assert event is not None and event.kind is EventKind.RECOVERED
        else:
            assert event is None  # hourly checks: a 24 h reminder never falls due here
        assert state.severity is (Severity.UNREACHABLE if run_length >= after else OK)


def test_recovery_routes_like_the_alert_it_ends() -> None:
    """A webhook filtering on "strict_fail and worse" gets the recovery of a strict failure."""
    _, events = run([report(T0, SF), report(T0 + HOUR, OK)])
    raised, recovered = events
    assert recovered.resolved and recovered.new_severity is OK
    assert raised.routing_severity is recovered.routing_severity is SF


def test_reminder_while_nobody_answers_says_it_is_unconfirmed() -> None:
    """A 24 h reminder of a strict failure during an outage is sent, marked unconfirmed."""
    _, events = run(
        [report(T0, SF)] + [report(T0 + h * HOUR, OK, silent=[NS1, NS2]) for h in (12, 24)]
    )
    expiry = [e for e in events if e.condition is Condition.EXPIRY]
    assert shape(expiry, Condition.EXPIRY) == [
        ("raised", "ok", "strict_fail"),
        ("renotify", "strict_fail", "strict_fail"),
    ]
    assert [e.confirmed for e in expiry] == [True, False]


def test_since_is_the_threshold_second_not_the_check() -> None:
    """A strict failure seen 2 h late began at E + 1, and ``since`` says so."""
    now = 1_800_000_000
    _, events = run([report(now, SF)])  # the signatures expired 2 h before this check
    [event] = [e for e in events if e.condition is Condition.EXPIRY]
    assert event.new_severity is SF
    assert event.since == now + EXPIRES_IN[SF] + 1


def test_since_of_a_recovery_is_the_check_that_saw_it() -> None:
    """Nothing predicts a recovery: it began when a check saw it."""
    now = 1_800_000_000
    _, events = run([report(now, SF), report(now + HOUR, OK)])
    recovered = [e for e in events if e.kind.value == "recovered"]
    assert [e.since for e in recovered] == [now + HOUR]
