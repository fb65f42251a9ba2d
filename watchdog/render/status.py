"""The status page's routes: a request target and a snapshot in, a complete response out.

Pure, so the HTTP listener (watchdog.service) only moves bytes, and every page is a function of
its inputs in the tests. Routes: ``/`` (HTML, every zone by deadline), ``/zones/<zone>`` (one
zone), ``/api/v1/zones`` and ``/api/v1/zones/<zone>`` (the same as JSON: check-v1 zone objects
plus ``last_check`` and ``next_check``). Every response carries the security headers below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from watchdog.engine.timeutil import rfc3339
from watchdog.errors import InvalidValueError
from watchdog.render.check import SCHEMA_VERSION, zone_json
from watchdog.render.page import error_page, render_index
from watchdog.render.snapshot import (
    SentEvent,
    StatusSnapshot,
    ZoneStatus,
    parse_query,
    select,
)
from watchdog.render.zonepage import render_zone_page

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "StatusResponse",
    "event_json",
    "respond",
    "zone_status_json",
]

# No script, no external asset, nothing framed or sniffed: what DNS puts in a name stays text.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_MAX_TARGET = 4096


@dataclass(frozen=True, slots=True)
class StatusResponse:
    """Status, headers (security headers included) and body of one response."""

    status: int
    content_type: str
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "Error")

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Content-Type", self.content_type), *SECURITY_HEADERS, *self.extra_headers)


def _html(status: int, text: str) -> StatusResponse:
    return StatusResponse(status, _HTML, text.encode())


def _json(status: int, value: Any) -> StatusResponse:
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return StatusResponse(status, _JSON, text.encode())


def _error(status: int, message: str, api: bool) -> StatusResponse:
    if api:
        return _json(status, {"error": message})
    return _html(status, error_page(status, _REASONS[status], message))


def _moment(at: int | None) -> str | None:
    return rfc3339(at) if at is not None else None


def event_json(e: SentEvent) -> dict[str, Any]:
    """One event and its per-webhook delivery state (webhooks by name only)."""
    return {
        "id": e.id,
        "condition": e.condition,
        "kind": e.kind,
        "old_severity": e.old_severity,
        "new_severity": e.new_severity,
        "at": rfc3339(e.at),
        "deliveries": [
            {
                "webhook": w.webhook,
                "state": w.state.value,
                "attempts": w.attempts,
                "next_attempt_at": _moment(w.next_attempt_at),
                "finished_at": _moment(w.finished_at),
                "last_status": w.last_status,
            }
            for w in e.deliveries
        ],
    }


def zone_status_json(z: ZoneStatus, *, events: bool = False) -> dict[str, Any]:
    """check-v1's zone object plus ``last_check`` and ``next_check`` (and the events)."""
    assert z.report is not None
    out = zone_json(z.report)
    out["last_check"] = _moment(z.last_check)
    out["next_check"] = _moment(z.next_check)
    if events:
        out["events"] = [event_json(e) for e in z.events]
    return out


def _zone_name(raw: str) -> str:
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidValueError("the zone name is not percent-encoded UTF-8") from exc


def _find(snapshot: StatusSnapshot, raw: str) -> ZoneStatus | None:
    name = _zone_name(raw)
    return snapshot.by_name.get(name) or snapshot.by_name.get(name + ".")


def _index(snapshot: StatusSnapshot, query: str, now: int, api: bool) -> StatusResponse:
    q = parse_query(query)
    if not api:
        return _html(200, render_index(select(snapshot, q), q, now))
    chosen = select(snapshot, q)
    return _json(
        200,
        {
            "schema": SCHEMA_VERSION,
            "generated_at": rfc3339(now),
            "counts": chosen.counts,
            "matched": chosen.matched,
            "page": chosen.page,
            "pages": chosen.pages,
            "zones": [zone_status_json(z) for z in chosen.rows if z.report is not None],
            "pending": [
                {"name": z.name, "next_check": _moment(z.next_check)}
                for z in chosen.rows
                if z.report is None
            ],
        },
    )


def _zone(snapshot: StatusSnapshot, raw: str, query: str, now: int, api: bool) -> StatusResponse:
    if query:
        raise InvalidValueError("a zone page takes no query parameters")
    z = _find(snapshot, raw)
    if z is None:
        return _error(404, f"no zone {_zone_name(raw)!r} is watched", api)
    if not api:
        return _html(200, render_zone_page(z, now))
    if z.report is None:
        return _json(200, {"name": z.name, "pending": True, "next_check": _moment(z.next_check)})
    return _json(200, zone_status_json(z, events=True))


def respond(snapshot: StatusSnapshot, method: str, target: str, now: int) -> StatusResponse | None:
    """The response to ``method target``, or None when the path is not the status page's."""
    path, _, query = target.partition("?")
    api = path.startswith("/api/")
    if path in ("/", "/api/v1/zones"):
        route = "index"
    elif path.startswith("/zones/") or path.startswith("/api/v1/zones/"):
        route = "zone"
    else:
        return None
    if method not in ("GET", "HEAD"):
        return StatusResponse(
            405, "text/plain; charset=utf-8", b"GET only\n", (("Allow", "GET, HEAD"),)
        )
    try:
        if len(target) > _MAX_TARGET:
            raise InvalidValueError(f"the request target is longer than {_MAX_TARGET} bytes")
        if route == "index":
            return _index(snapshot, query, now, api)
        raw = path.removeprefix("/api/v1/zones/" if api else "/zones/")
        if not raw or "/" in raw:
            return _error(404, "no such page", api)
        return _zone(snapshot, raw, query, now, api)
    except InvalidValueError as exc:
        return _error(400, str(exc), api)
