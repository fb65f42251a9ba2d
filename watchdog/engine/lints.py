"""Zone hygiene lints: what is not failing yet, but makes failing likelier or later noticed.

Pure: servers' verdicts, the facts they served at the apex (ApexFacts) and ``now`` in, findings
out. Each lint is a finding code of ``LINTS`` with its default severity (``OK`` is a note); a
zone's ``ignore`` list silences lints, never the expiry thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import DelegationSigner, Verification
from watchdog.engine.timeutil import format_duration

if TYPE_CHECKING:  # assess calls lint_zone: a runtime import would be circular
    from watchdog.engine.assess import ServerVerdict

__all__ = [
    "LINTS",
    "lint_zone",
    "soa_expire_findings",
    "ttl_findings",
]

# The lint codes; each one's default severity is its registry severity (key_inventory: a note,
# but CDS/CDNSKEY trouble is a warning). README: "Zone hygiene lints".
LINTS: tuple[Code, ...] = (
    Code.SOA_EXPIRE_BEYOND_SIGNATURES,
    Code.TTL_BEYOND_REFRESH,
    Code.NSEC3_PARAMETERS,
    Code.ALGORITHM_DEPRECATED,
    Code.KEY_INVENTORY,
    Code.SIGNER_CLOCK_AHEAD,
)

# RFC 8624 3.1 (and its update, RFC 9904): MUST NOT (RSAMD5, DSA, DSA-NSEC3-SHA1, ECC-GOST) or
# NOT RECOMMENDED (RSASHA1, RSASHA1-NSEC3-SHA1) for signing.
_DEPRECATED_ALGORITHMS = {
    1: "RSAMD5",
    3: "DSA",
    5: "RSASHA1",
    6: "DSA-NSEC3-SHA1",
    7: "RSASHA1-NSEC3-SHA1",
    12: "ECC-GOST",
}
_SHA1_ALGORITHMS = frozenset({5, 7})
# RFC 8624 3.3: DS digest SHA-1 MUST NOT be generated, GOST R 34.11-94 MUST NOT.
_DEPRECATED_DIGESTS = {1: "SHA-1", 3: "GOST R 34.11-94"}
# RFC 9276 3.2: validators may treat NSEC3 with more iterations than they allow as insecure or
# fail it; 100 is below the limits Unbound, Knot Resolver and BIND have shipped (150 then lower).
_ITERATIONS_CRITICAL = 100
_SEP, _REVOKE = 0x0001, 0x0080


def lint_zone(
    zone: str,
    servers: Sequence[ServerVerdict],
    ds_records: Sequence[DelegationSigner],
    now: int,
    inception_skew: int,
) -> list[Finding]:
    """Every lint of one zone, told once each (the first server that shows it is named)."""
    findings = [
        *soa_expire_findings(zone, servers, now, {}),
        *ttl_findings(zone, servers, None),
        *_nsec3(zone, servers),
        *_algorithms(zone, servers, ds_records),
        *_keys(zone, servers),
        *_clock_ahead(servers, now, inception_skew),
    ]
    return list(dict.fromkeys(findings))


def _reachable(servers: Sequence[ServerVerdict]) -> list[ServerVerdict]:
    return [s for s in servers if s.reachable and s.facts is not None]


def soa_expire_findings(
    zone: str, servers: Sequence[ServerVerdict], now: int, refresh_left: Mapping[str, int]
) -> list[Finding]:
    """SOA EXPIRE longer than the validity signatures have left when the signer refreshes them
    (``refresh_left``, learned by the service) or, without a history, have left now: a
    secondary cut off from its primary would serve them after they expired (RFC 1035 3.3.13).
    Judged on the freshest server, so a stale secondary (its own finding) does not set it."""
    candidates = []
    for s in _reachable(servers):
        assert s.facts is not None
        if s.deadlines is None or s.facts.soa_expire is None:
            continue
        left = refresh_left.get(s.address)
        if left is None:
            left = s.deadlines.strict_fail.timeline.expiration - now
        candidates.append((left, s.facts.soa_expire, s.address))
    if not candidates:
        return []
    left, expire, address = max(candidates)
    if expire <= left:
        return []
    what = "left when the signer refreshes them" if refresh_left else "left now"
    return [
        Finding(
            Code.SOA_EXPIRE_BEYOND_SIGNATURES,
            Code.SOA_EXPIRE_BEYOND_SIGNATURES.severity,
            f"{zone}: SOA EXPIRE {format_duration(expire)} exceeds the "
            f"{format_duration(max(0, left))} of validity signatures have {what} ({address}): "
            "a secondary cut off from its primary would serve them expired",
            address,
            zone,
            "SOA",
        )
    ]


def ttl_findings(
    zone: str, servers: Sequence[ServerVerdict], interval: int | None
) -> list[Finding]:
    """An RRset TTL or RRSIG original TTL longer than a tenth of the signature lifetime, or than
    the learned refresh ``interval``: caches keep old signatures past the refresh (RFC 6781
    4.4.1)."""
    for s in _reachable(servers):
        for r in s.rrsets:
            for sig, t in r.signatures:
                ttl = max(r.ttl, sig.original_ttl)
                limit, what = t.lifetime // 10, "a tenth of the signature lifetime"
                if interval is not None and interval < limit:
                    limit, what = interval, "the learned refresh interval"
                if sig.verification is Verification.VALID and ttl > limit:
                    return [
                        Finding(
                            Code.TTL_BEYOND_REFRESH,
                            Code.TTL_BEYOND_REFRESH.severity,
                            f"{zone}: {r.owner} {r.rtype} has a TTL of {format_duration(ttl)}, "
                            f"longer than {what} ({format_duration(limit)}): caches keep old "
                            "signatures after a re-sign (RFC 6781 4.4.1)",
                            s.address,
                            r.owner,
                            r.rtype,
                        )
                    ]
    return []


def _nsec3(zone: str, servers: Sequence[ServerVerdict]) -> list[Finding]:
    for s in _reachable(servers):
        assert s.facts is not None
        nsec3 = s.facts.nsec3
        if nsec3 is None or (nsec3[0] == 0 and not nsec3[1]):
            continue
        iterations, salt = nsec3
        message = (
            f"{zone}: NSEC3 with {iterations} extra iterations and "
            f"{'salt ' + salt if salt else 'no salt'}; RFC 9276 3.1: use 0 iterations and "
            "no salt"
        )
        if iterations > _ITERATIONS_CRITICAL:
            message += (
                f"; CRITICAL: above {_ITERATIONS_CRITICAL} iterations validators may treat the "
                "zone as insecure or fail it (RFC 9276 3.2)"
            )
        severity = Code.NSEC3_PARAMETERS.severity
        return [Finding(Code.NSEC3_PARAMETERS, severity, message, s.address, zone, "NSEC3PARAM")]
    return []


def _algorithms(
    zone: str, servers: Sequence[ServerVerdict], ds_records: Sequence[DelegationSigner]
) -> list[Finding]:
    findings = []
    severity = Code.ALGORITHM_DEPRECATED.severity
    algorithms = sorted(
        {k.algorithm for s in _reachable(servers) for k in (s.facts.keys if s.facts else ())}
        & set(_DEPRECATED_ALGORITHMS)
    )
    for algorithm in algorithms:
        reason = "RFC 8624 3.1: not to be used for signing"
        if algorithm in _SHA1_ALGORITHMS:
            reason += (
                "; validators with SHA-1 disabled (RHEL 9's default crypto policy) treat "
                "the zone as insecure"
            )
        findings.append(
            Finding(
                Code.ALGORITHM_DEPRECATED,
                severity,
                f"{zone}: DNSKEY algorithm {algorithm} ({_DEPRECATED_ALGORITHMS[algorithm]}); "
                f"{reason}; roll to ECDSAP256SHA256 (13) or ED25519 (15)",
                None,
                zone,
                "DNSKEY",
            )
        )
    for digest in sorted({d.digest_type for d in ds_records} & set(_DEPRECATED_DIGESTS)):
        findings.append(
            Finding(
                Code.ALGORITHM_DEPRECATED,
                severity,
                f"{zone}: the parent has a DS with digest type {digest} "
                f"({_DEPRECATED_DIGESTS[digest]}); RFC 8624 3.3: publish a SHA-256 (2) DS "
                "and withdraw it",
                "parent",
                zone,
                "DS",
            )
        )
    return findings


def _keys(zone: str, servers: Sequence[ServerVerdict]) -> list[Finding]:
    findings: list[Finding] = []
    note = Code.KEY_INVENTORY.severity
    reachable = _reachable(servers)
    for s in reachable:
        facts, address = s.facts, s.address
        assert facts is not None
        signing = {
            (sig.key_tag, sig.algorithm)
            for r in s.rrsets
            for sig, _ in r.signatures
            if sig.verification is Verification.VALID
        }
        live = [k for k in facts.keys if not k.flags & _REVOKE]
        idle = sorted(k.key_tag for k in live if (k.key_tag, k.algorithm) not in signing)
        if idle and signing:
            tags = ", ".join(str(t) for t in idle)
            findings.append(
                Finding(
                    Code.KEY_INVENTORY,
                    note,
                    f"{zone}: DNSKEY {tags} signs nothing on {address} (a key published "
                    "ahead of a rollover, or one left behind)",
                    address,
                    zone,
                    "DNSKEY",
                )
            )
        sep = sorted(k.key_tag for k in live if k.flags & _SEP)
        if len(sep) > 1:
            findings.append(
                Finding(
                    Code.KEY_INVENTORY,
                    note,
                    f"{zone}: {len(sep)} SEP keys ({', '.join(str(t) for t in sep)}): a key "
                    "rollover in progress; make sure it finishes",
                    address,
                    zone,
                    "DNSKEY",
                )
            )
        if facts.unmatched_cds:
            findings.append(
                Finding(
                    Code.KEY_INVENTORY,
                    Severity.WARNING,
                    f"{zone}: {address} publishes CDS/CDNSKEY that match no DNSKEY it serves: "
                    f"{facts.unmatched_cds[0]}; the parent would install a DS that breaks the "
                    "chain (RFC 7344 4.1)",
                    address,
                    zone,
                    "CDS",
                )
            )
        if findings:
            break  # told by the first server that shows it; the others usually agree
    findings.extend(_cds_across(zone, reachable))
    return findings


def _cds_across(zone: str, reachable: Sequence[ServerVerdict]) -> list[Finding]:
    """CDS/CDNSKEY published by some servers and not others, or differently (RFC 7344 4)."""
    facts = [(s.address, s.facts) for s in reachable if s.facts is not None]
    served = {(f.cds, f.cdnskey) for _, f in facts}
    if len(served) < 2:
        return []
    without = [address for address, f in facts if not (f.cds or f.cdnskey)]
    if without:
        message = f"CDS/CDNSKEY absent on {', '.join(without)} while other servers publish them"
    else:
        message = "CDS/CDNSKEY differ across servers"
    return [
        Finding(
            Code.KEY_INVENTORY,
            Severity.WARNING,
            f"{zone}: {message}; a parent polling them (RFC 7344, RFC 8078) sees a moving target",
            without[0] if without else None,
            zone,
            "CDS",
        )
    ]


def _clock_ahead(servers: Sequence[ServerVerdict], now: int, skew: int) -> list[Finding]:
    """A newest inception more than PowerDNS's inception skew ahead of now: the signer's clock
    runs ahead; strict validators reject those signatures until then (RFC 4035 5.3.1)."""
    for s in _reachable(servers):
        newest = max(
            (
                t.inception
                for r in s.rrsets
                for sig, t in r.signatures
                if sig.verification is Verification.VALID and not t.inverted
            ),
            default=None,
        )
        if newest is not None and newest > now + skew:
            address = s.address
            return [
                Finding(
                    Code.SIGNER_CLOCK_AHEAD,
                    Code.SIGNER_CLOCK_AHEAD.severity,
                    f"{address}: the newest signature's inception is "
                    f"{format_duration(newest - now)} in the future (more than the {skew} s "
                    "PowerDNS Recursor tolerates): the signer's clock runs ahead; strict "
                    "validators reject those signatures until then",
                    address,
                )
            ]
    return []
