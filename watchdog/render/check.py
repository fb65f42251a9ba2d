"""Rendering ZoneReports for people and programs: the one-shot timeline, JSON, Nagios.

Pure: every function takes reports (which carry their own ``checked_at``) and returns text or
plain data. The JSON shape is the versioned contract of watchdog/schemas/check-v1.json; the
exit codes and the status line follow the Nagios plugin API (nagios-plugins.org/doc/guidelines).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from watchdog.engine.assess import ServerVerdict, ZoneReport
from watchdog.engine.codes import Code
from watchdog.engine.coverage import CoverageVerdict
from watchdog.engine.findings import Finding, Severity, worst
from watchdog.engine.profiles import Profile, expiry_for, nagios_strict_critical
from watchdog.engine.timeline import Deadline, Deadlines
from watchdog.engine.timeutil import format_relative, rfc3339
from watchdog.engine.validators import ValidatorView
from watchdog.render.sentences import (
    STRICT_VALIDATORS,
    coverage_sentence,
    finding_reason,
    nagios_expiry,
    no_timeline_reason,
    profile_differs,
    servers_unreachable,
    severity_word,
    threshold_label,
    worst_server,
)

__all__ = [
    "SCHEMA_VERSION",
    "STATUS_NAMES",
    "effective_severity",
    "exit_code",
    "nagios_line",
    "render_text",
    "render_zone",
    "to_json",
    "zone_json",
]

SCHEMA_VERSION = 1
STATUS_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")  # indexed by the Nagios exit code

_LADDER = frozenset({Severity.OK, Severity.WARNING, Severity.STRICT_FAIL, Severity.SKEW_EXHAUSTED})
# Findings the timeline already tells (one per RRset; the timeline names the one that matters).
_TIMELINE_CODES = frozenset(
    {
        Code.SIGNATURE_EXPIRING,
        Code.SIGNATURE_EXPIRED,
        Code.SIGNATURE_NOT_YET_VALID,
        Code.SIGNATURE_SKEW_EXHAUSTED,
    }
)
_SAID_ABOVE = _TIMELINE_CODES | {Code.NOT_SIGNED}  # the headline says "not signed"
_STATUS_ORDER = {2: 0, 3: 1, 1: 2, 0: 3}  # CRITICAL, UNKNOWN, WARNING, OK: as exit_code ranks them
_MAX_FINDINGS = 8  # lines in the human output; --json lists them all
_COLOURS = {
    Severity.OK: "32",  # green
    Severity.WARNING: "33",  # yellow
    Severity.UNKNOWN: "35",  # magenta
    Severity.UNREACHABLE: "35",
    Severity.STRICT_FAIL: "31",  # red
    Severity.SKEW_EXHAUSTED: "1;31",  # bold red
    Severity.BOGUS: "1;31",
}


def _all_findings(r: ZoneReport) -> list[Finding]:
    """Zone and server findings, each once, in the order the engine produced them."""
    return list(dict.fromkeys([*r.findings, *(f for s in r.servers for f in s.findings)]))


def _expiry_for(r: ZoneReport, profile: Profile) -> Severity:
    d = r.deadlines
    return expiry_for(profile, r.expiry_severity, r.checked_at, d.strict_fail_at if d else None)


def effective_severity(report: ZoneReport, profile: Profile = Profile.STRICT) -> Severity:
    """The zone's severity for the exit code, as validators of ``profile`` see it.

    Only the expiry ladder depends on the profile (watchdog.engine.profiles.expiry_for). Bogus
    and unknown are the same for everyone. A server that does not answer while others serve the
    zone makes it a WARNING: the zone resolves, but that server's signatures went unseen. Only
    when no server serves the zone is it UNREACHABLE (Nagios UNKNOWN).
    """
    others = {f.severity for f in _all_findings(report)}
    others |= {s.severity for s in report.servers}
    if report.ds is not None:
        others.add(report.ds.severity)
    others -= _LADDER
    if Severity.UNREACHABLE in others and any(s.serial is not None for s in report.servers):
        others = (others - {Severity.UNREACHABLE}) | {Severity.WARNING}
    return worst([_expiry_for(report, profile), *others])


def exit_code(reports: Sequence[ZoneReport], profile: Profile = Profile.STRICT) -> int:
    """Nagios plugin exit code of the worst zone: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    CRITICAL outranks UNKNOWN: a zone known to fail is never hidden by one we could not see.
    """
    if not reports:
        return 3
    codes = [effective_severity(r, profile).nagios_code for r in reports]
    return 2 if 2 in codes else max(codes)


# --- JSON ------------------------------------------------------------------------------------


def _finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "severity": f.severity.value, "message": f.message}
    if f.server is not None:
        out["server"] = f.server
    if f.owner is not None:
        out["owner"] = f.owner
    if f.rtype is not None:
        out["type"] = f.rtype
    return out


def _signature_json(d: Deadline) -> dict[str, Any]:
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


def _deadlines_json(d: Deadlines | None) -> dict[str, str | None]:
    if d is None:
        return {"warning_at": None, "strict_fail_at": None, "skew_exhausted_at": None}
    return {
        "warning_at": rfc3339(d.warning_at),
        "strict_fail_at": rfc3339(d.strict_fail_at),
        "skew_exhausted_at": rfc3339(d.skew_exhausted_at),
    }


def _server_json(s: ServerVerdict) -> dict[str, Any]:
    return {
        "address": s.address,
        "name": s.name,
        "reachable": s.reachable,
        "serial": s.serial,
        "state": s.severity.value,
        "earliest_expiration": (
            rfc3339(s.deadlines.strict_fail.timeline.expiration) if s.deadlines else None
        ),
        "deadlines": _deadlines_json(s.deadlines),
        "findings": [_finding_json(f) for f in s.findings],
    }


# A one-shot check has no history: the stall check (engine/stall.py) is the service's.
_NO_HISTORY = {
    "state": "not_judged",
    "summary": "not judged: the stall check needs the service's history (--serve)",
}


def _validator_json(v: ValidatorView) -> dict[str, Any]:
    a = v.answer
    return {
        "address": a.address,
        "rcode": a.rcode or None,
        "authenticated": a.authenticated,
        "ede": list(a.ede),
        "error": a.error or None,
        "seen": v.seen,
        "predicted": v.predicted,
    }


def _validator_rows(r: ZoneReport) -> list[str]:
    rows = [["address", "answer", "seen", "predicted"]]
    for v in r.validators:
        a = v.answer
        answer = a.error or " ".join(
            [a.rcode, *(["AD"] if a.authenticated else []), *(f"EDE {c}" for c in a.ede)]
        )
        rows.append([a.address, answer, v.seen, v.predicted])
    return _table(rows, "    ")


def _signer(r: ZoneReport) -> dict[str, str]:
    if r.signer is None:
        return _NO_HISTORY
    return {"state": r.signer.state, "summary": r.signer.summary}


def zone_json(r: ZoneReport, profile: Profile = Profile.STRICT) -> dict[str, Any]:
    """One zone in the shape of check-v1.json's ``zones`` items."""
    d = r.deadlines
    worst_server = r.worst_server
    return {
        "name": r.zone,
        "severity": r.severity.value,
        "status": STATUS_NAMES[effective_severity(r, profile).nagios_code],
        "signed": r.signed,
        "expiry_severity": r.expiry_severity.value,
        "deadlines": _deadlines_json(d),
        "unbound_skew_seconds": d.unbound_skew if d else None,
        "earliest": _signature_json(d.strict_fail) if d else None,
        "worst_server": worst_server.address if worst_server else None,
        "chain": r.chain.value,
        "servers": [_server_json(s) for s in r.servers],
        "findings": [_finding_json(f) for f in r.findings],
        **({"coverage": _coverage_json(r.coverage)} if r.coverage is not None else {}),
        "signer": _signer(r),
        "validators": [_validator_json(v) for v in r.validators],
    }


