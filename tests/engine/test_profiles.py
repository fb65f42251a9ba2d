"""Validator profiles: each validator's acceptance window (DESIGN.md 1)."""

from __future__ import annotations

import pytest

from watchdog.engine.profiles import Profile, ValidatorSettings, parse_profile, unbound_skew, window
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
