"""``/zones/<zone>``: one zone's timeline, servers, every finding, and what was sent about it.

Pure; the HTML shell and escaping come from watchdog.render.page, times are worded by
watchdog.engine.timeutil as ``--check`` words them.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchdog.engine.assess import ZoneReport
from watchdog.engine.timeline import Deadline
from watchdog.engine.timeutil import format_relative, rfc3339
from watchdog.render.page import badge, esc, moment, shell, word
from watchdog.render.sentences import coverage_sentence, no_timeline_reason
from watchdog.render.snapshot import DeliveryState, SentEvent, WebhookDelivery, ZoneStatus
from watchdog.render.timeline import markers, render_timeline

__all__ = ["render_zone_page"]

_MARKER_TEXT = {
    "inception": "signatures valid from",
    "warning": "warning",
    "strict fail": "strict validators fail (BIND 9, Knot Resolver, PowerDNS, Google)",
    "skew exhausted": "Unbound fails (skew exhausted)",
    "now": "now",
}


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    """Cells must already be safe HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _setter(d: Deadline) -> str:
    s = d.signature
    where = "in the parent zone" if d.server == "parent" else f"on {d.server}"
    return f"{d.owner} {d.rtype} RRSIG, key {s.key_tag} (alg {s.algorithm}), {where}"


def _timeline(r: ZoneReport, now: int) -> str:
    if r.deadlines is None:
        served = any(s.serial is not None for s in r.servers)
        return f'<p class="muted">{esc(no_timeline_reason(r.signed, served))}</p>'
    rows = [
        [esc(_MARKER_TEXT[m.label]), f'<span class="mono">{esc(rfc3339(m.at))}</span>',
         esc(format_relative(m.at, now))]
        for m in sorted(markers(r, now), key=lambda m: m.at)
    ]  # fmt: skip
    return (
        render_timeline(r, now)
        + _table(["", "UTC", "when"], rows, "deadlines")
        + f"<p>set by <code>{esc(_setter(r.deadlines.strict_fail))}</code>; Unbound's skew "
        f"{r.deadlines.unbound_skew} s</p>"
    )


def _servers(r: ZoneReport, now: int) -> str:
    rows = []
    for s in r.servers:
        d = s.deadlines
        rows.append(
            [
                f'<span class="mono">{esc(s.address)}</span>',
                f'<span class="mono">{esc(s.name or "-")}</span>',
                esc("-" if s.serial is None else s.serial),
                badge(s.severity.value),
                moment(d.strict_fail.timeline.expiration if d else None, now),
                moment(d.strict_fail_at if d else None, now),
            ]
        )
    head = ["address", "NS name", "SOA serial", "state", "earliest expiration", "strict fail"]
    return _table(head, rows, "servers") if rows else "<p>No server.</p>"


def _findings(r: ZoneReport) -> str:
    every = dict.fromkeys([*r.findings, *(f for s in r.servers for f in s.findings)])
    found = sorted(every, key=lambda f: -f.severity.rank)
    rows = [
        [
            badge(f.severity.value),
            f"<code>{esc(f.code)}</code>",
            esc(f.message),
            f'<span class="mono">{esc(" ".join(x for x in (f.server, f.owner, f.rtype) if x))}'
            "</span>",
        ]
        for f in found
    ]
    return (
        _table(["severity", "code", "message", "where"], rows, "findings")
        if rows
        else ("<p>No findings.</p>")
    )


def _delivery(w: WebhookDelivery, now: int) -> str:
    text = f"{esc(w.webhook)}: {esc(word(w.state.value))}"
    if w.state is DeliveryState.RETRYING and w.next_attempt_at is not None:
        text += (
            f" ({w.attempts} attempt{'s' if w.attempts != 1 else ''}"
            + (f", last HTTP {w.last_status}" if w.last_status else "")
            + f"; next attempt {esc(format_relative(w.next_attempt_at, now))})"
        )
    elif w.state is DeliveryState.DELIVERED and w.finished_at is not None:
        text += f" {esc(format_relative(w.finished_at, now))}"
    elif w.state is DeliveryState.GIVEN_UP:
        text += f" after {w.attempts} attempt{'s' if w.attempts != 1 else ''}"
    return text


def _events(events: Sequence[SentEvent], now: int) -> str:
    rows = [
        [
            moment(e.at, now),
            esc(e.condition),
            esc(e.kind),
            f"{badge(e.old_severity)} → {badge(e.new_severity)}",
            "<br>".join(_delivery(w, now) for w in e.deliveries)
            or '<span class="muted">no webhook matches</span>',
        ]
        for e in events
    ]
    head = ["at", "condition", "kind", "severity", "webhooks"]
    return _table(head, rows, "events") if rows else "<p>No events yet.</p>"


def render_zone_page(z: ZoneStatus, now: int) -> str:
    """The whole page for one zone."""
    r = z.report
    intro = (
        f'<p><a href="/">all zones</a></p><h1><span class="mono">{esc(z.name)}</span> '
        f"{badge(z.severity)}</h1>"
        f"<p>last check {moment(z.last_check, now).replace('<br>', ' ')}; next check "
        f"{moment(z.next_check, now).replace('<br>', ' ')}"
        + (f"; coverage {esc(z.coverage)}" if z.coverage else "")
        + "</p>"
    )
    if r is None:
        body = intro + "<p>Not checked yet.</p>"
    else:
        chain = f"<p>chain of trust: {esc(word(r.chain.value))}"
        if r.coverage is not None:
            chain += f"; coverage: {esc(coverage_sentence(r.coverage))}"
        chain += "</p>"
        body = (
            intro
            + chain
            + f"<h2>Timeline</h2>{_timeline(r, now)}"
            + f"<h2>Servers</h2>{_servers(r, now)}"
            + f"<h2>Findings</h2>{_findings(r)}"
        )
    body += f"<h2>Recent events</h2>{_events(z.events, now)}"
    return shell(f"{z.name} - dnssec-watchdog", body)
