"""The engine's verdicts: observations + now -> deadlines, severity and findings (DESIGN.md 1-2).

Per RRset, per server and per zone, built on the signature timelines and deadlines of
watchdog.engine.timeline (re-exported here: WarnBefore, ZonePolicy, Deadlines, ...).

Pure: no clock, no I/O. ``now`` is always an argument, so the same observation can be judged at
any moment (``--at``, the scheduler's predicted crossings, property tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watchdog.engine.codes import Code
from watchdog.engine.coverage import CoverageVerdict, apex_coverage, judge_coverage
from watchdog.engine.findings import Finding, Severity, worst
from watchdog.engine.lints import lint_zone
from watchdog.engine.observations import (
    ApexFacts,
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.profiles import Profile, Window
from watchdog.engine.timeline import (
    DEFAULT_POLICY,
    Deadline,
    Deadlines,
    SignatureTimeline,
    WarnBefore,
    ZonePolicy,
    earliest,
    first_failure,
    severity_at,
    signature_timeline,
)
from watchdog.engine.timeutil import format_duration, rfc3339, serial_precedes
from watchdog.engine.validators import ValidatorView, validator_views

__all__ = [
    "Deadlines",
    "RRsetVerdict",
    "ServerVerdict",
    "SignatureTimeline",
    "SignerStatus",
    "WarnBefore",
    "ZonePolicy",
    "ZoneReport",
    "assess_rrset",
    "assess_zone",
    "signature_timeline",
]


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
    facts: ApexFacts | None = None  # what it served at the apex beyond signatures (lints)


@dataclass(frozen=True, slots=True)
class SignerStatus:
    """The signer's refresh pattern as the zone's history shows it (engine/stall.py)."""

    state: str  # "learning", "ok", "stalled", "no_data"
    severity: Severity | None  # the ``signer`` condition's; None when nothing was judged
    summary: str  # one line for people


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
    # None when judged without history (the one-shot check): only the service knows the signer.
    signer: SignerStatus | None = None
    validators: tuple[ValidatorView, ...] = ()  # [watchdog] validators beside the prediction

    @property
    def worst_server(self) -> ServerVerdict | None:
        """The server whose state is worst, ties broken by the earliest strict deadline."""
        if not self.servers:
            return None

        def key(s: ServerVerdict) -> tuple[int, int]:
            deadline = s.deadlines.strict_fail_at if s.deadlines else 0
            return (-s.severity.rank, deadline)

        return min(self.servers, key=key)

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        """Zone-level and per-server findings, each once, in the order the engine made them."""
        return tuple(
            dict.fromkeys([*self.findings, *(f for s in self.servers for f in s.findings)])
        )


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
    strict_at = first_failure(strict, now)
    skew_at = first_failure(unbound, now)

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
    severity = severity_at(now, deadlines.warning_at, strict, unbound)
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
        earliest(r.deadlines for r in rrsets),
        rrsets,
        tuple(findings),
        obs.facts,
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
    deadlines = earliest(
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
    # What real validators said is no advice: a validator failing the zone counts.
    views, told = validator_views(
        obs.zone, obs.validators, expiry=expiry, severity=severity, chain=obs.chain
    )
    findings.extend(told)
    severity = worst([severity, *(f.severity for f in told)])
    # Lints are advice: listed with their severity, they leave the zone's state (and so the
    # alerts and the exit code) to what validators will do.
    lints = lint_zone(
        obs.zone, servers, obs.ds_records, now, policy.settings.powerdns_inception_skew
    )
    findings.extend(f for f in lints if f.code not in policy.ignore)
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
        validators=views,
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
    deadlines = earliest(v.deadlines for v, _ in groups)
    verdict = judge_coverage(cov, groups, deadlines, obs.servers, now)
    return verdict, [v for v, _ in groups]
