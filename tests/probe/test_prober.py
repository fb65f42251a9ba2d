"""The prober against real NSD servers on 127.0.0.0/8, zones signed by ldns/dnssec-signzone.

Every zone here is signed by a real signer with chosen dates and served by a real NSD; the
prober's observation then goes through the engine (assess_zone), so each test checks what an
operator would read. Servers are configured explicitly (no discovery), and the resolver is a
closed loopback port so nothing can ever reach the system resolver.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest
from lab import (
    ALGORITHMS,
    NsdServer,
    SignedZone,
    free_port,
    make_signed_zone,
    make_unsigned_zone,
    make_zone_keys,
)
from targets import zone_target

from watchdog.config.targets import ProbeSettings, ZoneTarget, parse_server
from watchdog.engine.assess import assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    Verification,
    ZoneObservation,
)
from watchdog.probe import dnsio
from watchdog.probe.prober import Prober

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z: signatures are judged at this fixed moment
DAY = 86400
ORIGIN = "example.test."
# Nothing listens here: any accidental discovery fails at once instead of leaving loopback.
_NO_RESOLVER = ("127.0.0.1", 9)


@pytest.fixture(autouse=True)
def _lab(require_binaries: Callable[..., None]) -> None:
    require_binaries("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., NsdServer]]:
    """Start NSD instances serving zones; all are stopped at the end of the test."""
    with ExitStack() as stack:
        count = 0

        def start(zones: Sequence[object], address: str = "127.0.0.1") -> NsdServer:
            nonlocal count
            count += 1
            server = NsdServer(tmp_path / f"nsd{count}", zones, address=address)  # type: ignore[arg-type]
            return stack.enter_context(server)

        yield start


def sign(tmp_path: Path, **options: object) -> SignedZone:
    """The lab's standard zone, signed valid from NOW - 1 d to NOW + 14 d unless told."""
    settings: dict[str, object] = {"inception": NOW - DAY, "expiration": NOW + 14 * DAY}
    settings.update(options)
    return make_signed_zone(tmp_path / "zones", ORIGIN, **settings)  # type: ignore[arg-type]


def where(server: NsdServer) -> str:
    return f"{server.address}:{server.port}"


async def probe(
    *addresses: str,
    zone: str = ORIGIN,
    anchor: Sequence[str] | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    seconds: float = 2.0,
    retries: int = 2,
) -> ZoneObservation:
    settings = ProbeSettings(timeout=seconds, retries=retries, resolver=_NO_RESOLVER)
    target = zone_target(
        zone,
        servers=addresses,
        trust_anchor="\n".join(anchor) if anchor else None,
        extra=extra,
    )
    async with Prober(settings) as prober:
        return await prober.probe(target)


def rrset(server: ServerObservation, rtype: str, owner: str = ORIGIN) -> RRsetObservation:
    found = [r for r in server.rrsets if r.rtype == rtype and r.owner == owner]
    assert len(found) == 1, f"{owner} {rtype} not observed once on {server.address}"
    return found[0]


def codes(findings: Sequence[Finding]) -> set[str]:
    return {f.code for f in findings}


