"""Severities and findings: the vocabulary every report, alert and exit code is made of."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.engine.codes import Code

__all__ = ["Finding", "Severity", "worst"]


class Severity(StrEnum):
    """How bad a signature, RRset, server or zone is at a given moment.

    The expiry ladder OK < WARNING < STRICT_FAIL < SKEW_EXHAUSTED is the order of DESIGN.md 2.
    The others are separate conditions; ``rank`` places them in one order for "the worst of":
    what nobody can validate (BOGUS) ranks highest, what we could not observe (UNREACHABLE,
    UNKNOWN) ranks below what we know is failing, so a Nagios CRITICAL is never hidden by an
    UNKNOWN.
    """

    OK = "ok"
    WARNING = "warning"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"
    STRICT_FAIL = "strict_fail"
    SKEW_EXHAUSTED = "skew_exhausted"
    BOGUS = "bogus"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def nagios_code(self) -> int:
        """Nagios plugin API: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return _NAGIOS[self]


_RANK = {s: i for i, s in enumerate(Severity)}
_NAGIOS = {
    Severity.OK: 0,
    Severity.WARNING: 1,
    Severity.UNKNOWN: 3,
    Severity.UNREACHABLE: 3,
    Severity.STRICT_FAIL: 2,
    Severity.SKEW_EXHAUSTED: 2,
    Severity.BOGUS: 2,
}


def worst(severities: Iterable[Severity]) -> Severity:
    """The highest-ranked severity of an iterable of them; OK for none."""
    result = Severity.OK
    for s in severities:
        if s.rank > result.rank:
            result = s
    return result


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing worth telling the operator, with where it was seen.

    ``code`` is stable and machine-readable (watchdog.engine.codes lists every one);
    ``message`` is one line for humans. ``server`` is an address like ``192.0.2.1:53`` or
    ``[2001:db8::1]:53``; ``owner``/``rtype`` name the RRset when there is one.
    """

    code: Code
    severity: Severity
    message: str
    server: str | None = None
    owner: str | None = None
    rtype: str | None = None
