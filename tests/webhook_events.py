"""The webhook events of a zone running out of signatures, as a receiver checks them.

Shared by the end-to-end tests of the real service (tests/e2e/test_service_e2e.py,
tests/service/test_service_restart.py): the wire names of the generic webhook, the four transitions
of the expiry condition, the seconds the engine predicts for them, the HMAC check by the
documented recipe, and the report file those tests write (tests/.e2e-report.txt).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import SignedZone
from receivers import RecordedRequest

from watchdog.config.parse import load_config
from watchdog.engine.assess import signature_timeline

__all__ = [
    "EVENT_HEADER",
    "EXPIRY_SETTINGS",
    "LIFECYCLE",
    "SIGNATURE_HEADER",
    "Predicted",
    "Transition",
    "expiry_defaults",
    "hmac_valid",
    "json_body",
    "predict",
    "write_report",
]

# The wire names of the generic webhook (watchdog/payloads.py), spelled out: a rename is a
# breaking change for every receiver, and these tests should notice it.
EVENT_HEADER = "x-dnssec-watchdog-event"
SIGNATURE_HEADER = "x-dnssec-watchdog-signature"
REPORT = Path(__file__).with_name(".e2e-report.txt")
_U32 = 1 << 32
# [watchdog] keys of these tests' configs (with service_harness.write_config's settings=).
EXPIRY_SETTINGS: Mapping[str, str | int] = {
    "log_format": "json",
    "log_level": "info",
    "delivery_timeout": "5s",
}


def expiry_defaults(warn_before: int, skew_max: int) -> dict[str, str | int]:
    """A [defaults] table under which a zone signed for seconds crosses every state within
    seconds: warning ``warn_before`` s before expiry, Unbound's skew at most ``skew_max`` s."""
    return {
        "warn_before": f"{warn_before}s",
        "skew_min": 0,
        "skew_max": skew_max,
        "renotify": "24h",
    }


@dataclass(frozen=True)
class Transition:
    """One expected event of the expiry condition: (kind, old -> new)."""

    kind: str
    old: str
    new: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Transition:
        return cls(body["kind"], body["old_severity"], body["new_severity"])

    def __str__(self) -> str:
        return f"{self.kind} {self.old} -> {self.new}"


LIFECYCLE = (
    Transition("raised", "ok", "warning"),
    Transition("raised", "warning", "strict_fail"),
    Transition("raised", "strict_fail", "skew_exhausted"),
    Transition("recovered", "skew_exhausted", "ok"),
)


@dataclass(frozen=True)
class Predicted:
    """The first second of each state, as the engine computes it for the signed zone."""

    warning: int
    strict_fail: int
    skew_exhausted: int
    unbound_skew: int


def predict(zone: SignedZone, config: Path, env: Mapping[str, str]) -> Predicted:
    """The engine's timeline of the zone's signatures under the policy the service loads."""
    policy = load_config(config, env).zones[0].policy
    t = signature_timeline(zone.inception % _U32, zone.expiration % _U32, zone.inception, policy)
    return Predicted(t.warning_at, t.strict_fail_at, t.skew_exhausted_at, t.unbound_skew)


def json_body(request: RecordedRequest) -> dict[str, Any]:
    """The request's body, which must be a JSON object."""
    body = json.loads(request.body)
    assert isinstance(body, dict)
    return body


def hmac_valid(request: RecordedRequest, secret: str) -> tuple[bool, int | None]:
    """(signature matches, signed timestamp) by the documented recipe: the header is
    ``t=<unix>,v1=<hex>`` with v1 = HMAC-SHA256(secret, f"{t}." + body), computed here with
    hmac/hashlib alone, not with the watchdog's own helper."""
    fields = dict(
        part.split("=", 1) for part in request.headers.get(SIGNATURE_HEADER, "").split(",") if part
    )
    if "t" not in fields or "v1" not in fields or not fields["t"].isdigit():
        return False, None
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]), int(fields["t"])


def write_report(section: str, lines: Sequence[str]) -> None:
    """Replace this section of tests/.e2e-report.txt (other modules keep theirs) and print it."""
    text = "\n".join(lines)
    print(f"\n== {section} ==\n{text}")
    sections: dict[str, str] = {}
    if REPORT.exists():
        name = None
        for line in REPORT.read_text().splitlines():
            if line.startswith("== ") and line.endswith(" =="):
                name = line[3:-3]
                sections[name] = ""
            elif name is not None:
                sections[name] += line + "\n"
    sections[section] = text + "\n"
    REPORT.write_text("".join(f"== {k} ==\n{v}\n" for k, v in sorted(sections.items())))
