"""The whole zone's verdict: earliest deadline over every RRset, counts by state, and every
server's sample compared with the transfer (issue 12).

Pure: the RRsets come judged (assess.assess_rrset, one per SignatureGroup); this module adds
what only the whole zone can say. A zone's deadline is its earliest RRSIG over every RRset on
every server (DESIGN.md 2); the apex alone can miss it, as the 2023 ripe.net outage did when
11,026 of 11,389 RRSIGs expired while the SOA's stayed fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    CoverageObservation,
    RRsetObservation,
    ServerObservation,
)
from watchdog.engine.timeutil import rfc3339, serial_to_posix

if TYPE_CHECKING:
    from watchdog.engine.assess import Deadlines, RRsetVerdict

__all__ = ["APEX_UNCOVERED", "CoverageVerdict", "apex_coverage", "judge_coverage"]

# What a check of the apex alone does not see, said in every apex-only report.
APEX_UNCOVERED = (
    "apex only: RRsets below the apex (other than the configured extra names) are not "
    "checked; set transfer or walk to cover the whole zone"
)


@dataclass(frozen=True, slots=True)
class CoverageVerdict:
    """How much of the zone this check judged, and what the whole zone adds to the verdict.

    ``counts`` is (severity value, RRsets) for each state present; ``deadlines`` the earliest
    over every RRset of the transfer or walk (None in apex mode: the servers' carry it).
    """

    mode: str
    wanted: str
    source: str
    serial: int | None
    rrsets: int
    signatures: int
    names: int
    counts: tuple[tuple[str, int], ...]
    deadlines: Deadlines | None
    findings: tuple[Finding, ...]

    @property
    def uncovered(self) -> str | None:
        """What was not covered, for humans; None when the whole zone was."""
        return APEX_UNCOVERED if self.mode == "apex" else None


def apex_coverage(
    servers: Sequence[ServerObservation], coverage: CoverageObservation | None
) -> CoverageVerdict:
    """Apex mode (configured, or the fallback of a failed transfer or walk): counts of what
    the servers were asked, and the failure's findings."""
    rrsets = {(r.owner, r.rtype) for s in servers for r in s.rrsets}
    signatures = {
        (r.owner, r.rtype, sig.key_tag, sig.algorithm, sig.inception, sig.expiration)
        for s in servers
        for r in s.rrsets
        for sig in r.signatures
    }
    return CoverageVerdict(
        mode="apex",
        wanted=coverage.wanted if coverage else "apex",
        source=coverage.source if coverage else "",
        serial=coverage.serial if coverage else None,
        rrsets=len(rrsets),
        signatures=len(signatures),
        names=len({owner for owner, _ in rrsets}),
        counts=(),
        deadlines=None,
        findings=coverage.problems if coverage else (),
    )


def judge_coverage(
    coverage: CoverageObservation,
    groups: Sequence[tuple[RRsetVerdict, int]],
    deadlines: Deadlines | None,
    servers: Sequence[ServerObservation],
    now: int,
) -> CoverageVerdict:
    """The whole zone: ``groups`` are the judged SignatureGroups with their sizes,
    ``deadlines`` the earliest over them; ``servers`` are compared with the transfer."""
    counts: dict[Severity, int] = {}
    for verdict, count in groups:
        counts[verdict.severity] = counts.get(verdict.severity, 0) + count
    findings = [*coverage.problems, *_state_findings(groups, coverage.rrsets)]
    findings += _stale_findings(coverage, servers, now)
    return CoverageVerdict(
        mode=coverage.mode,
        wanted=coverage.wanted,
        source=coverage.source,
        serial=coverage.serial,
        rrsets=coverage.rrsets,
        signatures=coverage.signatures,
        names=coverage.names,
        counts=tuple((s.value, n) for s, n in sorted(counts.items(), key=lambda i: i[0].rank)),
        deadlines=deadlines,
        findings=tuple(findings),
    )


def _state_findings(groups: Sequence[tuple[RRsetVerdict, int]], total: int) -> list[Finding]:
    """The findings of each group, the worst state's first RRset saying how many share it:
    "3 of 412 RRsets expire before 2026-12-05T10:00:00Z"."""
    result: list[Finding] = []
    by_state: dict[Severity, list[tuple[RRsetVerdict, int]]] = {}
    for verdict, count in groups:
        if verdict.severity is not Severity.OK:
            by_state.setdefault(verdict.severity, []).append((verdict, count))
        result.extend(f for f in verdict.findings if f.severity is Severity.OK)
    for severity, members in sorted(by_state.items(), key=lambda i: -i[0].rank):
        timed = [v.deadlines.strict_fail_at for v, _ in members if v.deadlines is not None]
        first = min(members, key=lambda m: m[0].deadlines.strict_fail_at if m[0].deadlines else 0)
        n = sum(count for _, count in members)
        if timed:
            tail = f"; {n:,} of {total:,} RRsets expire before {rfc3339(max(timed))}"
        else:
            tail = f"; {n:,} of {total:,} RRsets are {severity.value.replace('_', ' ')}"
        for finding in first[0].findings:
            if finding.severity is not Severity.OK:
                result.append(
                    Finding(
                        finding.code,
                        finding.severity,
                        finding.message + tail,
                        finding.server,
                        finding.owner,
                        finding.rtype,
                    )
                )
    return result


def _timing(rrset: RRsetObservation) -> frozenset[tuple[int, int, int, int]]:
    return frozenset((s.key_tag, s.algorithm, s.inception, s.expiration) for s in rrset.signatures)


def _stale_findings(
    coverage: CoverageObservation, servers: Sequence[ServerObservation], now: int
) -> list[Finding]:
    """A server serving the transfer's serial with other signatures than the transfer holds
    for the same RRset is stale: a secondary that kept the primary's serial and lost its
    re-signing, which serial checks alone never see."""
    if not coverage.sampled or coverage.serial is None:
        return []
    wanted = {(r.owner, r.rtype): r for r in coverage.sampled}
    result = []
    for server in servers:
        if not server.reachable or server.serial != coverage.serial:
            continue
        differing = [
            (r, wanted[(r.owner, r.rtype)])
            for r in server.rrsets
            if (r.owner, r.rtype) in wanted and _timing(r) != _timing(wanted[(r.owner, r.rtype)])
        ]
        if not differing:
            continue
        served, transferred = differing[0]
        served_until = max((s.expiration for s in served.signatures), default=None)
        ours_until = max((s.expiration for s in transferred.signatures), default=None)
        older = served_until is not None and ours_until is not None
        result.append(
            Finding(
                Code.STALE_SIGNATURES,
                Severity.WARNING,
                f"{server.address} serves serial {coverage.serial} like {coverage.source} but "
                f"other signatures for {served.owner} {served.rtype}"
                + (
                    f" (expiring {_raw_time(served_until, now)}, the transfer's "
                    f"{_raw_time(ours_until, now)})"
                    if older
                    else ""
                )
                + (f" and {len(differing) - 1} more sampled RRsets" if len(differing) > 1 else ""),
                server.address,
                served.owner,
                served.rtype,
            )
        )
    return result


def _raw_time(field: int | None, now: int) -> str:
    """A raw 32-bit RRSIG time for a message, mapped near ``now`` (RFC 4034 3.1.5)."""
    return rfc3339(serial_to_posix(field, now)) if field is not None else "never"
