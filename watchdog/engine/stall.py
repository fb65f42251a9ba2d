"""Signer stall: learn each server's refresh pattern from its history, warn when it breaks.

Signers refresh signatures on a steady cadence: BIND re-signs when a quarter of the validity
is left (sig-validity-interval's refresh, lib/dns/zone.c), OpenDNSSEC and Knot on their
Refresh settings, PowerDNS weekly. So the moment the earliest signature has less validity left
than it ever had when the signer refreshed it before, the signer has stopped: days before the
expiry warning (10% of the lifetime) fires. Pure: the history is data, ``now`` the report's.

A *sample* is what one run of identical checks of one server saw: the newest inception and the
earliest expiration of the watched signatures (earliest over RRsets of each RRset's latest
verifying signature, the moment the server stops validating), first and last seen. A *refresh*
is a sample whose earliest expiration is later than the previous one's. Its moment is estimated
as the new newest inception clamped into the gap between the two samples (signers backdate
inceptions: BIND by an hour), and the validity left at that moment is what the signer let the
old signatures run down to. With at least two refreshes seen, a server is judged:

- stalled when its earliest remaining validity is below the lowest ever left at a refresh,
  less a margin (default 10% of that), or when no refresh was seen for more than twice the
  longest interval between refreshes seen;
- ok otherwise. A zone is stalled when every judged server is (the signer stopped); when only
  some are while the others advance, those are named as stalled secondaries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise
from typing import Any

from watchdog.engine.assess import ServerVerdict, SignerStatus, ZoneReport
from watchdog.engine.codes import Code
from watchdog.engine.digits import DIGITS
from watchdog.engine.findings import Finding, Severity, worst
from watchdog.engine.lints import soa_expire_findings, ttl_findings
from watchdog.engine.observations import Verification
from watchdog.engine.timeutil import format_duration, parse_duration
from watchdog.errors import InvalidValueError, StateError

__all__ = [
    "DEFAULT_MARGIN",
    "HISTORY_LIMIT",
    "History",
    "Sample",
    "ServerStall",
    "StallMargin",
    "StallState",
    "StallVerdict",
    "assess_stall",
    "record",
    "with_stall",
]

HISTORY_LIMIT = 32  # changes kept per server: the refreshes that teach the pattern, not every check
HISTORY_FORMAT = 1
_PERCENT = re.compile(rf"^\s*({DIGITS}+(?:\.{DIGITS}+)?)\s*%\s*$", re.ASCII)


@dataclass(frozen=True, slots=True)
class StallMargin:
    """How far below the learned floor the remaining validity must fall: a percent of the
    floor ("10%") or a fixed span ("6h")."""

    seconds: int | None = None
    percent: float = 10.0

    @classmethod
    def parse(cls, text: str) -> StallMargin:
        match = _PERCENT.match(text)
        if match:
            percent = float(match.group(1))
            if percent >= 100:
                raise InvalidValueError(f'stall_margin "{text}": a percent must be below 100%')
            return cls(percent=percent)
        try:
            return cls(seconds=parse_duration(text), percent=0.0)
        except InvalidValueError:
            raise InvalidValueError(
                f'stall_margin "{text}" is not a percent ("10%") or a duration ("6h")'
            ) from None

    def amount(self, floor: int) -> int:
        if self.seconds is not None:
            return self.seconds
        return int(floor * self.percent / 100)

    def __str__(self) -> str:
        return format_duration(self.seconds) if self.seconds is not None else f"{self.percent:g}%"


DEFAULT_MARGIN = StallMargin()


@dataclass(frozen=True, slots=True)
class Sample:
    """One run of identical checks of one server (POSIX seconds)."""

    first_seen: int
    last_seen: int
    serial: int | None
    newest_inception: int
    earliest_expiration: int

    def same_signatures(self, other: Sample) -> bool:
        return (self.newest_inception, self.earliest_expiration) == (
            other.newest_inception,
            other.earliest_expiration,
        )


@dataclass(frozen=True, slots=True)
class History:
    """Per server address, its samples oldest first (at most ``HISTORY_LIMIT``)."""

    servers: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HISTORY_FORMAT,
            "servers": {
                address: [
                    [s.first_seen, s.last_seen, s.serial, s.newest_inception, s.earliest_expiration]
                    for s in samples
                ]
                for address, samples in self.servers.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Read what ``to_dict`` wrote; StateError for anything else."""
        if not isinstance(data, Mapping) or data.get("format") != HISTORY_FORMAT:
            raise StateError("signature history: unknown format; it is learned again")
        servers = data.get("servers")
        if not isinstance(servers, Mapping):
            raise StateError("signature history: no servers mapping; it is learned again")
        result = {}
        for address, rows in servers.items():
            if not isinstance(address, str) or not isinstance(rows, list):
                raise StateError("signature history: a bad server entry; it is learned again")
            result[address] = tuple(_sample(row) for row in rows)
        return cls(result)


