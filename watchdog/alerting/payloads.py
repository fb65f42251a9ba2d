"""Webhook bodies for alert events: generic JSON (schema 1), Slack Block Kit, HMAC signatures.

Pure: the send time (for the signature) and the secret are arguments. The outbox stores the
bytes ``render`` returns; the notifier re-signs them just before each attempt with
``signature_headers`` so the signed timestamp is the time of sending, as receivers that reject
replays expect (the same scheme as Stripe's ``Stripe-Signature``: ``t=<unix>,v1=<hex>`` over
``f"{t}.{body}"``; GitHub signs the body alone and so cannot reject replays).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from watchdog.alerting.signing import SIGNATURE_HEADER, sign, signature_headers, verify_signature
from watchdog.engine.alerts import AlertEvent, Condition, EventDeadlines, EventKind, SignatureRef
from watchdog.engine.codes import Code
from watchdog.engine.findings import Severity
from watchdog.engine.timeutil import format_duration, rfc3339
from watchdog.errors import InvalidValueError

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
    "summarize",
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


# --- words -----------------------------------------------------------------------------------


def _label(severity: Severity) -> str:
    return severity.value.replace("_", " ")


def _zone(zone: str) -> str:
    return zone.rstrip(".") or "."


def _span(seconds: int) -> str:
    """A duration to the minute; the exact RFC 3339 moment is always printed next to it."""
    return format_duration(seconds - seconds % 60 if seconds >= 60 else seconds)


def _host(address: str) -> str:
    """ "192.0.2.53:53" -> "192.0.2.53", "[2001:db8::53]:53" -> "2001:db8::53"; other ports stay."""
    if address.startswith("[") and address.endswith("]:53"):
        return address[1:-4]
    if address.count(":") == 1 and address.endswith(":53"):
        return address[:-3]
    return address


def _server(address: str, name: str | None, zone: str) -> str:
    """ "ns2 192.0.2.53": the NS name relative to the zone when it is inside it, and the address."""
    if address == "parent":
        return "the parent's DS"
    if not name:
        return _host(address)
    short, suffix = name.rstrip("."), "." + zone.rstrip(".").lower()
    if suffix != "." and short.lower().endswith(suffix):
        short = short[: -len(suffix)]
    return f"{short} {_host(address)}"


def _ref(ref: SignatureRef, zone: str) -> str:
    return _server(ref.server, ref.server_name, zone)


def _timeline(event: AlertEvent, d: EventDeadlines) -> str:
    now, sig = event.at, d.signature
    if now < d.strict_fail_at and now >= sig.inception:
        return (
            f"strict validators fail in {_span(d.strict_fail_at - now)} "
            f"({rfc3339(d.strict_fail_at)}); Unbound in {_span(d.skew_exhausted_at - now)}"
        )
    if now < sig.inception:
        return (
            f"signature not valid before {rfc3339(sig.inception)}; strict validators fail "
            f"until then"
        )
    if now < d.skew_exhausted_at:
        return (
            f"signatures expired; strict validators fail since {rfc3339(d.strict_fail_at)} "
            f"({_span(now - d.strict_fail_at)} ago); Unbound fails in "
            f"{_span(d.skew_exhausted_at - now)} ({rfc3339(d.skew_exhausted_at)})"
        )
    return (
        f"signatures expired; every validator fails since {rfc3339(d.skew_exhausted_at)} "
        f"({_span(now - d.skew_exhausted_at)} ago), strict validators since "
        f"{rfc3339(d.strict_fail_at)}"
    )


def _stale(event: AlertEvent, d: EventDeadlines) -> str | None:
    """The blamed server, when it is behind others rather than the whole zone being late."""
    blamed = d.signature.server
    later = any(
        s.reachable and s.strict_fail_at is not None and s.strict_fail_at > d.strict_fail_at
        for s in event.servers
    )
    old_serial = any(f.code == Code.STALE_SERIAL and f.server == blamed for f in event.findings)
    if blamed != "parent" and (later or old_serial):
        return _ref(d.signature, event.zone)
    return None


def _expiry(event: AlertEvent) -> str:
    d = event.deadlines
    if d is None:
        return "the zone is no longer signed" if not event.signed else "no signature verifies"
    text = _timeline(event, d)
    stale = _stale(event, d)
    if stale and not event.resolved:
        text += f"; stale server {stale}"
    return text


def _first(event: AlertEvent, severity: Severity) -> str:
    prefix = f"{event.zone}: "  # zone-level messages start with the zone, already said
    hits = [f.message.removeprefix(prefix) for f in event.findings if f.severity is severity]
    if not hits:
        return _label(severity)
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    return f"{hits[0]}{more}"


def _who_is_silent(event: AlertEvent) -> str:
    silent = [_server(s.address, s.name, event.zone) for s in event.servers if not s.reachable]
    return ", ".join(silent) if silent else "no authoritative server found"


def _silent(event: AlertEvent) -> str:
    return f"{_who_is_silent(event)} not answering ({event.failures} consecutive failed checks)"


_DETAIL: dict[Condition, Callable[[AlertEvent], str]] = {
    Condition.EXPIRY: _expiry,
    Condition.BOGUS: lambda e: f"bogus: {_first(e, Severity.BOGUS)}",
    Condition.UNREACHABLE: lambda e: f"unreachable: {_silent(e)}",
    Condition.UNKNOWN: lambda e: f"cannot judge: {_first(e, Severity.UNKNOWN)}",
}
_RECOVERED: dict[Condition, Callable[[AlertEvent], str]] = {
    Condition.EXPIRY: _expiry,
    Condition.BOGUS: lambda e: "every RRset validates again",
    Condition.UNREACHABLE: lambda e: "every server answers again",
    Condition.UNKNOWN: lambda e: "the zone can be judged again",
}


def summarize(event: AlertEvent) -> str:
    """One line for humans, e.g. "example.com: strict validators fail in 2h 13m (...); ..."."""
    if event.kind is EventKind.RAISED:
        head = ""
    elif event.kind is EventKind.RENOTIFY:
        head = f"still {_label(event.new_severity)} since {rfc3339(event.since)}; "
    elif event.resolved:
        head = f"recovered from {_label(event.old_severity)}; "
    else:
        head = f"improved from {_label(event.old_severity)} to {_label(event.new_severity)}; "
    if not event.confirmed:  # this check's data would contradict the state it carries over
        detail = f"not confirmed by this check: {_who_is_silent(event)} not answering"
    else:
        detail = (_RECOVERED if event.resolved else _DETAIL)[event.condition](event)
    return " ".join(f"{_zone(event.zone)}: {head}{detail}".split())  # always one line


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
_HEADLINE = {
    Severity.OK: "recovered",
    Severity.WARNING: "signatures expire soon",
    Severity.STRICT_FAIL: "strict validators fail",
    Severity.SKEW_EXHAUSTED: "every validator fails",
    Severity.BOGUS: "does not validate",
    Severity.UNREACHABLE: "servers not answering",
    Severity.UNKNOWN: "cannot be judged",
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
            _field("Served by", _ref(sig, event.zone)),
        ]
    silent = [_server(s.address, s.name, event.zone) for s in event.servers if not s.reachable]
    if silent:
        fields.append(_field("Not answering", ", ".join(silent)))
    return fields[:_FIELDS_MAX]


def slack_body(event: AlertEvent) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit blocks plus a plain ``text`` fallback."""
    summary = summarize(event)
    severity = event.new_severity
    reminder = " (reminder)" if event.kind is EventKind.RENOTIFY else ""
    header = f"{_EMOJI[severity]} {_zone(event.zone)}: {_HEADLINE[severity]}{reminder}"
    lead = (
        f"*{_label(severity).upper()}* ({event.condition.value}, was {_label(event.old_severity)})"
    )
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
