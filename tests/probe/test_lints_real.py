"""Zone hygiene lints on real signed zones served by NSD (ldns-signzone, dnssec-signzone).

Each zone is signed with a real signer to show one lint (NSEC3 with iterations and salt,
RSASHA1 keys, SOA EXPIRE longer than the validity, a standby key, CDS trouble, a signer clock
ahead), the prober fetches what the lint needs (NSEC3PARAM, CDS/CDNSKEY, SOA EXPIRE, DNSKEY
flags) and the engine judges it at a fixed moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
from lab import NsdServer, SignedZone, make_signed_zone, make_zone_keys
from lab.process import run_tool
from targets import zone_target

from watchdog.config.targets import ProbeSettings
from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.probe.prober import Prober

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
HOUR, DAY = 3600, 86400
ORIGIN = "lint.test."
_NO_RESOLVER = ("127.0.0.1", 9)  # nothing listens: discovery can never leave loopback
LINT_CODES = {
    "soa_expire_beyond_signatures",
    "ttl_beyond_refresh",
    "nsec3_parameters",
    "algorithm_deprecated",
    "key_inventory",
    "signer_clock_ahead",
}


@pytest.fixture(autouse=True)
def _lab(require_binaries: Callable[..., None]) -> None:
    require_binaries("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds", "dnssec-signzone")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Sequence[SignedZone]], list[str]]]:
    """Serve each zone file from its own NSD; the addresses; all stopped after the test."""
    with ExitStack() as stack:
        count = 0

        def start(zones: Sequence[SignedZone]) -> list[str]:
            nonlocal count
            addresses = []
            for zone in zones:
                count += 1
                nsd = stack.enter_context(NsdServer(tmp_path / f"nsd{count}", [zone]))
                addresses.append(f"{nsd.address}:{nsd.port}")
            return addresses

        yield start


def sign(tmp_path: Path, **options: object) -> SignedZone:
    """The lab zone (SOA EXPIRE 14 d, TTL 1 h) valid 30 d from NOW - 1 d unless told."""
    settings: dict[str, object] = {"inception": NOW - DAY, "expiration": NOW + 30 * DAY}
    settings.update(options)
    return make_signed_zone(tmp_path / "zones", ORIGIN, **settings)  # type: ignore[arg-type]


def check(
    addresses: Sequence[str], zone: SignedZone, policy: ZonePolicy | None = None
) -> ZoneReport:
    """Probe the servers (trust anchor: the zone's DS) and judge at NOW."""
    target = zone_target(ORIGIN, tuple(addresses), "\n".join(zone.ds))
    settings = ProbeSettings(timeout=1.0, retries=1, resolver=_NO_RESOLVER)

    async def probe() -> ZoneReport:
        async with Prober(settings) as prober:
            return assess_zone(await prober.probe(target), NOW, policy or ZonePolicy())

    return asyncio.run(probe())


def lints(report: ZoneReport) -> list[Finding]:
    return [f for f in report.findings if f.code in LINT_CODES]


def test_a_clean_zone_has_no_lints(tmp_path: Path, serve: Callable[..., list[str]]) -> None:
    """ECDSA, NSEC, 30 d validity, EXPIRE 14 d, TTL 1 h: nothing to say."""
    zone = sign(tmp_path)
    report = check(serve([zone]), zone)
    assert report.severity is Severity.OK
    assert lints(report) == []


@pytest.mark.parametrize("signer", ["ldns", "dnssec-signzone"])
def test_nsec3_iterations_and_salt(
    tmp_path: Path, serve: Callable[..., list[str]], signer: str
) -> None:
    """NSEC3 with 10 iterations and a salt is a warning (RFC 9276); the zone stays OK."""
    zone = sign(tmp_path, nsec3=True, nsec3_iterations=10, nsec3_salt="aabbccdd", signer=signer)
    report = check(serve([zone]), zone)
    [finding] = lints(report)
    assert (finding.code, finding.severity) == ("nsec3_parameters", Severity.WARNING)
    assert "10 extra iterations" in finding.message and "salt aabbccdd" in finding.message
    assert "CRITICAL" not in finding.message
    assert report.severity is Severity.OK  # advice, not a verdict


def test_nsec3_above_100_iterations_says_critical(
    tmp_path: Path, serve: Callable[..., list[str]]
) -> None:
    """Above 100 iterations the message warns that validators may fail the zone."""
    zone = sign(tmp_path, nsec3=True, nsec3_iterations=150)
    [finding] = lints(check(serve([zone]), zone))
    assert finding.code == "nsec3_parameters"
    assert "150 extra iterations" in finding.message and "CRITICAL" in finding.message


def test_rsasha1_keys_are_deprecated(tmp_path: Path, serve: Callable[..., list[str]]) -> None:
    """A zone signed with RSASHA1 gets algorithm_deprecated, naming SHA-1-disabled validators."""
    zone = sign(tmp_path, algorithm="RSASHA1")
    [finding] = lints(check(serve([zone]), zone))
    assert (finding.code, finding.severity) == ("algorithm_deprecated", Severity.WARNING)
    assert "algorithm 5 (RSASHA1)" in finding.message and "RHEL 9" in finding.message


def test_soa_expire_longer_than_the_validity(
    tmp_path: Path, serve: Callable[..., list[str]]
) -> None:
    """SOA EXPIRE 14 d with signatures valid for 7 d more: a cut-off secondary serves them
    expired; the zone's ignore list silences it."""
    zone = sign(tmp_path, expiration=NOW + 7 * DAY)
    addresses = serve([zone])
    [finding] = lints(check(addresses, zone))
    assert (finding.code, finding.severity) == ("soa_expire_beyond_signatures", Severity.WARNING)
    assert "SOA EXPIRE 14d exceeds the 7d of validity signatures have left now" in finding.message
    quiet = check(addresses, zone, ZonePolicy(ignore=frozenset({"soa_expire_beyond_signatures"})))
    assert lints(quiet) == []


def test_ttl_longer_than_a_tenth_of_the_lifetime(
    tmp_path: Path, serve: Callable[..., list[str]]
) -> None:
    """An 8 h validity with 1 h TTLs: caches outlive a tenth of the lifetime (a note)."""
    zone = sign(tmp_path, inception=NOW - HOUR, expiration=NOW + 7 * HOUR)
    found = {f.code: f for f in lints(check(serve([zone]), zone))}
    assert found["ttl_beyond_refresh"].severity is Severity.OK
    assert "TTL of 1h, longer than a tenth of the signature lifetime (48m)" in (
        found["ttl_beyond_refresh"].message
    )


def test_signer_clock_ahead(tmp_path: Path, serve: Callable[..., list[str]]) -> None:
    """Signatures whose inception is an hour ahead: signer_clock_ahead, beside not-yet-valid."""
    zone = sign(tmp_path, inception=NOW + HOUR)
    report = check(serve([zone]), zone)
    [finding] = lints(report)
    assert (finding.code, finding.severity) == ("signer_clock_ahead", Severity.WARNING)
    assert "is 1h in the future" in finding.message
    assert report.severity is Severity.STRICT_FAIL


def test_key_inventory_standby_key_and_two_sep_keys(
    tmp_path: Path, serve: Callable[..., list[str]]
) -> None:
    """A second KSK published but not signing: a rollover in progress and a key signing
    nothing, both notes."""
    standby = make_zone_keys(tmp_path / "standby", ORIGIN)
    records = [(standby.ksk.parent / f"{standby.ksk.name}.key").read_text().split(";")[0]]
    zone = sign(tmp_path, records=[r for r in records[0].splitlines() if "DNSKEY" in r])
    found = lints(check(serve([zone]), zone))
    assert {(f.code, f.severity) for f in found} == {("key_inventory", Severity.OK)}
    text = " | ".join(f.message for f in found)
    assert "signs nothing" in text and "2 SEP keys" in text


def test_cds_not_matching_and_absent_on_one_server(
    tmp_path: Path, serve: Callable[..., list[str]]
) -> None:
    """A CDS for a key the zone does not serve is a warning; so is CDS on one server only."""
    keys = make_zone_keys(tmp_path / "keys", ORIGIN)
    other = make_zone_keys(tmp_path / "other", ORIGIN)
    ds = run_tool(["ldns-key2ds", "-n", "-2", f"{other.ksk}.key"]).split()
    cds = f"@ 3600 IN CDS {' '.join(ds[ds.index('DS') + 1 :])}"
    with_cds = sign(tmp_path, keys=keys, records=[cds])
    without = sign(tmp_path, keys=keys)
    found = lints(check(serve([with_cds, without]), with_cds))
    messages = [f.message for f in found if f.severity is Severity.WARNING]
    assert all(f.code == "key_inventory" for f in found)
    assert any("match no DNSKEY" in m for m in messages)
    assert any("CDS/CDNSKEY absent on" in m for m in messages)
