"""Time arithmetic of the engine: RFC 1982 serial numbers, durations, and their display.

Pure functions only: "now" is always an argument, never read from the clock here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from watchdog.engine.digits import ascii_int, is_ascii_digits
from watchdog.errors import InvalidValueError

__all__ = [
    "SERIAL_MODULUS",
    "format_duration",
    "format_relative",
    "lifetime",
    "parse_duration",
    "rfc3339",
    "serial_precedes",
    "serial_to_posix",
]

# RRSIG inception and expiration are unsigned 32-bit seconds since 1970, compared with serial
# number arithmetic (RFC 4034 3.1.5, RFC 1982 with SERIAL_BITS = 32). They wrap on
# 2106-02-07 06:28:16 UTC.
SERIAL_MODULUS = 1 << 32
_HALF = 1 << 31

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# re.ASCII: \d and \s are Unicode-wide otherwise ("３h" would be three hours).
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE | re.ASCII)
_DURATION_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$", re.IGNORECASE | re.ASCII)


def serial_to_posix(field: int, now: int) -> int:
    """Map a 32-bit RRSIG time field to the 64-bit POSIX time nearest ``now``.

    The result r satisfies r mod 2^32 == field and now - 2^31 <= r < now + 2^31, which is the
    interpretation RFC 4034 3.1.5 asks for ("within 68 years of the current time").
    """
    if not 0 <= field < SERIAL_MODULUS:
        raise InvalidValueError(f"RRSIG time field {field} is not an unsigned 32-bit value")
    offset = (field - now) % SERIAL_MODULUS
    if offset >= _HALF:
        offset -= SERIAL_MODULUS
    return now + offset


def serial_precedes(a: int, b: int) -> bool:
    """True when 32-bit serial ``a`` is strictly before ``b`` (RFC 1982 3.2)."""
    diff = (b - a) % SERIAL_MODULUS
    return 0 < diff < _HALF


def lifetime(inception: int, expiration: int) -> int:
    """Signature lifetime L = (E - I) mod 2^32 in seconds, from the 32-bit fields."""
    return (expiration - inception) % SERIAL_MODULUS


def parse_duration(text: str) -> int:
    """Parse "90m", "36h", "7d", "3600s", "1d12h" or a bare number of seconds into seconds."""
    value = text.strip()
    if is_ascii_digits(value):
        return ascii_int(value, "duration")
    if not _DURATION_WHOLE.match(value):
        raise InvalidValueError(
            f'"{text}" is not a duration: use a number with a unit, like "90m", "36h", "7d" or '
            '"3600s"'
        )
    return sum(
        ascii_int(n, f'duration "{text}"') * _UNITS[u.lower()]
        for n, u in _DURATION_PART.findall(value)
    )


def format_duration(seconds: int) -> str:
    """Render a non-negative span the way operators read it: "1d 3h 12m", "45s", "0s".

    Spans of a day or more drop seconds; shorter spans keep them, since the second matters there.
    """
    if seconds < 0:
        raise InvalidValueError(f"cannot format a negative duration ({seconds} s)")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    if days == 0:
        parts.append((secs, "s"))
    text = " ".join(f"{n}{u}" for n, u in parts if n)
    return text or "0s"


def format_relative(at: int, now: int) -> str:
    """ "in 1d 3h 12m", "2h 5m ago" or "now" for a moment relative to ``now``."""
    if at == now:
        return "now"
    if at > now:
        return f"in {format_duration(at - now)}"
    return f"{format_duration(now - at)} ago"


def rfc3339(timestamp: int) -> str:
    """UTC RFC 3339 with second precision and a Z suffix: 2026-12-01T14:23:07Z."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