def _coverage_json(c: CoverageVerdict) -> dict[str, Any]:
    return {
        "mode": c.mode,
        "rrsets": c.rrsets,
        "signatures": c.signatures,
        "names": c.names,
        "wanted": c.wanted,
        "source": c.source or None,
        "serial": c.serial,
        "rrsets_by_state": dict(c.counts),
        "not_covered": c.uncovered,
    }


def to_json(
    reports: Sequence[ZoneReport],
    checked_at: int,
    *,
    profile: Profile = Profile.STRICT,
    fetched_at: int | None = None,
) -> dict[str, Any]:
    """The whole one-shot result, schema version 1.

    ``checked_at`` is the moment the answers were judged at (``--at``), ``fetched_at`` the
    moment they were fetched (the same when not given).
    """
    code = exit_code(reports, profile)
    return {
        "schema": SCHEMA_VERSION,
        "checked_at": rfc3339(checked_at),
        "fetched_at": rfc3339(checked_at if fetched_at is None else fetched_at),
        "profile": profile.value,
        "status": STATUS_NAMES[code],
        "exit_code": code,
        "zones": [zone_json(r, profile) for r in reports],
    }


# --- people ----------------------------------------------------------------------------------


def _paint(text: str, severity: Severity, colour: bool) -> str:
    return f"\x1b[{_COLOURS[severity]}m{text}\x1b[0m" if colour else text


