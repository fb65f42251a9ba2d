"""Decimal numbers written by others (headers, environment, config, arguments): ASCII only.

``str.isdigit()`` is true for "³", "٣" and "３", and ``int()`` takes some of them ("٣" is 3) and
raises on others ("³"): a check with one and a parse with the other let a stray byte through
as a number or as an exception nobody expected (issue 17: a receiver's ``Retry-After: \\xb3``
stopped every webhook). Regular expressions have the same trap: ``\\d`` matches every Unicode
digit unless compiled with ``re.ASCII``. Every parse of outside text goes through here.
"""

from __future__ import annotations

import re

from watchdog.errors import InvalidValueError

__all__ = ["DIGITS", "ascii_int", "is_ascii_digits"]

DIGITS = r"[0-9]"
"""The digit class for regular expressions over outside text (``\\d`` is Unicode-wide)."""

# Longer than any number these parsers take, and short of int()'s 4300-digit limit
# (sys.get_int_max_str_digits), so the conversion itself can never raise.
_MAX_DIGITS = 64
_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of the ASCII digits 0-9 only (no sign, space or other digit)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def ascii_int(
    text: str, what: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``text`` (surrounding spaces allowed) as a non-negative integer within the bounds.

    Raises InvalidValueError naming ``what`` and the value for anything else.
    """
    value = text.strip()
    if not is_ascii_digits(value) or len(value) > _MAX_DIGITS:
        raise InvalidValueError(f"{what}: {text!r:.80} is not a number (ASCII digits 0-9)")
    number = int(value)
    if minimum is not None and number < minimum:
        raise InvalidValueError(f"{what}: {number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise InvalidValueError(f"{what}: {number} is above the maximum {maximum}")
    return number
