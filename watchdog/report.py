"""Rendering ZoneReports for people and programs: the one-shot timeline, JSON, Nagios.

Pure: every function takes reports (which carry their own ``checked_at``) and returns text or
plain data. The JSON shape is the versioned contract of watchdog/schemas/check-v1.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .assess import Deadline, Deadlines, ServerVerdict, ZoneReport
from .findings import Finding, Severity, worst
from .profiles import Profile
from .timeutil import format_relative, rfc3339

__all__ = [
    "SCHEMA_VERSION",
    "effective_severity",
    "exit_code",
    "nagios_line",
    "render_text",
    "to_json",
    "zone_json",
]

SCHEMA_VERSION = 1

_LADDER = (Severity.OK, Severity.WARNING, Severity.STRICT_FAIL, Severity.SKEW_EXHAUSTED)

_COLOURS = {
    Severity.OK: "32",  # green
    Severity.WARNING: "33",  # yellow
    Severity.UNKNOWN: "35",  # magenta
    Severity.UNREACHABLE: "35",
    Severity.STRICT_FAIL: "31",  # red
    Severity.SKEW_EXHAUSTED: "1;31",  # bold red
    Severity.BOGUS: "1;31",
}


def effective_severity(report: ZoneReport, profile: Profile = Profile.STRICT) -> Severity:
    """The zone's severity as seen by validators of ``profile``.

    Only the expiry ladder depends on the profile: for ``unbound`` a strict failure is still a
    warning until the skew is exhausted; ``knot-dns`` fails one second before strict validators.
    Bogus, unreachable and unknown states are the same for everyone.
    """
    severity = report.severity
    d = report.deadlines
    if severity not in _LADDER or d is None:
        return severity
    now = report.checked_at
    fail_at = {
        Profile.STRICT: d.strict_fail_at,
        Profile.POWERDNS: d.strict_fail_at,
        Profile.KNOT_DNS: d.strict_fail_at - 1,
        Profile.UNBOUND: d.skew_exhausted_at,
    }[profile]
    if now >= d.skew_exhausted_at:
        return Severity.SKEW_EXHAUSTED
    if now >= fail_at:
        return Severity.STRICT_FAIL
    if now >= d.warning_at or severity is not Severity.OK:
        return Severity.WARNING
    return Severity.OK


def exit_code(reports: Sequence[ZoneReport], profile: Profile = Profile.STRICT) -> int:
    """Nagios plugin exit code of the worst zone: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    if not reports:
        return 3
    return worst(effective_severity(r, profile) for r in reports).nagios_code


# --- JSON ------------------------------------------------------------------------------------


def _finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "severity": f.severity.value, "message": f.message}
    if f.server is not None:
        out["server"] = f.server
    if f.owner is not None:
        out["owner"] = f.owner
        out["type"] = f.rtype
    return out


def _deadline_json(d: Deadline) -> dict[str, Any]:
    s = d.signature
    return {
        "server": d.server,
        "owner": d.owner,
        "type": d.rtype,
        "key_tag": s.key_tag,
        "algorithm": s.algorithm,
        "inception": rfc3339(d.timeline.inception),
        "expiration": rfc3339(d.timeline.expiration),
    }


def _server_json(s: ServerVerdict) -> dict[str, Any]:
    return {
        "address": s.address,
        "name": s.name,
        "serial": s.serial,
        "state": s.severity.value,
        "earliest_expiration": (
            rfc3339(s.deadlines.strict_fail.timeline.expiration) if s.deadlines else None
        ),
        "findings": [_finding_json(f) for f in s.findings],
    }


def _deadlines_json(d: Deadlines | None) -> dict[str, str | None]:
    if d is None:
        return {"warning_at": None, "strict_fail_at": None, "skew_exhausted_at": None}
    return {
        "warning_at": rfc3339(d.warning_at),
        "strict_fail_at": rfc3339(d.strict_fail_at),
        "skew_exhausted_at": rfc3339(d.skew_exhausted_at),
    }


def zone_json(r: ZoneReport) -> dict[str, Any]:
    """One zone in the shape of check-v1.json's ``zones`` items."""
    d = r.deadlines
    return {
        "name": r.zone,
        "severity": r.severity.value,
        "expiry_severity": r.expiry_severity.value,
        "deadlines": _deadlines_json(d),
        "unbound_skew_seconds": d.unbound_skew if d else None,
        "earliest": _deadline_json(d.strict_fail) if d else None,
        "chain": r.chain.value,
        "servers": [_server_json(s) for s in r.servers],
        "findings": [_finding_json(f) for f in r.findings],
    }


