"""ASCII digits only: every parser of outside numbers refuses Unicode digits and garbage cleanly.

``"³".isdigit()`` is true and ``int("³")`` raises; ``int("٣")`` is 3. Each parser below reads
text from outside (an HTTP header, the environment, the config, the command line) and must
answer with a value from ASCII digits, a safe default, or its documented error: never another
exception, never a number read from other digits (issue 17).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.alerting.retry import parse_retry_after
from watchdog.alerting.signing import verify_signature
from watchdog.cli import _positive_float, _seconds, parse_at
from watchdog.config.parse import parse_config
from watchdog.config.targets import parse_server
from watchdog.engine.assess import WarnBefore
from watchdog.engine.digits import ascii_int, is_ascii_digits
from watchdog.engine.timeutil import parse_duration
from watchdog.errors import ConfigError, InvalidValueError
from watchdog.service.systemd import watchdog_interval

# Digits of other scripts, superscripts, fullwidth forms: isdigit() or int() accept each.
UNICODE_DIGITS = ["³", "²", "٣", "３", "߃", "১", "𝟑", "①", "Ⅲ", "1_000", "\u0663\u0660"]
NOW = 1_800_000_000

outside_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(UNICODE_DIGITS),
    st.builds("".join, st.lists(st.sampled_from([*UNICODE_DIGITS, "1", "9", "s", "m", " ", "%"]))),
    st.text(alphabet="0123456789", min_size=60, max_size=5000),  # past int()'s digit limit
)


def _has_foreign_digit(text: str) -> bool:
    return any(c.isdigit() or c.isdecimal() or c.isnumeric() for c in text if not c.isascii())


@pytest.mark.parametrize("text", UNICODE_DIGITS)
def test_unicode_digits_are_not_ascii_digits(text: str) -> None:
    """is_ascii_digits refuses every non-ASCII digit; ascii_int names the value and the key."""
    assert not is_ascii_digits(text)
    with pytest.raises(InvalidValueError, match=r"Retry-After: .* is not a number"):
        ascii_int(text, "Retry-After")


@given(st.integers(min_value=0, max_value=10**30))
def test_ascii_numbers_round_trip(number: int) -> None:
    """Any ASCII decimal number within the length limit parses to itself."""
    assert ascii_int(f" {number} ", "n") == number


def test_bounds_are_enforced_with_a_message() -> None:
    """minimum and maximum: the message says which bound was crossed."""
    with pytest.raises(InvalidValueError, match="above the maximum 65535"):
        ascii_int("65536", "port", minimum=1, maximum=65535)
    with pytest.raises(InvalidValueError, match="below the minimum 1"):
        ascii_int("0", "port", minimum=1, maximum=65535)


@given(outside_text)
def test_retry_after_is_seconds_or_none(text: str) -> None:
    """Retry-After: a non-negative delay or None (unusable), never an exception."""
    delay = parse_retry_after(text, time.time())
    assert delay is None or delay >= 0
    if _has_foreign_digit(text) and delay is not None:
        # Only an HTTP-date may parse, and those are written in ASCII.
        assert text.strip().isascii()


@pytest.mark.parametrize("text", ["\xb3", "٣", "３", "1³"])
def test_the_reproduced_retry_after_is_unusable(text: str) -> None:
    """The header of issue 17 and its relatives: no delay, no exception."""
    assert parse_retry_after(text, time.time()) is None


@given(outside_text, outside_text)
def test_systemd_watchdog_variables(usec: str, pid: str) -> None:
    """$WATCHDOG_USEC / $WATCHDOG_PID of any text: an interval or None, never an exception."""
    interval = watchdog_interval({"WATCHDOG_USEC": usec, "WATCHDOG_PID": pid})
    assert interval is None or (interval > 0 and is_ascii_digits(usec))


def _refuses_or_parses(
    parse: Callable[[str], object], errors: tuple[type[Exception], ...], text: str
) -> object | None:
    try:
        return parse(text)
    except errors:
        return None


@given(outside_text)
def test_duration_parser(text: str) -> None:
    """parse_duration: seconds from ASCII digits, or InvalidValueError."""
    seconds = _refuses_or_parses(parse_duration, (InvalidValueError,), text)
    if seconds is not None:
        assert not _has_foreign_digit(text)


@given(outside_text)
def test_warn_before_parser(text: str) -> None:
    """warn_before ("10%" or a duration): a value from ASCII digits, or InvalidValueError."""
    parsed = _refuses_or_parses(WarnBefore.parse, (InvalidValueError,), text)
    if parsed is not None:
        assert not _has_foreign_digit(text)


@given(outside_text)
def test_server_port_parser(text: str) -> None:
    """A server's port: 1 to 65535 from ASCII digits, or InvalidValueError naming the text."""
    parsed = _refuses_or_parses(parse_server, (InvalidValueError,), f"127.0.0.1:{text}")
    if parsed is not None:
        assert not _has_foreign_digit(text)


@given(outside_text)
def test_command_line_numbers(text: str) -> None:
    """--timeout, the seconds options and --at: a value from ASCII digits, or a usage error."""
    for parse in (_seconds, _positive_float):
        if _refuses_or_parses(parse, (argparse.ArgumentTypeError,), text) is not None:
            assert not _has_foreign_digit(text)
    for offset in ("+" + text, "-" + text):
        at = _refuses_or_parses(lambda t: parse_at(t, NOW), (InvalidValueError,), offset)
        if at is not None:
            assert not _has_foreign_digit(text)


@given(outside_text)
def test_config_durations(text: str) -> None:
    """A config duration of any text: accepted from ASCII digits, else one ConfigError."""
    data = {"watchdog": {"jitter": text}, "zone": [{"name": "example.com"}]}
    try:
        parse_config(data, source="t.toml", read_file=lambda p: "", env={})
    except ConfigError as exc:
        assert [p.split(":")[0] for p in exc.problems] == ["watchdog.jitter"]
    else:
        assert not _has_foreign_digit(text)


@given(outside_text)
def test_signature_timestamp(text: str) -> None:
    """A receiver's signature header with any t=: False unless valid, never an exception."""
    assert verify_signature(f"t={text},v1=00", b"{}", b"key", NOW) is False