def _table(rows: Sequence[Sequence[str]], indent: str) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        (
            indent
            + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        ).rstrip()
        for row in rows
    ]


def _server_label(server: str, servers: Sequence[ServerVerdict]) -> str:
    if server == "parent":
        return "in the parent zone"
    name = next((s.name for s in servers if s.address == server and s.name), None)
    return f"on {server} ({name})" if name else f"on {server}"


def _setter(d: Deadline, servers: Sequence[ServerVerdict]) -> str:
    s = d.signature
    return (
        f"{d.owner} {d.rtype} RRSIG, key {s.key_tag} (alg {s.algorithm}), "
        f"{_server_label(d.server, servers)}"
    )


def _timeline(r: ZoneReport, d: Deadlines) -> list[str]:
    now = r.checked_at
    rows = [
        (threshold_label(kind, at, now, d.unbound_skew), at)
        for kind, at in (
            ("warning", d.warning_at),
            ("strict_fail", d.strict_fail_at),
            ("skew_exhausted", d.skew_exhausted_at),
        )
    ]
    inception = max(x.timeline.inception for x in (d.warning, d.strict_fail, d.skew_exhausted))
    if inception > now:  # a signature from the future: strict validators reject it until then
        rows.insert(0, (threshold_label("valid_from", inception, now), inception))
    lines = _table([[label, rfc3339(at), format_relative(at, now)] for label, at in rows], "    ")
    lines.append(f"    strict validators: {STRICT_VALIDATORS}")
    # Who sets each threshold; usually one signature sets all three.
    setters: dict[tuple[object, ...], tuple[Deadline, list[str]]] = {}
    for label, deadline in (
        ("warning", d.warning),
        ("strict", d.strict_fail),
        ("Unbound", d.skew_exhausted),
    ):
        key = (
            deadline.server,
            deadline.owner,
            deadline.rtype,
            deadline.signature.key_tag,
            deadline.timeline.expiration,
        )
        setters.setdefault(key, (deadline, []))[1].append(label)
    for deadline, labels in setters.values():
        which = "" if len(setters) == 1 else f" ({', '.join(labels)})"
        lines.append(f"    set by {_setter(deadline, r.servers)}{which}")
    return lines


def _no_timeline(r: ZoneReport) -> str:
    why = no_timeline_reason(r.signed, any(s.serial is not None for s in r.servers))
    return f"  as of {rfc3339(r.checked_at)}: {why}"


def _servers(r: ZoneReport, colour: bool) -> list[str]:
    named = any(s.name for s in r.servers)
    header = ["address", *(["name"] if named else []), "serial", "earliest expiration", "state"]
    rows = [header]
    for s in r.servers:
        expiry = rfc3339(s.deadlines.strict_fail.timeline.expiration) if s.deadlines else "-"
        serial = "-" if s.serial is None else str(s.serial)
        name = [s.name or "-"] if named else []
        rows.append([s.address, *name, serial, expiry, s.severity.value])
    lines = _table(rows, "    ")
    if colour:  # paint the last column after padding, so escapes do not upset the widths
        for i, s in enumerate(r.servers, start=1):
            head = lines[i][: len(lines[i]) - len(s.severity.value)]
            lines[i] = head + _paint(s.severity.value, s.severity, colour)
    return lines


def _findings(r: ZoneReport) -> list[str]:
    shown = [f for f in _all_findings(r) if f.code not in _SAID_ABOVE]
    shown.sort(key=lambda f: -f.severity.rank)  # stable: engine order within a severity
    rows = [
        ["note" if f.severity is Severity.OK else f.severity.value, f.code, f.message]
        for f in shown[:_MAX_FINDINGS]
    ]
    lines = _table(rows, "    ") if rows else []
    if len(shown) > _MAX_FINDINGS:
        lines.append(f"    ... and {len(shown) - _MAX_FINDINGS} more (--json lists them all)")
    return lines


