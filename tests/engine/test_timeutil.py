"""RFC 1982 time mapping, durations and their display."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.engine.timeutil import (
    format_duration,
    format_relative,
    lifetime,
    parse_duration,
    rfc3339,
    serial_precedes,
    serial_to_posix,
)
from watchdog.errors import InvalidValueError

WRAP = 2**32  # 2106-02-07T06:28:16Z
NOW = 1_795_000_000  # 2026-11-18


@pytest.mark.parametrize(
    ("field", "now", "expected"),
    [
        (NOW, NOW, NOW),
        (NOW + 100, NOW, NOW + 100),
        (NOW - 100, NOW, NOW - 100),
        # Just before the wrap, a small field lies in the next 2^32 era.
        (5, WRAP - 10, WRAP + 5),
        # Just after the wrap, a large field lies in the previous era.
        (WRAP - 5, WRAP + 10, WRAP - 5),
        # Farther than 2^31 s in the future maps to the past, per RFC 1982.
        ((NOW + 2**31 + 1) % WRAP, NOW, NOW + 2**31 + 1 - WRAP),
    ],
)
def test_serial_to_posix_maps_to_nearest_time(field: int, now: int, expected: int) -> None:
    """A 32-bit RRSIG field maps to the 64-bit time within 2^31 s of now."""
    assert serial_to_posix(field, now) == expected


@given(st.integers(0, WRAP - 1), st.integers(0, 2**40))
def test_serial_to_posix_is_congruent_and_near(field: int, now: int) -> None:
    """The mapped time keeps the field modulo 2^32 and lies in [now - 2^31, now + 2^31)."""
    mapped = serial_to_posix(field, now)
    assert mapped % WRAP == field
    assert now - 2**31 <= mapped < now + 2**31


def test_serial_to_posix_rejects_out_of_range_field() -> None:
    """A field that is not an unsigned 32-bit number is refused, naming it."""
    with pytest.raises(InvalidValueError, match="4294967296"):
        serial_to_posix(WRAP, NOW)


@pytest.mark.parametrize(
    ("inception", "expiration", "expected"),
    [(1000, 2000, 1000), (1000, 1000, 0), (WRAP - 100, 50, 150)],
)
def test_lifetime_is_modular(inception: int, expiration: int, expected: int) -> None:
    """Lifetime is (E - I) mod 2^32, also across the 2106 wrap."""
    assert lifetime(inception, expiration) == expected


@pytest.mark.parametrize(
    ("a", "b", "before"),
    [(1, 2, True), (2, 1, False), (5, 5, False), (WRAP - 1, 0, True), (0, WRAP - 1, False)],
)
def test_serial_precedes(a: int, b: int, before: bool) -> None:
    """Serial order follows RFC 1982, wrapping at 2^32."""
    assert serial_precedes(a, b) is before


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600s", 3600),
        ("90m", 5400),
        ("36h", 129600),
        ("7d", 604800),
        ("2w", 1209600),
        ("1d12h", 129600),
        ("1d 12h", 129600),
        ("45", 45),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    """Durations take s/m/h/d/w units, combined, or bare seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5h", "10d%", "abc", "5 hours", "1.5h", "h"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    """Anything else is an error that quotes the text."""
    with pytest.raises(InvalidValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (3600, "1h"),
        (3661, "1h 1m 1s"),
        (86400 + 3 * 3600 + 12 * 60 + 5, "1d 3h 12m"),
        (7 * 86400, "7d"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    """Spans render compactly; seconds are dropped once a span reaches a day."""
    assert format_duration(seconds) == text


def test_format_relative() -> None:
    """Relative times read "in ...", "... ago" or "now"."""
    assert format_relative(NOW + 90, NOW) == "in 1m 30s"
    assert format_relative(NOW - 7200, NOW) == "2h ago"
    assert format_relative(NOW, NOW) == "now"


def test_rfc3339() -> None:
    """Timestamps render as UTC RFC 3339 with second precision, also past the 2106 wrap."""
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(WRAP) == "2106-02-07T06:28:16Z"
