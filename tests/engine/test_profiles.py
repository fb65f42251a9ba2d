"""Validator profiles: each validator's acceptance window (DESIGN.md 1)."""

from __future__ import annotations

import pytest

from watchdog.engine.findings import Severity
from watchdog.engine.profiles import (
    Profile,
    ValidatorSettings,
    expiry_for,
    nagios_strict_critical,
    parse_profile,
    unbound_skew,
    window,
)
from watchdog.errors import InvalidValueError

HOUR, DAY = 3600, 86400


@pytest.mark.parametrize(
    ("lifetime", "skew_min", "skew_max", "skew"),
    [
        (10 * HOUR, 3600, 86400, 3600),  # exactly 10 h: L/10 = 3600 = min
        (2 * HOUR, 3600, 86400, 3600),  # raised to min
        (2 * HOUR, 0, 86400, 720),  # min 0 leaves L/10
        (7 * DAY, 3600, 86400, 60480),
        (10 * DAY, 3600, 86400, 86400),  # exactly 10 d: L/10 = max
        (30 * DAY, 3600, 86400, 86400),  # lowered to max
        (30 * DAY, 3600, 600, 600),  # custom max
        (100001, 3600, 86400, 10000),  # integer division rounds down
        (7 * DAY, 100000, 5000, 5000),  # min > max: max wins (applied last)
        (7 * DAY, 0, 0, 0),
        (0, 3600, 86400, 3600),  # I == E
    ],
)
def test_unbound_skew(lifetime: int, skew_min: int, skew_max: int, skew: int) -> None:
    """Unbound's skew is floor(L/10), raised to min, then lowered to max."""
    assert unbound_skew(lifetime, skew_min, skew_max) == skew


I, E = 1_800_000_000, 1_800_000_000 + 7 * DAY


@pytest.mark.parametrize(
    ("profile", "accepted_from", "accepted_until"),
    [
        (Profile.STRICT, I, E),
        (Profile.POWERDNS, I - 60, E),
        (Profile.UNBOUND, I - 60480, E + 60480),
        (Profile.KNOT_DNS, I, E - 1),
    ],
)
def test_window_per_profile(profile: Profile, accepted_from: int, accepted_until: int) -> None:
    """Each profile's accepted seconds, for a 7-day signature with default settings."""
    w = window(profile, I, E)
    assert (w.accepted_from, w.accepted_until) == (accepted_from, accepted_until)
    assert w.last_rejected_before == accepted_from - 1
    assert w.first_rejected_after == accepted_until + 1
    assert w.accepts(accepted_from) and w.accepts(accepted_until)
    assert not w.accepts(accepted_from - 1) and not w.accepts(accepted_until + 1)


def test_window_uses_settings() -> None:
    """PowerDNS inception skew and Unbound's min/max come from the zone's settings."""
    settings = ValidatorSettings(skew_min=0, skew_max=600, powerdns_inception_skew=120)
    assert window(Profile.POWERDNS, I, E, settings).accepted_from == I - 120
    assert window(Profile.UNBOUND, I, E, settings).accepted_until == E + 600


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("strict", Profile.STRICT),
        ("Unbound", Profile.UNBOUND),
        (" knot-dns ", Profile.KNOT_DNS),
        ("POWERDNS", Profile.POWERDNS),
    ],
)
def test_parse_profile(name: str, profile: Profile) -> None:
    """Profiles are found by name, case-insensitively."""
    assert parse_profile(name) is profile


def test_parse_profile_unknown_names_it_and_lists_known() -> None:
    """An unknown profile name is an error naming it and the known ones."""
    with pytest.raises(InvalidValueError, match=r'"bind".*strict, powerdns, unbound, knot-dns'):
        parse_profile("bind")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skew_min": 1.5}, "skew_min must be a whole number of seconds, not 1.5"),
        ({"skew_max": "600"}, "skew_max must be a whole number of seconds, not '600'"),
        ({"skew_min": True}, "skew_min must be a whole number of seconds, not True"),
        ({"skew_max": -1}, "skew_max must not be negative, got -1"),
        ({"powerdns_inception_skew": -60}, "powerdns_inception_skew must not be negative"),
    ],
)
def test_settings_reject_bad_values(kwargs: dict[str, object], message: str) -> None:
    """Skew settings must be non-negative whole seconds; the error names the value."""
    with pytest.raises(InvalidValueError, match=message):
        ValidatorSettings(**kwargs)  # type: ignore[arg-type]


STRICT_AT = 1_800_000_000  # a zone's strict-fail second (RFC 4035 5.3.1: the first rejected)
OK, W, SF, SE = Severity.OK, Severity.WARNING, Severity.STRICT_FAIL, Severity.SKEW_EXHAUSTED


@pytest.mark.parametrize(
    ("profile", "expiry", "now", "seen"),
    [
        (Profile.STRICT, W, STRICT_AT - 1, W),
        (Profile.STRICT, SF, STRICT_AT, SF),
        (Profile.POWERDNS, W, STRICT_AT - 1, W),  # its skew is on the inception side only
        (Profile.POWERDNS, SF, STRICT_AT, SF),
        (Profile.KNOT_DNS, W, STRICT_AT - 2, W),
        (Profile.KNOT_DNS, W, STRICT_AT - 1, SF),  # knotd: expired at E itself, a second early
        (Profile.KNOT_DNS, OK, STRICT_AT - 1, SF),
        (Profile.KNOT_DNS, SE, STRICT_AT + DAY, SE),
        (Profile.UNBOUND, SF, STRICT_AT, W),  # still inside Unbound's skew
        (Profile.UNBOUND, SE, STRICT_AT + DAY, SE),
        (Profile.UNBOUND, W, STRICT_AT - 1, W),
    ],
)
def test_expiry_as_each_profile_sees_it(
    profile: Profile, expiry: Severity, now: int, seen: Severity
) -> None:
    """The engine's strict ladder, moved to the second each validator class fails at."""
    assert expiry_for(profile, expiry, now, STRICT_AT) is seen


def test_no_deadline_leaves_the_ladder_alone() -> None:
    """Without a strict-fail second (nothing verifies) no profile moves the ladder."""
    assert all(expiry_for(p, W, STRICT_AT, None) is W for p in Profile if p is not Profile.UNBOUND)


@pytest.mark.parametrize("profile", list(Profile))
def test_nagios_critical_range_starts_where_the_profile_fails(profile: Profile) -> None:
    """The strict_fail perfdata turns CRITICAL ("N:": below N seconds left) at the very second
    the profile's ladder turns STRICT_FAIL, and not a second earlier."""
    critical = nagios_strict_critical(profile)
    if profile is Profile.UNBOUND:
        assert critical == ""  # Unbound fails at its own deadline (the skew_exhausted perfdata)
        return
    first = STRICT_AT - (int(critical.removesuffix(":")) - 1)  # left = N - 1: first CRITICAL

    def seen(now: int) -> Severity:  # the engine's strict ladder, then the profile's view
        return expiry_for(profile, SF if now >= STRICT_AT else W, now, STRICT_AT)

    assert (seen(first - 1), seen(first)) == (W, SF)
