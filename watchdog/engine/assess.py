"""The engine: observations + now -> deadlines, severity and findings (DESIGN.md 1-2).

Pure: no clock, no I/O. ``now`` is always an argument, so the same observation can be judged at
any moment (``--at``, the scheduler's predicted crossings, property tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchdog.engine.codes import Code
from watchdog.engine.coverage import CoverageVerdict, apex_coverage, judge_coverage
from watchdog.engine.findings import Finding, Severity, worst
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.profiles import (
    DEFAULT_SETTINGS,
    Profile,
    ValidatorSettings,
    Window,
    unbound_skew,
    window,
)
from watchdog.engine.timeutil import (
    format_duration,
    lifetime,
    parse_duration,
    rfc3339,
    serial_precedes,
    serial_to_posix,
)
from watchdog.errors import InvalidValueError

__all__ = [
    "Deadlines",
    "RRsetVerdict",
    "ServerVerdict",
    "SignatureTimeline",
    "WarnBefore",
    "ZonePolicy",
    "ZoneReport",
    "assess_rrset",
    "assess_zone",
    "signature_timeline",
]

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", re.ASCII)  # "３%" is no percent


@dataclass(frozen=True, slots=True)
class WarnBefore:
    """How long before expiration to warn: a fixed span or a percent of the lifetime."""

    seconds: int | None = None
    percent: float | None = 10.0

    @classmethod
    def parse(cls, text: str) -> WarnBefore:
        """ "10%" (of the signature's lifetime) or a duration such as "36h" or "7d"."""
        match = _PERCENT.match(text)
        if match:
            percent = float(match.group(1))
            if percent > 100:
                raise InvalidValueError(f'warn_before "{text}": a percent must be 0% to 100%')
            return cls(seconds=None, percent=percent)
        try:
            return cls(seconds=parse_duration(text), percent=None)
        except InvalidValueError:
            raise InvalidValueError(
                f'warn_before "{text}" is not a duration ("36h", "7d") or a percent ("10%")'
            ) from None

    def amount(self, lifetime_seconds: int) -> int:
        """Seconds before expiration at which the warning starts, for this lifetime."""
        if self.seconds is not None:
            return self.seconds
        return int(lifetime_seconds * (self.percent or 0.0) / 100)

    def __str__(self) -> str:
        if self.seconds is not None:
            return format_duration(self.seconds)
        return f"{self.percent:g}%"


@dataclass(frozen=True, slots=True)
class ZonePolicy:
    """The per-zone knobs the engine needs."""

    settings: ValidatorSettings = DEFAULT_SETTINGS
    warn_before: WarnBefore = WarnBefore()


DEFAULT_POLICY = ZonePolicy()


@dataclass(frozen=True, slots=True)
class SignatureTimeline:
    """Every moment that matters for one signature, in 64-bit POSIX seconds."""

    inception: int
    expiration: int
    lifetime: int
    unbound_skew: int
    warning_at: int  # E - warn_before
    strict_fail_at: int  # E + 1: first second strict validators reject
    skew_exhausted_at: int  # E + skew + 1: first second even Unbound rejects
    inverted: bool  # inception serially after expiration: bogus whatever the clock says
    settings: ValidatorSettings

    def window(self, profile: Profile) -> Window:
        return window(profile, self.inception, self.expiration, self.settings)

    def not_yet_valid(self, now: int) -> bool:
        """Strict validators reject it because its inception is still ahead."""
        return now < self.inception

    def severity(self, now: int) -> Severity:
        if self.inverted:
            return Severity.BOGUS
        return _severity(
            now, self.warning_at, [self.window(Profile.STRICT)], [self.window(Profile.UNBOUND)]
        )


def signature_timeline(
    inception: int, expiration: int, now: int, policy: ZonePolicy = DEFAULT_POLICY
) -> SignatureTimeline:
    """The timeline of a signature from its raw 32-bit inception and expiration fields."""
    inverted = serial_precedes(expiration, inception)
    life = lifetime(inception, expiration)
    start = serial_to_posix(inception, now)
    # Map the expiration relative to the inception so a signature straddling the 2106 wrap keeps
    # its true lifetime (RFC 1982: E is "after" I by L seconds).
    end = start + life if not inverted else serial_to_posix(expiration, now)
    skew = unbound_skew(life, policy.settings.skew_min, policy.settings.skew_max)
    return SignatureTimeline(
        inception=start,
        expiration=end,
        lifetime=life,
        unbound_skew=skew,
        warning_at=end - policy.warn_before.amount(life),
        strict_fail_at=end + 1,
        skew_exhausted_at=end + skew + 1,
        inverted=inverted,
        settings=policy.settings,
    )


def _covered_until(windows: Sequence[Window], now: int) -> int | None:
    """The first second at or after ``now`` no window covers, following overlapping windows.

    None when ``now`` itself is not covered.
    """
    t = now
    while True:
        covering = [w for w in windows if w.accepts(t)]
        if not covering:
            return None if t == now else t
        t = max(w.accepted_until for w in covering) + 1


def _first_failure(windows: Sequence[Window], now: int) -> int:
    """When a set of windows stops validating: the first uncovered second from now on, or, if
    already failing, the latest end among them (the moment it failed, or will fail again)."""
    until = _covered_until(windows, now)
    if until is not None:
        return until
    return max(w.first_rejected_after for w in windows)


def _severity(
    now: int, warning_at: int, strict: Sequence[Window], unbound: Sequence[Window]
) -> Severity:
    if not any(w.accepts(now) for w in unbound):
        return Severity.SKEW_EXHAUSTED
    if not any(w.accepts(now) for w in strict):
        return Severity.STRICT_FAIL
    if now >= warning_at:
        return Severity.WARNING
    return Severity.OK


@dataclass(frozen=True, slots=True)
class Deadline:
    """A moment and the signature that sets it: which server, which RRset, which key."""

    at: int
    server: str
    owner: str
    rtype: str
    signature: SignatureObservation
    timeline: SignatureTimeline


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The three thresholds of DESIGN.md 2, for an RRset or a whole zone."""

    warning: Deadline
    strict_fail: Deadline
    skew_exhausted: Deadline

    @property
    def warning_at(self) -> int:
        return self.warning.at

    @property
    def strict_fail_at(self) -> int:
        return self.strict_fail.at

    @property
    def skew_exhausted_at(self) -> int:
        return self.skew_exhausted.at

    @property
    def unbound_skew(self) -> int:
        """Unbound's skew for the signature that sets the zone's skew-exhausted moment."""
        return self.skew_exhausted.timeline.unbound_skew

    def next_crossing(self, now: int) -> int | None:
        """The next threshold after ``now``, for the scheduler; None when all are past."""
        future = [
            t for t in (self.warning_at, self.strict_fail_at, self.skew_exhausted_at) if t > now
        ]
        return min(future) if future else None


@dataclass(frozen=True, slots=True)
class RRsetVerdict:
    """One RRset on one server: its deadlines (None if nothing verifies) and severity."""

    server: str
    owner: str
    rtype: str
    ttl: int
    severity: Severity
    deadlines: Deadlines | None
    signatures: tuple[tuple[SignatureObservation, SignatureTimeline], ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class ServerVerdict:
    """One authoritative server address: its state and the RRset that fails first there."""

    address: str
    name: str | None
    reachable: bool
    serial: int | None
    severity: Severity
    deadlines: Deadlines | None
    rrsets: tuple[RRsetVerdict, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class ZoneReport:
    """The engine's verdict on one zone at one moment."""

    zone: str
    checked_at: int
    severity: Severity
    expiry_severity: Severity  # on the OK..SKEW_EXHAUSTED ladder alone
    deadlines: Deadlines | None
    chain: ChainStatus
    signed: bool
    servers: tuple[ServerVerdict, ...]
    ds: RRsetVerdict | None
    findings: tuple[Finding, ...]
    policy: ZonePolicy
    coverage: CoverageVerdict | None = None  # None only for reports made by hand

    @property
    def worst_server(self) -> ServerVerdict | None:
        """The server whose state is worst, ties broken by the earliest strict deadline."""
        if not self.servers:
            return None

        def key(s: ServerVerdict) -> tuple[int, int]:
            deadline = s.deadlines.strict_fail_at if s.deadlines else 0
            return (-s.severity.rank, deadline)

        return min(self.servers, key=key)


def _describe(owner: str, rtype: str, server: str) -> str:
    return f"{owner} {rtype} on {server}"


def assess_rrset(
    rrset: RRsetObservation,
    server: str,
    now: int,
    policy: ZonePolicy = DEFAULT_POLICY,
    *,
    keys_unknown: bool = False,
) -> RRsetVerdict:
    """Judge one RRset: it validates while at least one verifying signature is in its window.

    ``keys_unknown``: the server's DNSKEY RRset could not be fetched, so a NO_KEY signature is
    undecided (UNKNOWN) rather than BOGUS; a lost packet must not page anyone as bogus.
    """
    where = _describe(rrset.owner, rrset.rtype, server)
    findings: list[Finding] = []

    def finding(code: Code, severity: Severity, message: str) -> None:
        findings.append(Finding(code, severity, message, server, rrset.owner, rrset.rtype))

    timed = [
        (sig, signature_timeline(sig.inception, sig.expiration, now, policy))
        for sig in rrset.signatures
    ]
    usable = [
        (sig, t) for sig, t in timed if sig.verification is Verification.VALID and not t.inverted
    ]
    for sig, t in timed:
        if t.inverted:
            finding(
                Code.SIGNATURE_INVERTED,
                Severity.OK if usable else Severity.BOGUS,
                f"{where}: signature by key {sig.key_tag} has inception "
                f"{rfc3339(t.inception)} after expiration {rfc3339(t.expiration)}",
            )
        elif sig.verification is Verification.NO_KEY and usable and rrset.rtype == "DNSKEY":
            # A ZSK signing the DNSKEY RRset too (dnssec-signzone does) is normal: only the
            # DS-matched key's signature counts there (RFC 4035 5.2), so nothing to report.
            continue
        elif sig.verification is not Verification.VALID:
            severity = (
                Severity.OK
                if usable
                else (
                    Severity.UNKNOWN
                    if sig.verification is Verification.UNSUPPORTED_ALGORITHM
                    or (keys_unknown and sig.verification is Verification.NO_KEY)
                    else Severity.BOGUS
                )
            )
            finding(
                _VERIFICATION_CODES[sig.verification],
                severity,
                f"{where}: signature by key {sig.key_tag} (algorithm {sig.algorithm}) "
                f"is {sig.verification.value.replace('_', ' ')}"
                + (f": {sig.reason}" if sig.reason else ""),
            )
    if not rrset.signatures:
        finding(Code.RRSET_UNSIGNED, Severity.BOGUS, f"{where}: served without any RRSIG")
    if not usable:
        severity = worst(f.severity for f in findings) if findings else Severity.BOGUS
        return RRsetVerdict(
            server,
            rrset.owner,
            rrset.rtype,
            rrset.ttl,
            severity,
            None,
            tuple(timed),
            tuple(findings),
        )

    strict = [t.window(Profile.STRICT) for _, t in usable]
    unbound = [t.window(Profile.UNBOUND) for _, t in usable]
    strict_at = _first_failure(strict, now)
    skew_at = _first_failure(unbound, now)

    def setter(at: int, profile: Profile) -> Deadline:
        # The signature whose window ends right where the RRset stops validating.
        sig, t = max(
            usable, key=lambda p: (p[1].window(profile).first_rejected_after == at, p[1].expiration)
        )
        return Deadline(at, server, rrset.owner, rrset.rtype, sig, t)

    strict_deadline = setter(strict_at, Profile.STRICT)
    deadlines = Deadlines(
        warning=Deadline(
            strict_deadline.timeline.warning_at,
            server,
            rrset.owner,
            rrset.rtype,
            strict_deadline.signature,
            strict_deadline.timeline,
        ),
        strict_fail=strict_deadline,
        skew_exhausted=setter(skew_at, Profile.UNBOUND),
    )
    severity = _severity(now, deadlines.warning_at, strict, unbound)
    for sig, t in usable:
        if t.strict_fail_at < strict_at:
            finding(
                Code.SIGNATURE_EXPIRES_EARLY,
                Severity.OK,
                f"{where}: signature by key {sig.key_tag} expires {rfc3339(t.expiration)}, "
                f"before its siblings; the RRset is carried by key "
                f"{strict_deadline.signature.key_tag}",
            )
    if severity is not Severity.OK:
        finding(
            _state_code(severity, strict, now),
            severity,
            _state_message(where, deadlines, now, severity, strict),
        )
    return RRsetVerdict(
        server,
        rrset.owner,
        rrset.rtype,
        rrset.ttl,
        severity,
        deadlines,
        tuple(timed),
        tuple(findings),
    )


_VERIFICATION_CODES = {
    Verification.BOGUS: Code.SIGNATURE_BOGUS,
    Verification.NO_KEY: Code.SIGNATURE_NO_KEY,
    Verification.UNSUPPORTED_ALGORITHM: Code.SIGNATURE_UNSUPPORTED_ALGORITHM,
}
_STATE_CODES = {
    Severity.WARNING: Code.SIGNATURE_EXPIRING,
    Severity.STRICT_FAIL: Code.SIGNATURE_EXPIRED,
    Severity.SKEW_EXHAUSTED: Code.SIGNATURE_SKEW_EXHAUSTED,
}


def _not_yet_valid(severity: Severity, strict: Sequence[Window], now: int) -> bool:
    """Failing because every inception is still ahead (RFC 4035 5.3.1), not because of age."""
    return severity is not Severity.WARNING and all(w.accepted_from > now for w in strict)


def _state_code(severity: Severity, strict: Sequence[Window], now: int) -> Code:
    # An RRset signed from the future is not "expired": its code says what the operator fixes
    # (the signer's clock or inception offset), as its message already does.
    if _not_yet_valid(severity, strict, now):
        return Code.SIGNATURE_NOT_YET_VALID
    return _STATE_CODES[severity]


def _state_message(
    where: str, d: Deadlines, now: int, severity: Severity, strict: Sequence[Window]
) -> str:
    t = d.strict_fail.timeline
    if _not_yet_valid(severity, strict, now):
        return (
            f"{where}: signature not valid before {rfc3339(t.inception)}; strict "
            f"validators reject it until then"
        )
    if severity is Severity.WARNING:
        return (
            f"{where}: signature expires {rfc3339(t.expiration)}; strict validators fail "
            f"in {format_duration(d.strict_fail_at - now)}"
        )
    if severity is Severity.STRICT_FAIL:
        return (
            f"{where}: signature expired {rfc3339(t.expiration)}; strict validators fail "
            f"since {rfc3339(d.strict_fail_at)}, Unbound from {rfc3339(d.skew_exhausted_at)}"
        )
    return (
        f"{where}: signature expired {rfc3339(t.expiration)}; every validator fails since "
        f"{rfc3339(d.skew_exhausted_at)}"
    )


def _earliest(verdicts: Iterable[Deadlines | None]) -> Deadlines | None:
    """Zone (or server) deadlines: each threshold is the earliest over its RRsets."""
    present = [d for d in verdicts if d is not None]
    if not present:
        return None
    return Deadlines(
        warning=min((d.warning for d in present), key=lambda x: x.at),
        strict_fail=min((d.strict_fail for d in present), key=lambda x: x.at),
        skew_exhausted=min((d.skew_exhausted for d in present), key=lambda x: x.at),
    )


def _assess_server(obs: ServerObservation, now: int, policy: ZonePolicy) -> ServerVerdict:
    rrsets = tuple(
        assess_rrset(r, obs.address, now, policy, keys_unknown=obs.keys_unknown) for r in obs.rrsets
    )
    findings = [*obs.problems, *(f for r in rrsets for f in r.findings)]
    if not obs.reachable:
        severity = Severity.UNREACHABLE
        if not obs.problems:
            findings.append(
                Finding(
                    Code.UNREACHABLE, Severity.UNREACHABLE, f"{obs.address}: no answer", obs.address
                )
            )
    else:
        severity = worst([*(r.severity for r in rrsets), *(p.severity for p in obs.problems)])
    return ServerVerdict(
        obs.address,
        obs.name,
        obs.reachable,
        obs.serial,
        severity,
        _earliest(r.deadlines for r in rrsets),
        rrsets,
        tuple(findings),
    )


def _serial_findings(servers: Sequence[ServerVerdict]) -> list[Finding]:
    serials = {s.serial for s in servers if s.serial is not None}
    if len(serials) < 2:
        return []
    newest = max(serials, key=lambda a: sum(serial_precedes(b, a) for b in serials))
    return [
        Finding(
            Code.STALE_SERIAL,
            Severity.OK,
            f"{s.address} serves SOA serial {s.serial}, others serve {newest}",
            s.address,
        )
        for s in servers
        if s.serial is not None and s.serial != newest
    ]


def assess_zone(obs: ZoneObservation, now: int, policy: ZonePolicy = DEFAULT_POLICY) -> ZoneReport:
    """The whole verdict of DESIGN.md 2 for one zone at ``now``."""
    servers = tuple(_assess_server(s, now, policy) for s in obs.servers)
    ds = assess_rrset(obs.ds, "parent", now, policy) if obs.ds is not None else None
    findings = list(obs.problems)
    if not obs.signed:
        findings.append(
            Finding(
                Code.NOT_SIGNED,
                Severity.UNKNOWN,
                f"{obs.zone}: no server serves a DNSKEY RRset; the zone is not "
                "signed, so there is nothing to watch",
            )
        )
    explained = {Code.CHAIN_UNVERIFIED, Code.DS_UNSUPPORTED, Code.DS_LOOKUP_FAILED}
    if (
        obs.chain is ChainStatus.NOT_CHECKED
        and obs.signed
        and not any(p.code in explained for p in obs.problems)
    ):
        findings.append(
            Finding(
                Code.CHAIN_NOT_CHECKED,
                Severity.OK,
                f"{obs.zone}: no DS from the parent and no trust anchor; the "
                "chain of trust was not checked",
            )
        )
    if obs.chain is ChainStatus.BROKEN and not any(
        f.severity is Severity.BOGUS for f in obs.problems
    ):
        findings.append(
            Finding(
                Code.DS_MISMATCH,
                Severity.BOGUS,
                f"{obs.zone}: no served DNSKEY matches the DS or trust anchor",
            )
        )
    if ds is not None:
        findings.extend(ds.findings)
    findings.extend(_serial_findings(servers))
    reachable = [s for s in servers if s.reachable]
    if servers and not reachable:
        findings.append(
            Finding(
                Code.ALL_UNREACHABLE,
                Severity.UNREACHABLE,
                f"{obs.zone}: no authoritative server answered",
            )
        )
    coverage, whole = _coverage(obs, now, policy)
    findings.extend(coverage.findings)
    deadlines = _earliest(
        [*(s.deadlines for s in reachable), ds.deadlines if ds else None, coverage.deadlines]
    )
    # The expiry ladder alone (OK..SKEW_EXHAUSTED), from RRsets that have deadlines at all.
    timed = [v for s in reachable for v in s.rrsets if v.deadlines is not None]
    timed += [v for v in whole if v.deadlines is not None]
    if ds is not None and ds.deadlines is not None:
        timed.append(ds)
    expiry = worst(v.severity for v in timed)
    severity = worst(
        [
            *(s.severity for s in servers),
            *(f.severity for f in findings),
            ds.severity if ds else Severity.OK,
        ]
    )
    return ZoneReport(
        obs.zone,
        now,
        severity,
        expiry,
        deadlines,
        obs.chain,
        obs.signed,
        servers,
        ds,
        tuple(findings),
        policy,
        coverage,
    )


def _coverage(
    obs: ZoneObservation, now: int, policy: ZonePolicy
) -> tuple[CoverageVerdict, list[RRsetVerdict]]:
    """The whole-zone verdict and its judged RRset groups; apex mode when no transfer or walk
    succeeded this check (a partial zone is never judged as whole)."""
    cov = obs.coverage
    if cov is None or cov.mode == "apex":
        return apex_coverage(obs.servers, cov), []
    groups = [(assess_rrset(g.rrset, cov.source, now, policy), g.count) for g in cov.groups]
    deadlines = _earliest(v.deadlines for v, _ in groups)
    verdict = judge_coverage(cov, groups, deadlines, obs.servers, now)
    return verdict, [v for v, _ in groups]