def to_json(reports: Sequence[ZoneReport], checked_at: int) -> dict[str, Any]:
    """The whole one-shot result, schema version 1."""
    return {
        "schema": SCHEMA_VERSION,
        "checked_at": rfc3339(checked_at),
        "zones": [zone_json(r) for r in reports],
    }


# --- people ----------------------------------------------------------------------------------


def _paint(text: str, severity: Severity, colour: bool) -> str:
    return f"\x1b[{_COLOURS[severity]}m{text}\x1b[0m" if colour else text


def _where(d: Deadline) -> str:
    return f"{d.owner} {d.rtype} on {d.server}, key {d.signature.key_tag}"


def _timeline(r: ZoneReport) -> list[str]:
    d = r.deadlines
    if d is None:
        return ["  no verifying signature: no deadline to show"]
    now = r.checked_at
    rows = [
        ("warning at", d.warning_at, _where(d.warning)),
        ("strict validators fail at", d.strict_fail_at, _where(d.strict_fail)),
        (
            f"Unbound (skew {d.unbound_skew} s) fails at",
            d.skew_exhausted_at,
            _where(d.skew_exhausted),
        ),
    ]
    lines = [
        f"  {label:<33} {rfc3339(at)}  ({format_relative(at, now)})  {where}"
        for label, at, where in rows
    ]
    lines.insert(2, "    (BIND, Knot Resolver, PowerDNS Recursor, Google Public DNS)")
    return lines


def _server_line(s: ServerVerdict, colour: bool) -> str:
    expiry = rfc3339(s.deadlines.strict_fail.timeline.expiration) if s.deadlines else "-"
    serial = "-" if s.serial is None else str(s.serial)
    name = s.name or "-"
    state = _paint(s.severity.value, s.severity, colour)
    return f"    {s.address:<24} {name:<24} serial {serial:<11} earliest expiry {expiry}  {state}"


def render_zone(r: ZoneReport, colour: bool = False) -> str:
    """One block: headline, timeline, servers, findings worth reading."""
    worst_server = r.worst_server
    blame = ""
    if worst_server is not None and r.severity is not Severity.OK:
        blame = f"  worst server {worst_server.address}"
        if worst_server.name:
            blame += f" ({worst_server.name})"
    headline = f"{r.zone}  {_paint(r.severity.value.upper(), r.severity, colour)}{blame}"
    lines = [headline, f"  checked as of {rfc3339(r.checked_at)}", *_timeline(r), "  servers:"]
    lines += [_server_line(s, colour) for s in r.servers]
    notable = [*r.findings, *(f for s in r.servers for f in s.findings)]
    if notable:
        lines.append("  findings:")
        lines += [f"    {f.severity.value:<14} {f.code:<26} {f.message}" for f in notable]
    return "\n".join(lines)


def render_text(reports: Sequence[ZoneReport], colour: bool = False) -> str:
    """Every zone's block, separated by a blank line."""
    return "\n\n".join(render_zone(r, colour) for r in reports) + "\n"


def nagios_line(reports: Sequence[ZoneReport], profile: Profile = Profile.STRICT) -> str:
    """One Nagios status line with perfdata: seconds left until each threshold, per zone."""
    code = exit_code(reports, profile)
    status = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}[code]
    parts: list[str] = []
    perf: list[str] = []
    for r in reports:
        sev = effective_severity(r, profile)
        d = r.deadlines
        if d is None:
            parts.append(f"{r.zone} {sev.value}")
            continue
        left = d.strict_fail_at - r.checked_at
        parts.append(
            f"{r.zone} {sev.value}, strict fail {format_relative(d.strict_fail_at, r.checked_at)}"
        )
        warn_left = d.strict_fail_at - d.warning_at
        perf.append(f"'{r.zone} strict_fail'={left}s;{warn_left};0")
        perf.append(f"'{r.zone} skew_exhausted'={d.skew_exhausted_at - r.checked_at}s;;0")
    text = f"DNSSEC {status} - " + "; ".join(parts)
    return text + (" | " + " ".join(perf) if perf else "")
