"""Validator profiles: when each class of validator accepts a signature, as data.

Each rule below was checked against the validator's source and measured against the running
validator under a faked clock (tests/engine/test_conformance.py). All times are 64-bit POSIX
seconds, already mapped from the 32-bit RRSIG fields (timeutil.serial_to_posix).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from watchdog.errors import InvalidValueError

__all__ = [
    "DEFAULT_SETTINGS",
    "Profile",
    "ValidatorSettings",
    "Window",
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
