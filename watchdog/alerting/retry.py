"""When a webhook delivery counts as delivered, and when to try again: pure decisions.

Retry timing: exponential backoff with full jitter, uniform(0, min(cap, base * 2^(n-1))) after
the n-th failure ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015), but never sooner
than a 429/503 Retry-After (RFC 9110 10.2.3: delay-seconds or HTTP-date).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass

from watchdog.engine.digits import ascii_int, is_ascii_digits
from watchdog.errors import InvalidValueError

__all__ = ["Outcome", "RetryPolicy", "backoff_delay", "classify", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff base and cap, and the age (since enqueue) after which delivery gives up, in s."""

    base: float = 5.0
    cap: float = 600.0
    give_up_after: float = 86400.0

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap or self.give_up_after <= 0:
            raise InvalidValueError(
                f"retry policy: need 0 < base <= cap and give_up_after > 0, got base={self.base}, "
                f"cap={self.cap}, give_up_after={self.give_up_after}"
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: the HTTP status, the error if any, the receiver's Retry-After, and
    whether the failure says the receiver (not this one body) is unwell."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    receiver_unwell: bool = False


def backoff_delay(failures: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full-jitter delay after the ``failures``-th consecutive failure of an entry."""
    ceiling = min(policy.cap, policy.base * 2.0 ** min(failures - 1, 60))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if is_ascii_digits(text):  # "³".isdigit() is true too, and int("³") raises (issue 17)
        try:
            return float(ascii_int(text, "Retry-After"))
        except InvalidValueError:  # more digits than any delay means: unusable
            return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
        if moment.tzinfo is None:  # RFC 9110 5.6.7: HTTP-date is always UTC
            return None
        return max(0.0, moment.timestamp() - now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def classify(status: int, headers: Mapping[str, str], now: float) -> Outcome:
    """Judge an HTTP answer: 2xx delivered; 3xx, 408, 429 and 5xx the receiver is unwell (the
    lane waits); any other 4xx rejects this body alone."""
    if 200 <= status < 300:
        return Outcome(status)
    if 300 <= status < 400:
        # Never followed: a redirect could lead the signed body anywhere, even another host.
        return Outcome(status, f"redirect not followed (HTTP {status})", receiver_unwell=True)
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), now)
    unwell = status >= 500 or status in (408, 429)
    return Outcome(status, f"HTTP {status}", retry_after, receiver_unwell=unwell)