def _sample(row: object) -> Sample:
    if not isinstance(row, list) or len(row) != 5:
        raise StateError(f"signature history: bad sample {row!r}; it is learned again")
    values: list[int | None] = []
    for i, v in enumerate(row):
        if (isinstance(v, int) and not isinstance(v, bool)) or (i == 2 and v is None):
            values.append(v)
        else:
            raise StateError(f"signature history: bad sample {row!r}; it is learned again")
    first, last, serial, inception, expiration = values
    assert first is not None and last is not None
    assert inception is not None and expiration is not None
    return Sample(first, last, serial, inception, expiration)


def _server_sample(server: ServerVerdict, now: int) -> Sample | None:
    """What one server serves now, or None when it answered nothing that can be timed."""
    if not server.reachable or server.deadlines is None:
        return None
    inceptions = [
        t.inception
        for r in server.rrsets
        for sig, t in r.signatures
        if sig.verification is Verification.VALID and not t.inverted
    ]
    if not inceptions:
        return None
    expiration = server.deadlines.strict_fail.timeline.expiration
    return Sample(now, now, server.serial, max(inceptions), expiration)


def record(history: History, report: ZoneReport, limit: int = HISTORY_LIMIT) -> History:
    """The history with this report's samples added: a run of identical checks extends its last
    sample; a change starts a new one; the oldest changes are dropped beyond ``limit``. Servers
    no longer in the report are forgotten; one that did not answer keeps what it had."""
    now = report.checked_at
    servers: dict[str, tuple[Sample, ...]] = {}
    for server in report.servers:
        samples = history.servers.get(server.address, ())
        current = _server_sample(server, now)
        if current is not None:
            last = samples[-1] if samples else None
            if last is not None and last.same_signatures(current) and last.last_seen <= now:
                extended = Sample(
                    last.first_seen, now, current.serial, last.newest_inception,
                    last.earliest_expiration,
                )  # fmt: skip
                samples = (*samples[:-1], extended)
            else:
                samples = (*samples, current)[-limit:]
        servers[server.address] = samples
    return History(servers)


class StallState(StrEnum):
    """Where one server, or a whole zone, stands."""

    NO_DATA = "no_data"  # nothing timed yet
    LEARNING = "learning"  # fewer than two refreshes seen
    OK = "ok"
    STALLED = "stalled"


@dataclass(frozen=True, slots=True)
class _Refresh:
    at: int  # estimated moment of the refresh
    remaining: int  # validity the old signatures had left then


def _refreshes(samples: Sequence[Sample]) -> list[_Refresh]:
    found = []
    for prev, cur in pairwise(samples):
        if cur.earliest_expiration > prev.earliest_expiration:
            at = min(max(cur.newest_inception, prev.last_seen), cur.first_seen)
            found.append(_Refresh(at, prev.earliest_expiration - at))
    return found


@dataclass(frozen=True, slots=True)
class ServerStall:
    """One server's refresh pattern and how its signatures compare with it now."""

    address: str
    state: StallState
    refreshes: int = 0
    last_refresh: int | None = None  # estimated moment of the latest refresh
    interval: int | None = None  # longest time between refreshes seen
    floor: int | None = None  # least validity ever left at a refresh
    threshold: int | None = None  # floor less the margin: below it, stalled
    remaining: int | None = None  # validity the earliest signature has left now
    reason: str = ""  # why it is stalled: "remaining" or "interval"


def _judge_server(
    address: str, samples: Sequence[Sample], now: int, margin: StallMargin
) -> ServerStall:
    if not samples:
        return ServerStall(address, StallState.NO_DATA)
    remaining = samples[-1].earliest_expiration - now
    refreshes = _refreshes(samples)
    if len(refreshes) < 2:
        return ServerStall(address, StallState.LEARNING, len(refreshes), remaining=remaining)
    floor = min(r.remaining for r in refreshes)
    threshold = floor - margin.amount(floor)
    interval = max(b.at - a.at for a, b in pairwise(refreshes))
    last = refreshes[-1].at
    reason = ""
    if remaining < threshold:
        reason = "remaining"
    elif interval > 0 and now - last > 2 * interval:
        reason = "interval"
    state = StallState.STALLED if reason else StallState.OK
    return ServerStall(
        address, state, len(refreshes), last, interval, floor, threshold, remaining, reason
    )


