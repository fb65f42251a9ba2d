"""The status page's HTML: the shell every page shares, and ``/`` (every zone by deadline).

Pure, server-rendered, no script and no external asset: inline CSS, inline SVG, forms and
links with GET parameters, so it works with JavaScript disabled and under the
Content-Security-Policy the server sends (``default-src 'none'; style-src 'unsafe-inline';
img-src data:``). Every string that comes from DNS or the config (zone and server names,
finding messages, webhook names) goes through ``esc``; a zone name is shown as the CLI shows
it, in presentation format, and escaped here.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

from watchdog.engine.timeutil import format_relative, rfc3339
from watchdog.render.snapshot import (
    SEVERITY_WORDS,
    Selection,
    StatusQuery,
    ZoneStatus,
)

__all__ = ["REFRESH_SECONDS", "badge", "esc", "moment", "render_index", "shell", "zone_href"]

REFRESH_SECONDS = 60
# Colour is a second channel only: every badge also carries the word.
_COLOURS = {
    "ok": ("#1a7f37", "#fff"),
    "warning": ("#e3b341", "#000"),
    "strict_fail": ("#cf222e", "#fff"),
    "skew_exhausted": ("#82071e", "#fff"),
    "bogus": ("#6f1d8c", "#fff"),
    "unreachable": ("#57606a", "#fff"),
    "unknown": ("#8c959f", "#000"),
    "pending": ("#d0d7de", "#000"),
}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1f2328;background:#fff}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;
border-bottom:1px solid #d0d7de;vertical-align:top}th{background:#f6f8fa}
td.num{white-space:nowrap}td .muted{font-size:12px}
code,.mono{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.sev{display:inline-block;padding:0 6px;border-radius:3px;font-weight:600;white-space:nowrap}
.counts a{margin-right:10px;text-decoration:none}.muted{color:#57606a}
nav{margin:.6em 0}form{display:inline}input[type=search]{width:18em}
.err{border:1px solid #cf222e;padding:.6em;background:#ffebe9}
"""


def esc(text: object) -> str:
    """HTML-escape anything shown, quotes included (it may land in an attribute)."""
    return escape(str(text), quote=True)


def word(severity: str) -> str:
    """A severity as people read it: ``strict_fail`` -> ``strict fail``."""
    return severity.replace("_", " ")


def badge(severity: str) -> str:
    """The severity as a coloured word; the word alone says it without colour."""
    bg, fg = _COLOURS.get(severity, ("#fff", "#000"))
    return (
        f'<span class="sev sev-{esc(severity)}" style="background:{bg};color:{fg}">'
        f"{esc(word(severity).upper())}</span>"
    )


def moment(at: int | None, now: int) -> str:
    """A time as "in 2d 3h" with the UTC time beside it, or a dash."""
    if at is None:
        return '<span class="muted">-</span>'
    return f'{esc(format_relative(at, now))}<br><span class="muted">{esc(rfc3339(at))}</span>'


def zone_href(name: str) -> str:
    """The zone page's path; every byte that is not unreserved is percent-encoded."""
    return "/zones/" + quote(name, safe="")


def shell(title: str, body: str, *, refresh: bool = True) -> str:
    """A whole document: the title is escaped here, ``body`` must already be safe HTML."""
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def error_page(status: int, reason: str, message: str) -> str:
    """A short page for a refused request: what was wrong, and a way back."""
    body = (
        f"<h1>{status} {esc(reason)}</h1><p class='err'>{esc(message)}</p>"
        '<p><a href="/">All zones</a></p>'
    )
    return shell(f"{status} {reason}", body, refresh=False)


def _link(query: StatusQuery, **changes: object) -> str:
    params = query.params(**changes)
    return "/" + ("?" + urlencode(params) if params else "")


def _counts(selection: Selection, query: StatusQuery) -> str:
    total = sum(selection.counts.values())
    parts = [f'<a href="{esc(_link(query, severity=None, page=1))}">all {total}</a>']
    for sev in SEVERITY_WORDS:
        n = selection.counts.get(sev, 0)
        if n:
            href = esc(_link(query, severity=sev, page=1))
            parts.append(f'<a href="{href}">{badge(sev)} {n}</a>')
    return f'<p class="counts">{"".join(parts)}</p>'


def _filters(query: StatusQuery) -> str:
    options = ['<option value="">any severity</option>'] + [
        f'<option value="{esc(s)}"{" selected" if s == query.severity else ""}>'
        f"{esc(word(s))}</option>"
        for s in SEVERITY_WORDS
    ]
    return (
        '<form method="get" action="/">'
        f'<label>name contains <input type="search" name="q" value="{esc(query.search)}">'
        f'</label> <select name="severity">{"".join(options)}</select> '
        '<button type="submit">filter</button></form>'
    )


def _worst(z: ZoneStatus) -> str:
    r = z.report
    if r is None or r.severity.value == "ok" or (s := r.worst_server) is None:
        return '<span class="muted">-</span>'
    name = f'<br><span class="muted">{esc(s.name)}</span>' if s.name else ""
    return f'<span class="mono">{esc(s.address)}</span>{name}'


def _row(z: ZoneStatus, now: int) -> str:
    d = z.report.deadlines if z.report is not None else None
    cells = [
        f'<a class="mono" href="{esc(zone_href(z.name))}">{esc(z.name)}</a>',
        badge(z.severity),
        moment(d.strict_fail_at if d else None, now),
        moment(d.skew_exhausted_at if d else None, now),
        _worst(z),
        esc(z.coverage) if z.coverage else '<span class="muted">-</span>',
        moment(z.last_check, now),
        moment(z.next_check, now),
    ]
    return "<tr>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>"


def _pager(selection: Selection, query: StatusQuery) -> str:
    if selection.pages == 1:
        return ""
    links = []
    if selection.page > 1:
        links.append(f'<a href="{esc(_link(query, page=selection.page - 1))}">previous</a>')
    links.append(f"page {selection.page} of {selection.pages}")
    if selection.page < selection.pages:
        links.append(f'<a href="{esc(_link(query, page=selection.page + 1))}">next</a>')
    return "<nav>" + " · ".join(links) + "</nav>"


_HEAD = (
    "zone",
    "severity",
    "strict validators fail",
    "Unbound fails",
    "worst server",
    "coverage",
    "last check",
    "next check",
)


def render_index(selection: Selection, query: StatusQuery, now: int) -> str:
    """``/``: counts by severity, the filters, one page of zones by deadline, the pager."""
    shown = f"{selection.matched} zone{'s' if selection.matched != 1 else ''}"
    if query.severity or query.search:
        shown += " match the filter"
    head = "".join(f"<th>{h}</th>" for h in _HEAD)
    rows = "".join(_row(z, now) for z in selection.rows)
    body = (
        "<h1>dnssec-watchdog</h1>"
        f'<p class="muted">as of {esc(rfc3339(now))}; soonest deadline first</p>'
        f"{_counts(selection, query)}{_filters(query)}"
        f"<p>{shown}</p>{_pager(selection, query)}"
        f'<table id="zones"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        f"{_pager(selection, query)}"
        '<p class="muted">JSON: <a href="/api/v1/zones">/api/v1/zones</a></p>'
    )
    return shell("dnssec-watchdog status", body)
