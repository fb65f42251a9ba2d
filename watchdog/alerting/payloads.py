"""Webhook bodies for alert events: generic JSON (schema 1), Slack Block Kit, HMAC signatures.

Pure: the send time (for the signature) and the secret are arguments. The outbox stores the
bytes ``render`` returns; the notifier re-signs them just before each attempt with
``signature_headers`` so the signed timestamp is the time of sending, as receivers that reject
replays expect (the same scheme as Stripe's ``Stripe-Signature``: ``t=<unix>,v1=<hex>`` over
``f"{t}.{body}"``; GitHub signs the body alone and so cannot reject replays).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from watchdog.alerting.signing import SIGNATURE_HEADER, sign, signature_headers, verify_signature
from watchdog.engine.alerts import AlertEvent, EventKind, SignatureRef
from watchdog.engine.findings import Severity
from watchdog.engine.timeutil import format_duration, rfc3339
from watchdog.errors import InvalidValueError
from watchdog.render.sentences import (
    event_headline,
    server_label,
    severity_word,
    summarize,
    zone_label,
)

__all__ = [
    "EVENT_HEADER",
    "SCHEMA_VERSION",
    "SIGNATURE_HEADER",
    "RenderedRequest",
    "WebhookKind",
    "encode",
    "event_body",
    "render",
    "sign",
    "signature_headers",
    "slack_body",
    "verify_signature",
]

SCHEMA_VERSION = 1  # watchdog/schemas/event-v1.json
EVENT_HEADER = "X-DNSSEC-Watchdog-Event"
WebhookKind = Literal["generic", "slack"]

# Slack Block Kit limits (docs.slack.dev/reference/block-kit/blocks: header, section, context).
_HEADER_MAX = 150
_SECTION_TEXT_MAX = 3000
_FIELDS_MAX = 10
_FIELD_TEXT_MAX = 2000
_FINDINGS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """Exactly what to POST: the body bytes and the headers that go with them."""

    body: bytes
    headers: dict[str, str]


def render(
    event: AlertEvent, kind: WebhookKind, secret: bytes | None, timestamp: int
) -> RenderedRequest:
    """The request for one event and one webhook; signed over ``timestamp`` when a secret is set."""
    if kind == "generic":
        body = encode(event_body(event))
    elif kind == "slack":
        body = encode(slack_body(event))
    else:
        raise InvalidValueError(f'unknown webhook kind "{kind}"; known: generic, slack')
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"dnssec-watchdog/{event.origin.version}",
        EVENT_HEADER: event.id,
    }
    if secret is not None:
        headers.update(signature_headers(body, secret, timestamp))
    return RenderedRequest(body, headers)


def encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; the same event always gives the same bytes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- generic body ------------------------------------------------------------------------------


def _signature_body(ref: SignatureRef) -> dict[str, Any]:
    return {
        "server": ref.server,
        "server_name": ref.server_name,
        "owner": ref.owner,
        "type": ref.rtype,
        "key_tag": ref.key_tag,
        "algorithm": ref.algorithm,
        "inception": rfc3339(ref.inception),
        "expiration": rfc3339(ref.expiration),
    }


def event_body(event: AlertEvent) -> dict[str, Any]:
    """The generic webhook body, schema 1 (watchdog/schemas/event-v1.json)."""
    d = event.deadlines
    return {
        "schema": SCHEMA_VERSION,
        "id": event.id,
        "zone": event.zone,
        "condition": event.condition.value,
        "kind": event.kind.value,
        "old_severity": event.old_severity.value,
        "new_severity": event.new_severity.value,
        "resolved": event.resolved,
        "sequence": event.sequence,
        "at": rfc3339(event.at),
        "since": rfc3339(event.since),
        "summary": summarize(event),
        "zone_severity": event.zone_severity.value,
        "signed": event.signed,
        "consecutive_failures": event.failures,
        "confirmed": event.confirmed,
        "deadlines": None
        if d is None
        else {
            "warning_at": rfc3339(d.warning_at),
            "strict_fail_at": rfc3339(d.strict_fail_at),
            "skew_exhausted_at": rfc3339(d.skew_exhausted_at),
            "unbound_skew": d.unbound_skew,
            "signature": _signature_body(d.signature),
            "unbound_signature": _signature_body(d.unbound_signature),
        },
        "servers": [
            {
                "address": s.address,
                "name": s.name,
                "reachable": s.reachable,
                "serial": s.serial,
                "severity": s.severity.value,
                "strict_fail_at": None if s.strict_fail_at is None else rfc3339(s.strict_fail_at),
            }
            for s in event.servers
        ],
        "findings": [
            {
                "code": f.code,
                "severity": f.severity.value,
                "message": f.message,
                "server": f.server,
                "owner": f.owner,
                "type": f.rtype,
            }
            for f in event.findings
        ],
        "watchdog": {"host": event.origin.host, "version": event.origin.version},
    }


# --- Slack -------------------------------------------------------------------------------------

_EMOJI = {
    Severity.OK: ":large_green_circle:",
    Severity.WARNING: ":large_yellow_circle:",
    Severity.STRICT_FAIL: ":large_orange_circle:",
    Severity.SKEW_EXHAUSTED: ":red_circle:",
    Severity.BOGUS: ":no_entry:",
    Severity.UNREACHABLE: ":electric_plug:",
    Severity.UNKNOWN: ":grey_question:",
}


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp > cut.rfind(";"):  # never leave half an escape like "&am"
        cut = cut[:amp]
    return cut + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three control characters (docs.slack.dev, "Formatting text": escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(f"*{title}*\n{_mrkdwn(value)}", _FIELD_TEXT_MAX)}


def _fields(event: AlertEvent) -> list[dict[str, str]]:
    fields = [_field("Condition", f"{event.condition.value} ({event.kind.value})")]
    d = event.deadlines
    if d is not None:
        sig = d.signature
        fields += [
            _field("Warning from", rfc3339(d.warning_at)),
            _field("Strict validators fail", rfc3339(d.strict_fail_at)),
            _field(
                "Unbound fails",
                f"{rfc3339(d.skew_exhausted_at)} (skew {format_duration(d.unbound_skew)})",
            ),
            _field("Signature", f"{sig.owner} {sig.rtype}, key {sig.key_tag}, alg {sig.algorithm}"),
            _field("Served by", server_label(sig.server, sig.server_name, event.zone)),
        ]
    silent = [server_label(s.address, s.name, event.zone) for s in event.servers if not s.reachable]
    if silent:
        fields.append(_field("Not answering", ", ".join(silent)))
    return fields[:_FIELDS_MAX]


def slack_body(event: AlertEvent) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit blocks plus a plain ``text`` fallback."""
    summary = summarize(event)
    severity = event.new_severity
    reminder = " (reminder)" if event.kind is EventKind.RENOTIFY else ""
    header = f"{_EMOJI[severity]} {zone_label(event.zone)}: {event_headline(severity)}{reminder}"
    was = severity_word(event.old_severity)
    lead = f"*{severity_word(severity).upper()}* ({event.condition.value}, was {was})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(header, _HEADER_MAX), "emoji": True},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"{lead}\n{_mrkdwn(summary)}", _SECTION_TEXT_MAX),
            },
            "fields": _fields(event),
        },
    ]
    problems = [f for f in event.findings if f.severity is not Severity.OK]
    if problems and not event.resolved:
        lines = [f"• `{f.code}` {_mrkdwn(f.message)}" for f in problems[:_FINDINGS_SHOWN]]
        if len(problems) > _FINDINGS_SHOWN:
            lines.append(f"… and {len(problems) - _FINDINGS_SHOWN} more")
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), _SECTION_TEXT_MAX)},
            }
        )
    context = (
        f"{event.origin.host} · dnssec-watchdog {event.origin.version} · event {event.id} · "
        f"{rfc3339(event.at)}"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
    return {
        "text": _clip(_mrkdwn(f"{_EMOJI[severity]} {summary}"), _SECTION_TEXT_MAX),
        "blocks": blocks,
    }