def _headline(r: ZoneReport, colour: bool, profile: Profile) -> str:
    """Zone, the severity the exit code reflects, why it differs from the engine's, and blame."""
    effective = effective_severity(r, profile)
    parts = [r.zone, _paint(severity_word(effective).upper(), effective, colour)]
    if effective is not r.severity:
        unreachable = sum(1 for s in r.servers if s.severity is Severity.UNREACHABLE)
        if r.severity is Severity.UNREACHABLE and unreachable:
            parts.append(servers_unreachable(unreachable, len(r.servers)))
        else:
            parts.append(profile_differs(profile.value, r.severity))
    if not r.signed:
        parts.append("not signed")
    elif effective is not Severity.OK and (blamed := r.worst_server) is not None:
        parts.append(worst_server(blamed.address, blamed.name))
    return "  ".join(parts)


def render_zone(r: ZoneReport, colour: bool = False, profile: Profile = Profile.STRICT) -> str:
    """One block: headline, timeline (UTC and relative), servers, findings worth reading."""
    lines = [_headline(r, colour, profile)]
    if r.deadlines is not None:
        lines.append(f"  timeline (UTC) as of {rfc3339(r.checked_at)}:")
        lines += _timeline(r, r.deadlines)
    else:
        lines.append(_no_timeline(r))
    if r.coverage is not None:
        lines.append(f"  coverage: {coverage_sentence(r.coverage)}")
    if r.servers:
        lines += ["  servers:", *_servers(r, colour)]
    if r.validators:
        lines += ["  validators:", *_validator_rows(r)]
    if r.signed:
        lines.append(f"  signer: {_signer(r)['summary']}")
    found = _findings(r)
    if found:
        lines += ["  findings:", *found]
    return "\n".join(lines)


def render_text(
    reports: Sequence[ZoneReport], colour: bool = False, profile: Profile = Profile.STRICT
) -> str:
    """Every zone's block, separated by a blank line."""
    return "\n\n".join(render_zone(r, colour, profile) for r in reports) + "\n"


# --- Nagios ----------------------------------------------------------------------------------


def _perf_label(zone: str, what: str) -> str:
    # Perfdata labels are quoted; a quote or "=" inside would end them early.
    clean = zone.replace("'", "_").replace("=", "_")
    return f"'{clean} {what}'"


def _zone_summary(r: ZoneReport, severity: Severity, profile: Profile) -> str:
    d = r.deadlines
    if d is None or severity is not _expiry_for(r, profile):
        # Not (only) a matter of dates: name the worst finding and where it was seen.
        found = max(_all_findings(r), key=lambda f: f.severity.rank, default=None)
        if found is None:
            return finding_reason(r.zone, severity, None, None)
        return finding_reason(r.zone, severity, found.code, found.server)
    text = nagios_expiry(r.zone, severity, d.strict_fail_at, d.skew_exhausted_at, r.checked_at)
    blamed = r.worst_server
    if severity is not Severity.OK and blamed is not None and len(r.servers) > 1:
        text += f", {worst_server(blamed.address)}"
    return text


def _perfdata(reports: Iterable[ZoneReport], profile: Profile) -> list[str]:
    """Seconds left before each threshold, with Nagios ranges ("N:" alerts below N)."""
    critical = nagios_strict_critical(profile)
    perf = []
    for r in reports:
        d = r.deadlines
        if d is None:
            continue
        left = d.strict_fail_at - r.checked_at
        warn = d.strict_fail_at - d.warning_at + 1  # warning once left <= strict - warning
        perf.append(f"{_perf_label(r.zone, 'strict_fail')}={left}s;{warn}:;{critical}")
        skew_left = d.skew_exhausted_at - r.checked_at
        perf.append(f"{_perf_label(r.zone, 'skew_exhausted')}={skew_left}s;;1:")
    return perf


def nagios_line(reports: Sequence[ZoneReport], profile: Profile = Profile.STRICT) -> str:
    """One Nagios status line: the worst zones first, then how many are fine, then perfdata."""
    code = exit_code(reports, profile)
    judged = [(effective_severity(r, profile), r) for r in reports]
    bad = [x for x in judged if x[0] is not Severity.OK]
    bad.sort(key=lambda x: (_STATUS_ORDER[x[0].nagios_code], -x[0].rank))
    fine = [r for sev, r in judged if sev is Severity.OK]
    parts = [_zone_summary(r, sev, profile) for sev, r in bad]
    if len(fine) == 1 and not bad:
        parts.append(_zone_summary(fine[0], Severity.OK, profile))
    elif fine:
        parts.append(f"{len(fine)} zone{'s' if len(fine) != 1 else ''} ok")
    text = f"DNSSEC {STATUS_NAMES[code]} - " + "; ".join(parts)
    perf = _perfdata(reports, profile)
    return text + (" | " + " ".join(perf) if perf else "")