# -- healthy zones ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "signer", "nsec3", "optout"),
    [
        ("ECDSAP256SHA256", "ldns", False, False),
        ("ECDSAP256SHA256", "ldns", True, False),
        ("ECDSAP256SHA256", "dnssec-signzone", True, True),
        ("RSASHA1", "ldns", False, False),
        ("RSASHA256", "dnssec-signzone", False, False),
        ("RSASHA512", "ldns", True, False),
        ("ECDSAP384SHA384", "dnssec-signzone", False, False),
        ("ED25519", "ldns", True, True),
    ],
)
async def test_a_healthy_zone_verifies_on_its_server(
    tmp_path: Path,
    servers: Callable[..., NsdServer],
    algorithm: str,
    signer: str,
    nsec3: bool,
    optout: bool,
) -> None:
    """SOA, DNSKEY, NS and the NSEC/NSEC3 proof all verify; the deadline is E + 1."""
    zone = sign(tmp_path, algorithm=algorithm, signer=signer, nsec3=nsec3, optout=optout)
    nsd = servers([zone])
    obs = await probe(where(nsd), anchor=zone.ds)

    assert obs.chain is ChainStatus.TRUST_ANCHOR and obs.signed
    (server,) = obs.servers
    assert server.address == where(nsd) and server.reachable and not server.problems
    assert server.serial == zone.serial
    for rtype in ("SOA", "DNSKEY", "NS"):
        assert rrset(server, rtype).signatures
    denial = [r for r in server.rrsets if r.rtype == ("NSEC3" if nsec3 else "NSEC")]
    assert denial, "no proof of non-existence observed"
    signatures = [s for r in server.rrsets for s in r.signatures]
    for sig in signatures:
        if sig.verification is not Verification.VALID:
            # dnssec-signzone also signs the DNSKEY RRset with the ZSK, which no DS points at.
            assert (sig.rtype, sig.verification) == ("DNSKEY", Verification.NO_KEY), sig
            assert "not matched by the trust anchor" in sig.reason
    assert all(
        any(s.verification is Verification.VALID for s in r.signatures) for r in server.rrsets
    )
    assert {s.algorithm for s in signatures} == {ALGORITHMS[algorithm]}
    assert {(s.inception, s.expiration) for s in signatures} == {(zone.inception, zone.expiration)}

    report = assess_zone(obs, NOW)
    assert report.severity is Severity.OK
    assert report.deadlines is not None
    assert report.deadlines.strict_fail_at == zone.expiration + 1


