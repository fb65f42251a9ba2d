"""HMAC-SHA256 signatures of webhook bodies, for senders and receivers.

The scheme of Stripe's ``Stripe-Signature``: the header ``t=<unix>,v1=<hex>`` where ``v1`` is
HMAC-SHA256, keyed with the shared secret, over ``f"{t}.{body}"``. Signing the timestamp with
the body lets a receiver refuse old requests, so a captured request cannot be replayed later
(GitHub's scheme signs the body alone and cannot). The notifier signs just before each attempt.
"""

from __future__ import annotations

import hashlib
import hmac

from watchdog.engine.digits import is_ascii_digits
from watchdog.errors import InvalidValueError

__all__ = ["SIGNATURE_HEADER", "sign", "signature_headers", "verify_signature"]

SIGNATURE_HEADER = "X-DNSSEC-Watchdog-Signature"


def _mac(body: bytes, secret: bytes, timestamp: int) -> str:
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: bytes, timestamp: int) -> str:
    """The signature header value ``t=<timestamp>,v1=<hex HMAC-SHA256 of f"{t}.{body}">``."""
    if not secret:
        raise InvalidValueError("the webhook secret is empty; set a non-empty secret or none")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise InvalidValueError(f"signature timestamp must be Unix seconds, not {timestamp!r}")
    return f"t={timestamp},v1={_mac(body, secret, timestamp)}"


def signature_headers(body: bytes, secret: bytes, timestamp: int) -> dict[str, str]:
    """The headers that sign ``body`` at send time ``timestamp``."""
    return {SIGNATURE_HEADER: sign(body, secret, timestamp)}


def verify_signature(
    header: str, body: bytes, secret: bytes, now: int, tolerance: int = 300
) -> bool:
    """The receiver's check: a ``v1`` matches and ``t`` is within ``tolerance`` s of ``now``.

    Several ``v1`` values are accepted (a sender rotating secrets may sign with both); unknown
    schemes are ignored; anything malformed is simply False, never an exception.
    """
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not is_ascii_digits(value):
                return False
            if len(value) > 20:
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.encode("utf-8", "replace"))
    if timestamp is None or not candidates or not secret or abs(now - timestamp) > tolerance:
        return False
    expected = _mac(body, secret, timestamp).encode("ascii")
    return any(hmac.compare_digest(expected, c) for c in candidates)