@dataclass(frozen=True, slots=True)
class StallVerdict:
    """The zone's signer as its history shows it: the ``signer`` condition's input."""

    state: StallState
    servers: tuple[ServerStall, ...]
    findings: tuple[Finding, ...]
    summary: str  # one line for the report: learning, ok, or what stalled

    @property
    def severity(self) -> Severity | None:
        """The ``signer`` condition's severity; None when nothing could be judged."""
        if self.state is StallState.NO_DATA:
            return None
        return Severity.WARNING if self.findings else Severity.OK


def assess_stall(
    history: History, report: ZoneReport, margin: StallMargin = DEFAULT_MARGIN
) -> StallVerdict:
    """Judge every server of ``report`` by its history (which should include the report)."""
    now = report.checked_at
    judged = tuple(
        _judge_server(s.address, history.servers.get(s.address, ()), now, margin)
        for s in report.servers
        if s.reachable
    )
    stalled = [s for s in judged if s.state is StallState.STALLED]
    advancing = [s for s in judged if s.state is StallState.OK]
    learning = [s for s in judged if s.state is StallState.LEARNING]
    if stalled and advancing:
        findings = tuple(_finding(report, s, advancing) for s in stalled)
    elif stalled:  # every judged server: the signer itself; told once, by the worst server
        findings = (_finding(report, min(stalled, key=lambda s: s.remaining or 0), ()),)
    if stalled:
        summary = findings[0].message
        return StallVerdict(StallState.STALLED, judged, findings, summary)
    if advancing:
        s = advancing[0]
        assert s.interval is not None and s.floor is not None
        summary = (
            f"signer ok: refreshed at least every {format_duration(s.interval)}, "
            f"with at least {format_duration(max(0, s.floor))} of validity left"
        )
        return StallVerdict(StallState.OK, judged, (), summary)
    if learning:
        seen = max(s.refreshes for s in learning)
        summary = f"signer: learning the refresh pattern ({seen} of 2 refreshes seen)"
        return StallVerdict(StallState.LEARNING, judged, (), summary)
    return StallVerdict(StallState.NO_DATA, judged, (), "signer: no signatures timed yet")


def _finding(report: ZoneReport, s: ServerStall, advancing: Sequence[ServerStall]) -> Finding:
    assert s.last_refresh is not None and s.interval is not None and s.floor is not None
    assert s.remaining is not None
    now = report.checked_at
    text = (
        f"signatures last refreshed {format_duration(max(0, now - s.last_refresh))} ago; "
        f"refreshed at least every {format_duration(s.interval)} until now, with at least "
        f"{format_duration(max(0, s.floor))} left, {format_duration(max(0, s.remaining))} "
        "left now"
    )
    server = next((v for v in report.servers if v.address == s.address), None)
    if server is not None and server.deadlines is not None:
        d = server.deadlines
        if d.strict_fail_at > now:
            text += f"; strict validators fail in {format_duration(d.strict_fail_at - now)}"
        if d.warning_at > now:
            text += f", {format_duration(d.warning_at - now)} before the expiry warning"
    if advancing:
        others = ", ".join(a.address for a in advancing)
        return Finding(
            Code.SECONDARY_STALLED,
            Severity.WARNING,
            f"{s.address}: a stalled secondary: {text}; {others} kept refreshing",
            s.address,
        )
    return Finding(Code.SIGNER_STALLED, Severity.WARNING, f"{report.zone}: signer stalled: {text}")


def with_stall(report: ZoneReport, verdict: StallVerdict) -> ZoneReport:
    """The report with the signer's state and its findings (what the service judges). The lints
    that compare with the refresh pattern are judged again against what was learned."""
    ignore = report.policy.ignore
    left = {s.address: s.floor for s in verdict.servers if s.floor is not None}
    intervals = [s.interval for s in verdict.servers if s.interval]
    relearned: list[Finding] = []
    if left and Code.SOA_EXPIRE_BEYOND_SIGNATURES not in ignore:
        relearned += soa_expire_findings(report.zone, report.servers, report.checked_at, left)
    if intervals and Code.TTL_BEYOND_REFRESH not in ignore:
        relearned += ttl_findings(report.zone, report.servers, min(intervals))
    replaced = (
        {f.code for f in relearned}
        | ({Code.SOA_EXPIRE_BEYOND_SIGNATURES} if left else set())
        | ({Code.TTL_BEYOND_REFRESH} if intervals else set())
    )
    findings = (
        *(f for f in report.findings if f.code not in replaced),
        *relearned,
        *verdict.findings,
    )
    severity = worst([report.severity, *(f.severity for f in verdict.findings)])
    status = SignerStatus(verdict.state.value, verdict.severity, verdict.summary)
    return replace(report, findings=findings, severity=severity, signer=status)
