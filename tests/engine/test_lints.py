"""Zone hygiene lints as a table: what served facts say, at a fixed moment (engine/lints.py)."""

from __future__ import annotations

import pytest

from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.lints import LINTS
from watchdog.engine.observations import (
    ApexFacts,
    DelegationSigner,
    KeyFacts,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.errors import InvalidValueError

DAY = 86400
NOW = 1_800_000_000
KSK, ZSK = KeyFacts(1, 13, 257), KeyFacts(2, 13, 256)
CLEAN = ApexFacts(soa_expire=7 * DAY, keys=(KSK, ZSK))


def judge(
    facts: ApexFacts = CLEAN,
    ds: tuple[DelegationSigner, ...] = (),
    inception: int = NOW - DAY,
    policy: ZonePolicy | None = None,
) -> ZoneReport:
    """One server serving SOA (ZSK) and DNSKEY (KSK), 30 d signatures, TTL 1 h."""

    def rrset(rtype: str, key: KeyFacts) -> RRsetObservation:
        sig = SignatureObservation(
            "example.com.",
            rtype,
            key.key_tag,
            key.algorithm,
            inception,
            inception + 30 * DAY,
            3600,
            Verification.VALID,
        )
        return RRsetObservation("example.com.", rtype, 3600, (sig,))

    server = ServerObservation(
        "192.0.2.1:53", serial=1, rrsets=(rrset("SOA", ZSK), rrset("DNSKEY", KSK)), facts=facts
    )
    obs = ZoneObservation("example.com.", (server,), ds_records=ds)
    return assess_zone(obs, NOW, policy or ZonePolicy())


def codes(report: ZoneReport) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in report.findings if f.code in LINTS]


W, N = Severity.WARNING, Severity.OK


@pytest.mark.parametrize(
    ("facts", "ds", "inception", "expected"),
    [
        (CLEAN, (), NOW - DAY, []),
        (ApexFacts(40 * DAY, (KSK, ZSK)), (), NOW - DAY, [("soa_expire_beyond_signatures", W)]),
        (ApexFacts(DAY, (KSK, ZSK), nsec3=(0, "")), (), NOW - DAY, []),
        (ApexFacts(DAY, (KSK, ZSK), nsec3=(0, "ab")), (), NOW - DAY, [("nsec3_parameters", W)]),
        (CLEAN, (DelegationSigner(1, 13, 1),), NOW - DAY, [("algorithm_deprecated", W)]),
        (CLEAN, (DelegationSigner(1, 13, 3),), NOW - DAY, [("algorithm_deprecated", W)]),
        (CLEAN, (DelegationSigner(1, 13, 2),), NOW - DAY, []),
        (ApexFacts(DAY, (KSK, ZSK, KeyFacts(3, 13, 256))), (), NOW - DAY, [("key_inventory", N)]),
        (ApexFacts(DAY, (KSK, ZSK, KeyFacts(3, 13, 385))), (), NOW - DAY, []),  # revoked
        (ApexFacts(DAY, (KSK, ZSK), unmatched_cds=("1 13 2 00",)), (), NOW - DAY,
         [("key_inventory", W)]),
        (CLEAN, (), NOW + 61, [("signer_clock_ahead", W)]),
        (CLEAN, (), NOW + 60, []),  # PowerDNS Recursor still accepts it
    ],
)  # fmt: skip
def test_lint_table(
    facts: ApexFacts,
    ds: tuple[DelegationSigner, ...],
    inception: int,
    expected: list[tuple[str, Severity]],
) -> None:
    """Each served fact gives its lint, with its default severity, and nothing else."""
    assert codes(judge(facts, ds, inception)) == expected


def test_deprecated_signing_algorithm_is_named_with_the_reason() -> None:
    """The keys' algorithm (here 5: RSASHA1) is named (the signatures' are what sign)."""
    keys = (KeyFacts(1, 5, 257), KeyFacts(2, 5, 256))
    report = judge(ApexFacts(DAY, keys))
    # The signatures above are algorithm 13, so the algorithm-5 keys also sign nothing.
    found = {f.code: f.message for f in report.findings if f.code in LINTS}
    assert "algorithm 5 (RSASHA1)" in found["algorithm_deprecated"]
    assert "SHA-1 disabled" in found["algorithm_deprecated"]


def test_lints_leave_the_zone_ok() -> None:
    """Lints are advice: the zone's severity stays what validators will do."""
    report = judge(ApexFacts(40 * DAY, (KSK, ZSK), nsec3=(150, "ab")))
    assert {c for c, _ in codes(report)} == {"soa_expire_beyond_signatures", "nsec3_parameters"}
    assert report.severity is Severity.OK


def test_ignore_silences_a_lint_only() -> None:
    """A zone's ignore list drops that lint and keeps the others."""
    policy = ZonePolicy(ignore=frozenset({"nsec3_parameters"}))
    report = judge(ApexFacts(40 * DAY, (KSK, ZSK), nsec3=(5, "")), policy=policy)
    assert codes(report) == [("soa_expire_beyond_signatures", W)]


@pytest.mark.parametrize("code", ["signature_expiring", "stale_serial", "nope"])
def test_ignore_refuses_what_is_not_a_lint(code: str) -> None:
    """The expiry thresholds and other findings cannot be silenced."""
    with pytest.raises(InvalidValueError, match="not a lint code"):
        ZonePolicy(ignore=frozenset({code}))
