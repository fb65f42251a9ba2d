"""Signature timelines and deadlines (DESIGN.md 2): when each signature, RRset and zone is
warned about, fails for strict validators and fails for Unbound.

Pure. Which seconds a validator accepts is the profiles' rule (watchdog.engine.profiles); this
module maps a signature's 32-bit fields to those seconds, follows overlapping signatures to the
first second none covers, and keeps the signature that sets each deadline. Verdicts built on
them are watchdog.engine.assess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchdog.engine.findings import Severity
from watchdog.engine.lints import LINTS
from watchdog.engine.observations import SignatureObservation
from watchdog.engine.profiles import (
    DEFAULT_SETTINGS,
    Profile,
    ValidatorSettings,
    Window,
    unbound_skew,
    window,
)
from watchdog.engine.timeutil import (
    format_duration,
    lifetime,
    parse_duration,
    serial_precedes,
    serial_to_posix,
)
from watchdog.errors import InvalidValueError

__all__ = [
    "DEFAULT_POLICY",
    "Deadline",
    "Deadlines",
    "SignatureTimeline",
    "WarnBefore",
    "ZonePolicy",
    "earliest",
    "first_failure",
    "severity_at",
    "signature_timeline",
]

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", re.ASCII)  # "３%" is no percent


@dataclass(frozen=True, slots=True)
class WarnBefore:
    """How long before expiration to warn: a fixed span or a percent of the lifetime."""

    seconds: int | None = None
    percent: float | None = 10.0

    @classmethod
    def parse(cls, text: str) -> WarnBefore:
        """ "10%" (of the signature's lifetime) or a duration such as "36h" or "7d"."""
        match = _PERCENT.match(text)
        if match:
            percent = float(match.group(1))
            if percent > 100:
                raise InvalidValueError(f'warn_before "{text}": a percent must be 0% to 100%')
            return cls(seconds=None, percent=percent)
        try:
            return cls(seconds=parse_duration(text), percent=None)
        except InvalidValueError:
            raise InvalidValueError(
                f'warn_before "{text}" is not a duration ("36h", "7d") or a percent ("10%")'
            ) from None

    def amount(self, lifetime_seconds: int) -> int:
        """Seconds before expiration at which the warning starts, for this lifetime."""
        if self.seconds is not None:
            return self.seconds
        return int(lifetime_seconds * (self.percent or 0.0) / 100)

    def __str__(self) -> str:
        if self.seconds is not None:
            return format_duration(self.seconds)
        return f"{self.percent:g}%"


@dataclass(frozen=True, slots=True)
class ZonePolicy:
    """The per-zone knobs the engine needs."""

    settings: ValidatorSettings = DEFAULT_SETTINGS
    warn_before: WarnBefore = WarnBefore()
    ignore: frozenset[str] = frozenset()  # lint codes (engine/lints.py LINTS) not to report

    def __post_init__(self) -> None:
        unknown = sorted(self.ignore - set(LINTS))
        if unknown:
            raise InvalidValueError(
                f"ignore: {', '.join(unknown)} is not a lint code; lints: {', '.join(LINTS)}"
            )


DEFAULT_POLICY = ZonePolicy()


@dataclass(frozen=True, slots=True)
class SignatureTimeline:
    """Every moment that matters for one signature, in 64-bit POSIX seconds."""

    inception: int
    expiration: int
    lifetime: int
    unbound_skew: int
    warning_at: int  # E - warn_before
    strict_fail_at: int  # E + 1: first second strict validators reject
    skew_exhausted_at: int  # E + skew + 1: first second even Unbound rejects
    inverted: bool  # inception serially after expiration: bogus whatever the clock says
    settings: ValidatorSettings

    def window(self, profile: Profile) -> Window:
        return window(profile, self.inception, self.expiration, self.settings)

    def not_yet_valid(self, now: int) -> bool:
        """Strict validators reject it because its inception is still ahead."""
        return now < self.inception

    def severity(self, now: int) -> Severity:
        if self.inverted:
            return Severity.BOGUS
        return severity_at(
            now, self.warning_at, [self.window(Profile.STRICT)], [self.window(Profile.UNBOUND)]
        )


def signature_timeline(
    inception: int, expiration: int, now: int, policy: ZonePolicy = DEFAULT_POLICY
) -> SignatureTimeline:
    """The timeline of a signature from its raw 32-bit inception and expiration fields."""
    inverted = serial_precedes(expiration, inception)
    life = lifetime(inception, expiration)
    start = serial_to_posix(inception, now)
    # Map the expiration relative to the inception so a signature straddling the 2106 wrap keeps
    # its true lifetime (RFC 1982: E is "after" I by L seconds).
    end = start + life if not inverted else serial_to_posix(expiration, now)
    settings = policy.settings
    # The first rejected seconds are the profiles' rule (engine.profiles.window), not redone here.
    return SignatureTimeline(
        inception=start,
        expiration=end,
        lifetime=life,
        unbound_skew=unbound_skew(life, settings.skew_min, settings.skew_max),
        warning_at=end - policy.warn_before.amount(life),
        strict_fail_at=window(Profile.STRICT, start, end, settings).first_rejected_after,
        skew_exhausted_at=window(Profile.UNBOUND, start, end, settings).first_rejected_after,
        inverted=inverted,
        settings=policy.settings,
    )


def _covered_until(windows: Sequence[Window], now: int) -> int | None:
    """The first second at or after ``now`` no window covers, following overlapping windows.

    None when ``now`` itself is not covered.
    """
    t = now
    while True:
        covering = [w for w in windows if w.accepts(t)]
        if not covering:
            return None if t == now else t
        t = max(w.accepted_until for w in covering) + 1


def first_failure(windows: Sequence[Window], now: int) -> int:
    """When a set of windows stops validating: the first uncovered second from now on, or, if
    already failing, the latest end among them (the moment it failed, or will fail again)."""
    until = _covered_until(windows, now)
    if until is not None:
        return until
    return max(w.first_rejected_after for w in windows)


def severity_at(
    now: int, warning_at: int, strict: Sequence[Window], unbound: Sequence[Window]
) -> Severity:
    """Where ``now`` stands on the expiry ladder, given the windows of the usable signatures."""
    if not any(w.accepts(now) for w in unbound):
        return Severity.SKEW_EXHAUSTED
    if not any(w.accepts(now) for w in strict):
        return Severity.STRICT_FAIL
    if now >= warning_at:
        return Severity.WARNING
    return Severity.OK


@dataclass(frozen=True, slots=True)
class Deadline:
    """A moment and the signature that sets it: which server, which RRset, which key."""

    at: int
    server: str
    owner: str
    rtype: str
    signature: SignatureObservation
    timeline: SignatureTimeline


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The three thresholds of DESIGN.md 2, for an RRset or a whole zone."""

    warning: Deadline
    strict_fail: Deadline
    skew_exhausted: Deadline

    @property
    def warning_at(self) -> int:
        return self.warning.at

    @property
    def strict_fail_at(self) -> int:
        return self.strict_fail.at

    @property
    def skew_exhausted_at(self) -> int:
        return self.skew_exhausted.at

    @property
    def unbound_skew(self) -> int:
        """Unbound's skew for the signature that sets the zone's skew-exhausted moment."""
        return self.skew_exhausted.timeline.unbound_skew

    def next_crossing(self, now: int) -> int | None:
        """The next threshold after ``now``, for the scheduler; None when all are past."""
        future = [
            t for t in (self.warning_at, self.strict_fail_at, self.skew_exhausted_at) if t > now
        ]
        return min(future) if future else None


def earliest(verdicts: Iterable[Deadlines | None]) -> Deadlines | None:
    """Zone (or server) deadlines: each threshold is the earliest over its RRsets."""
    present = [d for d in verdicts if d is not None]
    if not present:
        return None
    return Deadlines(
        warning=min((d.warning for d in present), key=lambda x: x.at),
        strict_fail=min((d.strict_fail for d in present), key=lambda x: x.at),
        skew_exhausted=min((d.skew_exhausted for d in present), key=lambda x: x.at),
    )
