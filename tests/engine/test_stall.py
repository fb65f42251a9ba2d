"""Signer stall: the refresh pattern learned from a history given as data (engine/stall.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.observations import (
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.stall import (
    History,
    StallMargin,
    StallState,
    assess_stall,
    record,
    with_stall,
)
from watchdog.errors import InvalidValueError, StateError

HOUR, DAY = 3600, 86400
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
LIFE = 30 * DAY  # BIND's default validity
RESIGN = 12 * HOUR  # a signer re-signing twice a day
CHECK = HOUR  # the watchdog's interval
A, B = "192.0.2.1:53", "192.0.2.2:53"
Signer = Callable[[int], int | None]  # moment -> inception of what is served (None: no answer)


def report(now: int, served: Mapping[str, int | None], life: int = LIFE) -> ZoneReport:
    """A zone whose servers serve one SOA signed at the given inception, judged at ``now``."""
    servers = []
    for address, inception in served.items():
        if inception is None:
            servers.append(ServerObservation(address, reachable=False))
            continue
        sig = SignatureObservation(
            "example.com.", "SOA", 1111, 13, inception, inception + life, 3600, Verification.VALID
        )
        rrset = RRsetObservation("example.com.", "SOA", 3600, (sig,))
        servers.append(ServerObservation(address, serial=inception, rrsets=(rrset,)))
    return assess_zone(ZoneObservation("example.com.", tuple(servers)), now)


def resigning(every: int, until: int | None = None) -> Signer:
    """A signer that re-signs at multiples of ``every`` after T0, up to ``until``."""

    def inception(t: int) -> int:
        last = T0 + (t - T0) // every * every
        return last if until is None else min(last, T0 + (until - T0) // every * every)

    return inception


def run(
    signers: Mapping[str, Signer], end: int, margin: StallMargin | None = None
) -> tuple[History, ZoneReport, list[tuple[int, StallState]]]:
    """Check every CHECK seconds from T0 to ``end``; the last report and the states seen."""
    history, states = History(), []
    for now in range(T0, end + 1, CHECK):
        r = report(now, {a: s(now) for a, s in signers.items()})
        history = record(history, r)
        verdict = assess_stall(history, r, margin or StallMargin())
        states.append((now, verdict.state))
        last = with_stall(r, verdict)
    return history, last, states


def first(states: list[tuple[int, StallState]], state: StallState) -> int | None:
    return next((t for t, s in states if s is state), None)


def test_learning_until_two_refreshes() -> None:
    """Fewer than two refreshes seen: learning, said in the report, no finding."""
    _, last, states = run({A: resigning(RESIGN)}, T0 + RESIGN + 2 * CHECK)
    assert {s for _, s in states} == {StallState.LEARNING}
    assert last.signer is not None and last.signer.severity is Severity.OK
    assert "learning" in last.signer.summary and "1 of 2" in last.signer.summary
    assert not [f for f in last.findings if f.code.endswith("stalled")]


def test_healthy_signer_is_ok() -> None:
    """A signer keeping its cadence for weeks never raises the signer condition."""
    _, last, states = run({A: resigning(RESIGN), B: resigning(RESIGN)}, T0 + 20 * DAY)
    assert StallState.STALLED not in {s for _, s in states}
    assert last.signer is not None and last.signer.state == "ok"
    assert "at least every 12h" in last.signer.summary


def test_stopped_signer_warns_days_before_the_expiry_warning() -> None:
    """Re-signing stops: signer_stalled fires days before warning_at, with the figures."""
    stop = T0 + 3 * DAY
    _, last, states = run({A: resigning(RESIGN, stop), B: resigning(RESIGN, stop)}, T0 + 10 * DAY)
    fired = first(states, StallState.STALLED)
    assert fired is not None
    last_resign = T0 + 3 * DAY
    warning_at = last_resign + LIFE - LIFE // 10
    # Twice the 12 h interval without a refresh: one day after the last one, at the next check.
    assert fired == last_resign + 2 * RESIGN + CHECK
    assert warning_at - fired > 20 * DAY
    codes = [f.code for f in last.findings if f.code.endswith("stalled")]
    assert codes == ["signer_stalled"]  # once for the zone, not once per server
    message = next(f.message for f in last.findings if f.code == "signer_stalled")
    assert "last refreshed 7d ago" in message
    assert "at least every 12h" in message
    assert "strict validators fail in 23d" in message
    assert "before the expiry warning" in message
    assert last.severity is Severity.WARNING


def test_remaining_below_the_floor_fires_before_the_interval_rule() -> None:
    """A weekly signer that stops is caught by the validity left, before twice the interval."""
    stop = T0 + 14 * DAY
    _, _, states = run({A: resigning(7 * DAY, stop)}, T0 + 30 * DAY)
    fired = first(states, StallState.STALLED)
    assert fired is not None
    floor = LIFE - 7 * DAY  # what the signer let its signatures run down to
    threshold = floor - floor // 10
    # The first check at which less than the threshold is left...
    assert stop + LIFE - fired < threshold <= stop + LIFE - (fired - CHECK)
    assert fired < stop + 2 * 7 * DAY  # ...before the interval rule would fire


def test_margin_decides_how_far_below_the_floor() -> None:
    """A larger stall_margin fires later (here only at twice the weekly interval)."""
    stop = T0 + 14 * DAY
    signers: dict[str, Signer] = {A: resigning(7 * DAY, stop)}
    end = T0 + 40 * DAY
    default = first(run(signers, end)[2], StallState.STALLED)
    wide = first(run(signers, end, StallMargin.parse("60%"))[2], StallState.STALLED)
    assert default is not None and wide is not None
    assert default < wide == stop + 2 * 7 * DAY + CHECK  # 60% waits for the interval rule


def test_stalled_secondary_is_named() -> None:
    """One server stops following while the other keeps refreshing: secondary_stalled."""
    stop = T0 + 3 * DAY
    _, last, states = run({A: resigning(RESIGN), B: resigning(RESIGN, stop)}, T0 + 6 * DAY)
    assert first(states, StallState.STALLED) is not None
    stalled = [f for f in last.findings if f.code.endswith("stalled")]
    assert [(f.code, f.server) for f in stalled] == [("secondary_stalled", B)]
    assert f"{A} kept refreshing" in stalled[0].message


def test_recovery_when_a_refresh_is_seen() -> None:
    """The signer resumes: the next check that sees fresh signatures is ok again."""
    stop, resume = T0 + 3 * DAY, T0 + 6 * DAY

    def signer(t: int) -> int:
        return resigning(RESIGN, stop)(t) if t < resume else resigning(RESIGN)(t)

    _, last, states = run({A: signer}, T0 + 7 * DAY)
    fired = first(states, StallState.STALLED)
    assert fired is not None and fired < resume
    after = [s for t, s in states if t >= resume]
    assert after[0] is StallState.OK and StallState.STALLED not in after
    assert last.signer is not None and last.signer.severity is Severity.OK


def test_unreachable_server_keeps_its_history() -> None:
    """A server that does not answer is not judged and loses nothing it had learned."""
    history, _, _ = run({A: resigning(RESIGN)}, T0 + 3 * DAY)
    now = T0 + 3 * DAY + CHECK
    silent = report(now, {A: None})
    after = record(history, silent)
    assert after.servers[A] == history.servers[A]
    assert assess_stall(after, silent).state is StallState.NO_DATA
    assert assess_stall(after, silent).severity is None


def test_history_is_bounded_and_round_trips() -> None:
    """Only the last changes are kept; a run of identical checks is one sample."""
    history, _, _ = run({A: resigning(RESIGN)}, T0 + 40 * DAY)
    samples = history.servers[A]
    assert len(samples) == 32
    assert all(s.last_seen - s.first_seen == RESIGN - CHECK for s in samples[:-1])
    assert History.from_dict(history.to_dict()) == history


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"format": 1},
        {"format": 1, "servers": {A: [[1, 2, 3]]}},
        {"format": 1, "servers": {A: [[1, 2, None, "x", 5]]}},
        {"format": 1, "servers": {A: [[True, 2, None, 4, 5]]}},
        {"format": 2, "servers": {}},
    ],
)
def test_bad_stored_history_is_a_state_error(data: dict[str, object]) -> None:
    """A damaged history is refused with StateError (the service learns again)."""
    with pytest.raises(StateError):
        History.from_dict(data)


@pytest.mark.parametrize(
    ("text", "floor", "amount"),
    [("10%", 1000, 100), ("25%", 1000, 250), ("6h", 10 * DAY, 6 * HOUR), ("0%", 1000, 0)],
)
def test_margin_parse(text: str, floor: int, amount: int) -> None:
    """stall_margin is a percent of the floor or a duration."""
    assert StallMargin.parse(text).amount(floor) == amount


@pytest.mark.parametrize("text", ["100%", "ten", "-5%", "5%%", "٣%"])
def test_margin_parse_refuses(text: str) -> None:
    """A bad stall_margin names itself."""
    with pytest.raises(InvalidValueError, match="stall_margin"):
        StallMargin.parse(text)
