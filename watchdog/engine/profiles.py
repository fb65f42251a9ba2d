"""Validator profiles: when each class of validator accepts a signature, as data.

Each rule below was checked against the validator's source and measured against the running
validator under a faked clock (tests/engine/test_conformance.py). All times are 64-bit POSIX
seconds, already mapped from the 32-bit RRSIG fields (timeutil.serial_to_posix).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from watchdog.engine.findings import Severity
from watchdog.errors import InvalidValueError

__all__ = [
    "DEFAULT_SETTINGS",
    "Profile",
    "ValidatorSettings",
    "Window",
    "expiry_for",
    "fails_before_strict",
    "nagios_strict_critical",
    "parse_profile",
    "unbound_skew",
    "window",
]


class Profile(StrEnum):
    """A class of validators that share one acceptance rule."""

    # BIND 9, Knot Resolver, Google Public DNS: RFC 4035 5.3.1, accepted while I <= now <= E.
    STRICT = "strict"
    # PowerDNS Recursor >= 4.2: pdns/validate.cc isRRSIGNotExpired/isRRSIGIncepted, with
    # signature-inception-skew (default 60 s) on the inception side only.
    POWERDNS = "powerdns"
    # Unbound: validator/val_sigcrypt.c check_dates, skew on both sides.
    UNBOUND = "unbound"
    # knotd / kzonecheck zone validation: a signature counts as expired at E itself, one second
    # stricter than RFC 4035 (DESIGN.md 1). Authoritative-side checks, not a resolver.
    KNOT_DNS = "knot-dns"


@dataclass(frozen=True, slots=True)
class ValidatorSettings:
    """Per-zone settings of the validators whose rules have knobs."""

    skew_min: int = 3600  # unbound val-sig-skew-min
    skew_max: int = 86400  # unbound val-sig-skew-max
    powerdns_inception_skew: int = 60  # pdns-recursor signature-inception-skew

    def __post_init__(self) -> None:
        for name in ("skew_min", "skew_max", "powerdns_inception_skew"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValueError(f"{name} must be a whole number of seconds, not {value!r}")
            if value < 0:
                raise InvalidValueError(f"{name} must not be negative, got {value}")


DEFAULT_SETTINGS = ValidatorSettings()


@dataclass(frozen=True, slots=True)
class Window:
    """The closed interval of seconds [accepted_from, accepted_until] a validator accepts."""

    accepted_from: int
    accepted_until: int

    @property
    def last_rejected_before(self) -> int:
        """The last second on the inception side that is still rejected."""
        return self.accepted_from - 1

    @property
    def first_rejected_after(self) -> int:
        """The first second on the expiration side that is rejected."""
        return self.accepted_until + 1

    def accepts(self, now: int) -> bool:
        return self.accepted_from <= now <= self.accepted_until


def parse_profile(name: str) -> Profile:
    """The profile called ``name`` (case-insensitive), or an error listing the known ones."""
    try:
        return Profile(name.strip().lower())
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise InvalidValueError(f'unknown validator profile "{name}"; known: {known}') from None


def unbound_skew(lifetime: int, skew_min: int, skew_max: int) -> int:
    """Unbound's tolerance for a signature of ``lifetime`` seconds.

    validator/val_sigcrypt.c check_dates: skew = (expi - incep) / 10 with unsigned integer
    division, then "if(skew < min) skew = min; if(skew > max) skew = max;" in that order, so
    skew_max wins when skew_min > skew_max.
    """
    skew = lifetime // 10
    if skew < skew_min:
        skew = skew_min
    if skew > skew_max:
        skew = skew_max
    return skew


def window(
    profile: Profile,
    inception: int,
    expiration: int,
    settings: ValidatorSettings = DEFAULT_SETTINGS,
) -> Window:
    """The seconds during which ``profile`` accepts a signature with these mapped times."""
    if profile is Profile.STRICT:
        return Window(inception, expiration)
    if profile is Profile.POWERDNS:
        return Window(inception - settings.powerdns_inception_skew, expiration)
    if profile is Profile.UNBOUND:
        skew = unbound_skew(expiration - inception, settings.skew_min, settings.skew_max)
        return Window(inception - skew, expiration + skew)
    return Window(inception, expiration - 1)


# Seconds before the strict-fail second (the first second RFC 4035 5.3.1 rejects) at which
# validators of a profile already fail: knotd counts a signature as expired at E itself, one
# second early (DESIGN.md 1). None: they fail only later, at their own deadline (Unbound's skew:
# the engine's skew_exhausted_at). PowerDNS fails at the strict second; its 60 s differ on the
# inception side only, below what a check every few minutes can tell.
_FAILS_BEFORE_STRICT: dict[Profile, int | None] = {
    Profile.STRICT: 0,
    Profile.POWERDNS: 0,
    Profile.KNOT_DNS: 1,
    Profile.UNBOUND: None,
}


def fails_before_strict(profile: Profile) -> int | None:
    """How many seconds before the strict-fail second validators of ``profile`` fail; None
    when they fail only after it (Unbound: at skew_exhausted_at)."""
    return _FAILS_BEFORE_STRICT[profile]


def expiry_for(
    profile: Profile, expiry: Severity, now: int, strict_fail_at: int | None
) -> Severity:
    """The OK..SKEW_EXHAUSTED ladder (the engine's, for strict validators) as validators of
    ``profile`` see it at ``now``; ``strict_fail_at`` is the zone's strict-fail second."""
    early = fails_before_strict(profile)
    if early is None and expiry is Severity.STRICT_FAIL:
        # The engine calls it SKEW_EXHAUSTED as soon as Unbound's own window is left, so a
        # strict failure is a moment Unbound still validates through (val_sigcrypt.c check_dates).
        return Severity.WARNING
    if (
        early
        and strict_fail_at is not None
        and expiry in (Severity.OK, Severity.WARNING)
        and now >= strict_fail_at - early
    ):
        return Severity.STRICT_FAIL
    return expiry


def nagios_strict_critical(profile: Profile) -> str:
    """The Nagios critical range of the seconds left before the strict-fail second: CRITICAL
    once none is left before the profile's first failing second ("N:" alerts below N); empty
    for a profile that does not fail there (Unbound)."""
    early = fails_before_strict(profile)
    return "" if early is None else f"{early + 1}:"
