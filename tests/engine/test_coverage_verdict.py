"""The whole zone's verdict (engine.coverage via assess_zone): earliest over every RRset,
counts by state, the apex fallback, and servers compared with the transfer."""

from __future__ import annotations

import pytest

from watchdog.engine.assess import assess_zone
from watchdog.engine.coverage import APEX_UNCOVERED
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    CoverageObservation,
    RRsetObservation,
    ServerObservation,
    SignatureGroup,
    SignatureObservation,
    Verification,
    ZoneObservation,
)

DAY = 86400
I = 1_800_000_000  # 2027-01-15T08:00:00Z
E = I + 14 * DAY
ZONE = "example.com."
SOURCE = "192.0.2.53:53"


def sig(owner: str, rtype: str, expiration: int = E, inception: int = I) -> SignatureObservation:
    return SignatureObservation(
        owner, rtype, 1111, 13, inception, expiration, 3600, Verification.VALID
    )


def rrset(owner: str, rtype: str, expiration: int = E, inception: int = I) -> RRsetObservation:
    return RRsetObservation(owner, rtype, 3600, (sig(owner, rtype, expiration, inception),))


def apex_server(
    address: str = "192.0.2.1:53", serial: int = 7, *extra: RRsetObservation
) -> ServerObservation:
    return ServerObservation(
        address, serial=serial, rrsets=(rrset(ZONE, "SOA"), rrset(ZONE, "DNSKEY"), *extra)
    )


def transferred(
    *groups: tuple[RRsetObservation, int], sampled: tuple[RRsetObservation, ...] = ()
) -> CoverageObservation:
    return CoverageObservation(
        mode="transfer",
        wanted="transfer",
        source=SOURCE,
        serial=7,
        rrsets=sum(n for _, n in groups),
        signatures=sum(n for _, n in groups),
        names=3,
        groups=tuple(SignatureGroup(r, n) for r, n in groups),
        sampled=sampled,
    )


def zone(coverage: CoverageObservation | None, *servers: ServerObservation) -> ZoneObservation:
    return ZoneObservation(ZONE, servers or (apex_server(),), coverage=coverage)


def test_the_deadline_is_the_earliest_rrset_of_the_whole_zone() -> None:
    """A deep RRset expiring 10 days early sets the zone's deadline and names itself."""
    deep = rrset("a.b.c.example.com.", "TXT", expiration=E - 10 * DAY)
    report = assess_zone(zone(transferred((rrset(ZONE, "SOA"), 400), (deep, 12))), I + DAY)
    assert report.deadlines is not None
    assert report.deadlines.strict_fail_at == E - 10 * DAY + 1
    assert (report.deadlines.strict_fail.owner, report.deadlines.strict_fail.server) == (
        "a.b.c.example.com.",
        SOURCE,
    )
    assert report.coverage is not None and report.coverage.mode == "transfer"
    assert report.coverage.uncovered is None


def test_counts_by_state_and_the_finding_says_how_many() -> None:
    """412 RRsets, 12 warning: counts (400 ok, 12 warning), "12 of 412 RRsets expire before"."""
    deep = rrset("a.b.c.example.com.", "TXT", expiration=E - 10 * DAY)
    now = E - 10 * DAY - 3600  # inside the deep group's 10% warning window only
    report = assess_zone(zone(transferred((rrset(ZONE, "SOA"), 400), (deep, 12))), now)
    assert report.coverage is not None
    assert report.coverage.counts == (("ok", 400), ("warning", 12))
    (expiring,) = [f for f in report.findings if f.code == "signature_expiring"]
    assert expiring.owner == "a.b.c.example.com." and "12 of 412 RRsets expire before" in (
        expiring.message
    )
    assert report.severity is Severity.WARNING


def test_apex_mode_counts_what_was_asked_and_says_what_is_not_covered() -> None:
    """No coverage: mode apex, counts from the servers, and the uncovered sentence."""
    report = assess_zone(zone(None), I + DAY)
    assert report.coverage is not None
    assert (report.coverage.mode, report.coverage.rrsets, report.coverage.names) == ("apex", 2, 1)
    assert report.coverage.uncovered == APEX_UNCOVERED


def test_a_failed_transfer_falls_back_to_the_apex_with_its_finding() -> None:
    """A fallback observation is judged as apex mode; its fault is among the findings."""
    fault = Finding(
        "transfer_refused", Severity.WARNING, "refused; this check covers the apex only"
    )
    fallback = CoverageObservation(mode="apex", wanted="transfer", source=SOURCE, problems=(fault,))
    report = assess_zone(zone(fallback), I + DAY)
    assert report.coverage is not None
    assert (report.coverage.mode, report.coverage.wanted) == ("apex", "transfer")
    assert fault in report.findings and report.severity is Severity.WARNING


@pytest.mark.parametrize(
    ("serial", "served_expiration", "stale"),
    [
        (7, E - 5 * DAY, True),  # same serial, older signatures: stale
        (7, E, False),  # same serial, same signatures
        (6, E - 5 * DAY, False),  # another serial: stale_serial's business, not this
    ],
)
def test_a_server_with_the_same_serial_and_other_signatures_is_stale(
    serial: int, served_expiration: int, stale: bool
) -> None:
    """stale_signatures names the server only for the transfer's serial with other RRSIGs,
    and that server's deadline comes from what it served."""
    www = rrset("www.example.com.", "A")
    served = rrset("www.example.com.", "A", expiration=served_expiration)
    secondary = apex_server("192.0.2.2:53", serial, served)
    coverage = transferred((www, 10), sampled=(www,))
    report = assess_zone(zone(coverage, apex_server(), secondary), I + DAY)
    found = [f for f in report.findings if f.code == "stale_signatures"]
    assert [f.server for f in found] == (["192.0.2.2:53"] if stale else [])
    (verdict,) = [s for s in report.servers if s.address == "192.0.2.2:53"]
    assert verdict.deadlines is not None
    assert verdict.deadlines.strict_fail_at == min(E, served_expiration) + 1