async def test_configured_extra_names_are_watched(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """An extra (name, type) is observed and verified; a missing one is reported, not fatal."""
    zone = sign(tmp_path)
    nsd = servers([zone])
    obs = await probe(where(nsd), anchor=zone.ds, extra=(("www", "A"), ("nope", "TXT")))

    (server,) = obs.servers
    www = rrset(server, "A", "www.example.test.")
    assert [s.verification for s in www.signatures] == [Verification.VALID]
    (missing,) = [p for p in server.problems if p.owner == "nope.example.test."]
    assert missing.code == "extra_nxdomain" and missing.rtype == "TXT"
    assert assess_zone(obs, NOW).severity is Severity.UNKNOWN


async def test_an_unsigned_zone_is_reported_as_not_signed(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """No DNSKEY anywhere, no DS, no anchor: not signed, nothing to watch, not bogus."""
    nsd = servers([make_unsigned_zone(tmp_path / "zones", ORIGIN, serial=7)])
    obs = await probe(where(nsd))

    assert not obs.signed and obs.chain is ChainStatus.NOT_CHECKED
    (server,) = obs.servers
    assert server.serial == 7 and server.rrsets == () and not server.problems
    report = assess_zone(obs, NOW)
    assert "not_signed" in codes(report.findings)
    assert report.severity is Severity.UNKNOWN


# -- several servers ----------------------------------------------------------------------------


async def test_the_stale_server_sets_the_zone_deadline(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """Two addresses, one serving yesterday's copy: the report names it and its deadline wins."""
    keys = make_zone_keys(tmp_path / "keys", ORIGIN)
    fresh = sign(tmp_path, keys=keys, serial=2, expiration=NOW + 14 * DAY)
    stale = sign(tmp_path, keys=keys, serial=1, expiration=NOW + 3 * DAY)
    good = servers([fresh], address="127.0.0.1")
    old = servers([stale], address="127.0.0.2")
    obs = await probe(where(good), where(old), anchor=fresh.ds)

    assert {s.address: s.serial for s in obs.servers} == {where(good): 2, where(old): 1}
    report = assess_zone(obs, NOW)
    (stale_finding,) = [f for f in report.findings if f.code == "stale_serial"]
    assert stale_finding.server == where(old)
    assert report.deadlines is not None
    assert report.deadlines.strict_fail.server == where(old)
    assert report.deadlines.strict_fail_at == stale.expiration + 1
    # Warn 10 % of the 4-day lifetime before the stale copy expires, not the fresh one.
    assert report.deadlines.warning_at == stale.expiration - 4 * DAY // 10
    assert assess_zone(obs, stale.expiration - DAY // 4).severity is Severity.WARNING


async def test_a_silent_server_times_out_and_the_others_still_count(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """An address that swallows every query: one UNREACHABLE timeout finding after all
    attempts, and the zone's deadline still comes from the server that answered."""
    zone = sign(tmp_path)
    live = servers([zone])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: datagrams vanish, no ICMP error
        dead = f"127.0.0.1:{silent.getsockname()[1]}"
        obs = await probe(where(live), dead, anchor=zone.ds, seconds=0.3, retries=1)

    by_address = {s.address: s for s in obs.servers}
    assert by_address[where(live)].reachable
    down = by_address[dead]
    assert not down.reachable and down.serial is None and down.rrsets == ()
    assert [(p.code, p.severity) for p in down.problems] == [("timeout", Severity.UNREACHABLE)]
    assert "2 attempts" in down.problems[0].message
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.UNREACHABLE
    assert report.deadlines is not None and report.deadlines.strict_fail.server == where(live)


async def test_a_silent_shared_server_is_not_asked_again_for_every_zone() -> None:
    """Twenty zones on one dead address: every zone reports the timeout, but once the first
    questions went unanswered the queued ones are not sent, so no zone waits in line for the
    others' full timeout budgets."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        settings = ProbeSettings(
            timeout=0.2, retries=1, per_server_concurrency=2, resolver=_NO_RESOLVER
        )
        targets = [zone_target(f"z{i}.test.", servers=(address,)) for i in range(20)]
        async with Prober(settings) as prober:
            results = await prober.probe_many(targets)
        received = 0
        while True:
            try:
                silent.recv(2048)
            except BlockingIOError:
                break
            received += 1

    for obs in results:
        (server,) = obs.servers
        assert [(p.code, p.severity) for p in server.problems] == [
            ("timeout", Severity.UNREACHABLE)
        ]
    # Two questions at a time (per_server_concurrency), two attempts each; nothing after.
    assert 0 < received <= 2 * 2
    assert sum("not asked" in r.servers[0].problems[0].message for r in results) >= 18


async def test_a_stopped_server_is_connection_refused(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """NSD stopped: the port-unreachable comes back at once as connection_refused."""
    zone = sign(tmp_path)
    nsd = servers([zone])
    address = where(nsd)
    nsd.stop()
    obs = await probe(address, anchor=zone.ds)

    (down,) = obs.servers
    assert not down.reachable
    assert [(p.code, p.severity) for p in down.problems] == [
        ("connection_refused", Severity.UNREACHABLE)
    ]
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.UNREACHABLE
    assert "all_unreachable" in codes(report.findings)


async def test_a_server_without_dnskey_in_a_signed_zone_is_bogus(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A secondary serving an unsigned copy: no_dnskey and unsigned RRsets there, BOGUS."""
    zone = sign(tmp_path)
    signed = servers([zone], address="127.0.0.1")
    plain = servers([make_unsigned_zone(tmp_path / "plain", ORIGIN)], address="127.0.0.2")
    obs = await probe(where(signed), where(plain), anchor=zone.ds)

    assert obs.signed and obs.chain is ChainStatus.TRUST_ANCHOR
    unsigned = next(s for s in obs.servers if s.address == where(plain))
    assert "no_dnskey" in codes(unsigned.problems)
    assert "denial_missing" in codes(unsigned.problems)
    assert rrset(unsigned, "SOA").signatures == ()
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.BOGUS
    verdict = next(s for s in report.servers if s.address == where(plain))
    assert "rrset_unsigned" in codes(verdict.findings)


# -- bogus zones --------------------------------------------------------------------------------


def _edit(zone: SignedZone, change: Callable[[dns.zone.Zone], None]) -> SignedZone:
    """Rewrite the signed zone file in place (NSD reads it at start)."""
    parsed = dns.zone.from_file(str(zone.zone_file), origin=zone.origin, relativize=False)
    change(parsed)
    parsed.to_file(str(zone.zone_file), relativize=False)
    return zone


def _flip_signature(zone: dns.zone.Zone, owner: str, covered: dns.rdatatype.RdataType) -> None:
    node = zone.find_node(owner)
    sigs = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covered)
    (rrsig,) = list(sigs)
    signature = bytearray(rrsig.signature)
    signature[10] ^= 0xFF
    sigs.clear()
    sigs.add(rrsig.replace(signature=bytes(signature)))


async def test_a_tampered_signature_is_bogus_with_its_reason(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """One damaged RRSIG (www A): that signature is BOGUS, the rest still VALID."""
    zone = _edit(sign(tmp_path), lambda z: _flip_signature(z, "www." + ORIGIN, dns.rdatatype.A))
    nsd = servers([zone])
    obs = await probe(where(nsd), anchor=zone.ds, extra=(("www", "A"),))

    (server,) = obs.servers
    (bad,) = rrset(server, "A", "www.example.test.").signatures
    assert bad.verification is Verification.BOGUS and "does not verify" in bad.reason
    assert all(s.verification is Verification.VALID for s in rrset(server, "SOA").signatures)
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.BOGUS
    (finding,) = [f for f in report.servers[0].findings if f.code == "signature_bogus"]
    assert finding.owner == "www.example.test." and "does not verify" in finding.message


async def test_a_dnskey_set_no_ds_matches_breaks_the_chain(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A trust anchor for other keys: chain BROKEN, DNSKEY signature NO_KEY, zone BOGUS."""
    zone = sign(tmp_path)
    other = make_signed_zone(tmp_path / "other", ORIGIN, inception=NOW, expiration=NOW + DAY)
    nsd = servers([zone])
    obs = await probe(where(nsd), anchor=other.ds)

    assert obs.chain is ChainStatus.BROKEN
    (server,) = obs.servers
    dnskey_sigs = rrset(server, "DNSKEY").signatures
    assert [s.verification for s in dnskey_sigs] == [Verification.NO_KEY]
    assert "not matched by the trust anchor" in dnskey_sigs[0].reason
    # The zone's own data still verifies with its own (untrusted) keys.
    assert all(s.verification is Verification.VALID for s in rrset(server, "SOA").signatures)
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.BOGUS
    assert "ds_mismatch" in codes(report.findings)


async def test_an_rrset_served_without_rrsig_is_bogus(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A signed zone whose NS RRset lost its RRSIG: observed with no signatures, BOGUS."""

    def strip(z: dns.zone.Zone) -> None:
        z.find_node(ORIGIN).delete_rdataset(
            dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.NS
        )

    zone = _edit(sign(tmp_path), strip)
    nsd = servers([zone])
    obs = await probe(where(nsd), anchor=zone.ds)

    (server,) = obs.servers
    assert rrset(server, "NS").signatures == ()
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.BOGUS
    (finding,) = [f for f in report.servers[0].findings if f.code == "rrset_unsigned"]
    assert finding.rtype == "NS"


# -- algorithm rollover -------------------------------------------------------------------------


def _merge_signatures(first: SignedZone, second: SignedZone) -> Path:
    """One zone file carrying both signers' RRSIGs on every RRset (a double-signed zone)."""
    merged = dns.zone.from_file(str(first.zone_file), origin=ORIGIN, relativize=False)
    extra = dns.zone.from_file(str(second.zone_file), origin=ORIGIN, relativize=False)
    for name, rdataset in extra.iterate_rdatasets():
        if rdataset.rdtype != dns.rdatatype.RRSIG:
            continue
        target = merged.find_rdataset(name, dns.rdatatype.RRSIG, rdataset.covers, create=True)
        target.update(rdataset)
    path = first.zone_file.with_name("zone.double-signed")
    merged.to_file(str(path), relativize=False)
    return path


async def test_mid_algorithm_rollover_the_later_signature_carries_each_rrset(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """RSASHA256 and ECDSAP256 signatures on every RRset: both verify; each RRset lives until
    the later one expires, and the earlier one is reported as expiring early."""
    old_keys = make_zone_keys(tmp_path / "keys", ORIGIN, "RSASHA256")
    new_keys = make_zone_keys(tmp_path / "keys", ORIGIN, "ECDSAP256SHA256")
    old_dnskeys = [line for path in old_keys.key_files for line in _key_lines(path)]
    new_dnskeys = [line for path in new_keys.key_files for line in _key_lines(path)]
    old = sign(
        tmp_path, keys=old_keys, algorithm="RSASHA256", expiration=NOW + 3 * DAY,
        records=new_dnskeys,
    )  # fmt: skip
    new = sign(
        tmp_path, keys=new_keys, algorithm="ECDSAP256SHA256", expiration=NOW + 20 * DAY,
        records=old_dnskeys,
    )  # fmt: skip

    class Double:
        origin = ORIGIN
        zone_file = _merge_signatures(old, new)

    nsd = servers([Double()])
    obs = await probe(where(nsd), anchor=[*old.ds, *new.ds])

    (server,) = obs.servers
    for observed in server.rrsets:
        assert {s.algorithm for s in observed.signatures} == {8, 13}, observed
        assert all(s.verification is Verification.VALID for s in observed.signatures)
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.OK
    assert report.deadlines is not None
    assert report.deadlines.strict_fail_at == new.expiration + 1
    assert report.deadlines.strict_fail.signature.algorithm == 13
    assert "signature_expires_early" in codes(report.servers[0].findings)
    # Once the RSA signatures are past, nothing breaks: the ECDSA ones carry every RRset.
    assert assess_zone(obs, old.expiration + DAY).severity is Severity.OK


def _key_lines(path: Path) -> list[str]:
    return [
        line for line in path.read_text().splitlines() if line.strip() and not line.startswith(";")
    ]


# -- failures a real server can produce ---------------------------------------------------------


async def test_a_zone_the_server_does_not_serve_is_refused(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """NSD answers REFUSED for a zone it does not have: a usable answer never came."""
    nsd = servers([sign(tmp_path)])
    obs = await probe(where(nsd), zone="other.test.")

    (server,) = obs.servers
    assert server.reachable and server.serial is None
    assert [(p.code, p.severity) for p in server.problems] == [("refused", Severity.UNREACHABLE)]
    assert "REFUSED" in server.problems[0].message
    assert assess_zone(obs, NOW).severity is Severity.UNREACHABLE


async def test_a_server_that_only_delegates_the_zone_is_lame(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A parent server asked for its child's SOA answers with a referral (AA=0): lame."""
    parent = make_unsigned_zone(
        tmp_path / "zones",
        "parent.test.",
        records=["child IN NS ns1.child", "ns1.child IN A 127.0.0.1"],
    )
    nsd = servers([parent])
    obs = await probe(where(nsd), zone="child.parent.test.")

    (server,) = obs.servers
    assert [(p.code, p.severity) for p in server.problems] == [("lame", Severity.UNREACHABLE)]
    assert "AA bit" in server.problems[0].message


async def test_an_unreachable_address_family_is_reported_once(
    tmp_path: Path, servers: Callable[..., NsdServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host without IPv6 reports 'IPv6 unreachable' once per zone, not a timeout per server."""
    monkeypatch.setattr(dnsio, "family_reachable", lambda host, port: ":" not in host)
    zone = sign(tmp_path)
    nsd = servers([zone])
    closed = free_port()
    obs = await probe(where(nsd), f"[::1]:{closed}", f"[::1]:{closed + 1}", anchor=zone.ds)

    assert [s.address for s in obs.servers] == [where(nsd)]
    (family,) = [p for p in obs.problems if p.code == "family_unreachable"]
    assert "IPv6" in family.message and f"[::1]:{closed + 1}" in family.message
    assert assess_zone(obs, NOW).severity is Severity.OK


async def test_probe_many_keeps_order_and_isolates_bad_targets(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """Several zones at once: results in order; a bad target is a finding, not an exception.

    (Servers, anchors and extra names come parsed: their bad text is refused before a target
    exists, tests/config/test_targets.py; a zone name is still the target's own text.)"""
    zone = sign(tmp_path)
    nsd = servers([zone])
    targets = [
        zone_target(ORIGIN, servers=(where(nsd),)),
        ZoneTarget("bad..zone", servers=(parse_server(where(nsd)),)),
        zone_target(ORIGIN, servers=(where(nsd),)),
    ]
    async with Prober(ProbeSettings(resolver=_NO_RESOLVER)) as prober:
        results = await prober.probe_many(targets)

    assert [r.zone for r in results] == [t.zone for t in targets]
    assert results[0].servers[0].serial == zone.serial
    assert results[2].servers[0].serial == zone.serial
    assert results[1].servers == ()
    assert [p.code for p in results[1].problems] == ["invalid_target"]
    assert '"bad..zone"' in results[1].problems[0].message
