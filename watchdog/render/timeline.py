"""A zone's timeline as inline SVG: the zone's thresholds, "now", and one bar per server.

Pure. Each server's bar runs from the inception to the strict-fail moment of the signature that
fails first there, then (lighter) on to the moment even Unbound fails; a server that stopped
following its primary ends visibly earlier than the others. Every label is escaped: server names
come from DNS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watchdog.engine.assess import ZoneReport
from watchdog.engine.timeutil import rfc3339
from watchdog.render.page import esc

__all__ = ["Marker", "markers", "render_timeline"]

_WIDTH = 960
_LABELS = 230  # left column: server labels
_TOP = 62  # marker labels above the bars
_BAR = 24
_COLOURS = {
    "inception": "#57606a",
    "warning": "#bf8700",
    "strict fail": "#cf222e",
    "skew exhausted": "#82071e",
    "now": "#0969da",
}
_SERVER_FILL = {
    "ok": "#2da44e",
    "warning": "#e3b341",
    "strict_fail": "#cf222e",
    "skew_exhausted": "#82071e",
    "bogus": "#6f1d8c",
}


@dataclass(frozen=True, slots=True)
class Marker:
    """A labelled moment on the timeline."""

    label: str
    at: int


def markers(report: ZoneReport, now: int) -> list[Marker]:
    """Inception, warning, strict fail, skew exhausted (when a signature sets them) and now."""
    found = [Marker("now", now)]
    d = report.deadlines
    if d is not None:
        found = [
            Marker("inception", d.strict_fail.timeline.inception),
            Marker("warning", d.warning_at),
            Marker("strict fail", d.strict_fail_at),
            Marker("skew exhausted", d.skew_exhausted_at),
            *found,
        ]
    return found


def _span(report: ZoneReport, marks: Sequence[Marker]) -> tuple[int, int]:
    moments = [m.at for m in marks]
    for s in report.servers:
        if s.deadlines is not None:
            moments += [s.deadlines.strict_fail.timeline.inception, s.deadlines.skew_exhausted_at]
    lo, hi = min(moments), max(moments)
    pad = max(3600, (hi - lo) // 20)
    return lo - pad, hi + pad


def render_timeline(report: ZoneReport, now: int) -> str:
    """The SVG element (safe HTML) for ``report`` as of ``now``."""
    marks = markers(report, now)
    lo, hi = _span(report, marks)
    plot = _WIDTH - _LABELS - 10

    def x(at: int) -> float:
        return round(_LABELS + plot * (at - lo) / (hi - lo), 1)

    height = _TOP + _BAR * max(1, len(report.servers)) + 26
    parts = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" '
        f'style="max-width:{_WIDTH}px;width:100%" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'font-family="system-ui,sans-serif" font-size="12">'
        f"<title>timeline of {esc(report.zone)}</title>",
        f'<rect x="{_LABELS}" y="{_TOP - 4}" width="{plot}" '
        f'height="{height - _TOP - 18}" fill="#f6f8fa"/>',
    ]
    for i, s in enumerate(report.servers):
        y = _TOP + i * _BAR
        label = s.address + (f" {s.name}" if s.name else "")
        parts.append(f'<text x="4" y="{y + 15}" class="server">{esc(_clip(label))}</text>')
        d = s.deadlines
        if d is None:
            why = "no answer" if not s.reachable else "no verifying signature"
            parts.append(f'<text x="{_LABELS + 6}" y="{y + 15}" fill="#57606a">{esc(why)}</text>')
            continue
        start, strict, skew = (
            d.strict_fail.timeline.inception,
            d.strict_fail_at,
            d.skew_exhausted_at,
        )
        fill = _SERVER_FILL.get(s.severity.value, "#8c959f")
        parts.append(
            f'<rect x="{x(start)}" y="{y + 4}" width="{max(1.0, x(strict) - x(start))}" '
            f'height="{_BAR - 8}" fill="{fill}"><title>{esc(s.address)}: valid '
            f"{esc(rfc3339(start))} to {esc(rfc3339(strict - 1))}</title></rect>"
            f'<rect x="{x(strict)}" y="{y + 4}" width="{max(1.0, x(skew) - x(strict))}" '
            f'height="{_BAR - 8}" fill="{fill}" opacity="0.35"/>'
        )
    bottom = height - 18
    for i, m in enumerate(marks):
        colour = _COLOURS[m.label]
        ly = 14 + 15 * (i % 3) if m.label != "now" else _TOP - 8
        anchor = "end" if x(m.at) > _LABELS + plot * 0.8 else "start"
        dash = ' stroke-dasharray="4 3"' if m.label == "now" else ""
        parts.append(
            f'<line x1="{x(m.at)}" x2="{x(m.at)}" y1="{ly + 3}" y2="{bottom}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{x(m.at) + (-3 if anchor == "end" else 3)}" y="{ly}" fill="{colour}" '
            f'text-anchor="{anchor}" class="marker">{esc(m.label)}</text>'
        )
    parts.append(
        f'<text x="{_LABELS}" y="{height - 4}" fill="#57606a">{esc(rfc3339(lo)[:16])}</text>'
        f'<text x="{_WIDTH - 10}" y="{height - 4}" fill="#57606a" text-anchor="end">'
        f"{esc(rfc3339(hi)[:16])}</text></svg>"
    )
    return "".join(parts)


def _clip(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
