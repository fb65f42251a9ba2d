"""The demo signer and authoritative server: signed answers, denial proofs, truncation, faults.

Every server here listens on 127.0.0.1 and is queried explicitly there; signatures are checked
with dnspython's own validator, and, when installed, with ldns-verify-zone, dig/kdig and Unbound.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from watchdog.demo.authserver import AuthServer
from watchdog.demo.faults import Fault, FaultKind, Transport
from watchdog.demo.signer import DEMO_RECORDS, ZoneKeys, ds_records, make_keys, sign_zone
from watchdog.errors import InvalidValueError

ORIGIN = dns.name.from_text("example.test.")
NOW = int(time.time())
INCEPTION, EXPIRATION = NOW - 3600, NOW + 86400  # valid now, for the real tools too
INSIDE = INCEPTION + 60
HOST = "127.0.0.1"
QUICK = 0.3  # client timeout where the expected outcome is no answer at all
BIG_TXT = "".join(f'big 300 IN TXT "{i:03d}{"x" * 200}"\n' for i in range(8))


@pytest.fixture(scope="module")
def keys() -> ZoneKeys:
    """One key pair for the module: generation is not what these tests are about."""
    return make_keys()


def signed(keys: ZoneKeys, nsec: str | None = "nsec", extra: str = "", **kw: Any) -> dns.zone.Zone:
    return sign_zone(ORIGIN, DEMO_RECORDS + extra, keys, INCEPTION, EXPIRATION, nsec, **kw)


@pytest.fixture
async def server(keys: ZoneKeys) -> AsyncIterator[AuthServer]:
    """The demo zone with NSEC, plus a TXT RRset too big for 512 bytes."""
    async with AuthServer(signed(keys, extra=BIG_TXT)) as running:
        yield running


async def ask(
    server: AuthServer,
    name: str,
    rtype: str = "A",
    *,
    tcp: bool = False,
    wait: float = 2.0,
    dnssec: bool = True,
    **kw: Any,
) -> dns.message.Message:
    query = dns.message.make_query(name, rtype, want_dnssec=dnssec, use_edns=0 if dnssec else -1)
    if tcp:
        return await dns.asyncquery.tcp(query, HOST, port=server.port, timeout=wait)
    return await dns.asyncquery.udp(query, HOST, port=server.port, timeout=wait, **kw)


async def served_dnskeys(server: AuthServer) -> dns.rrset.RRset:
    response = await ask(server, "example.test.", "DNSKEY")
    return response.find_rrset(response.answer, ORIGIN, dns.rdataclass.IN, dns.rdatatype.DNSKEY)


def validate_all(section: list[dns.rrset.RRset], dnskeys: dns.rrset.RRset, now: int) -> int:
    """Validate every RRset of ``section`` with its RRSIGs; returns how many were checked."""
    sigs = {(r.name, r.covers): r for r in section if r.rdtype == dns.rdatatype.RRSIG}
    data = [r for r in section if r.rdtype != dns.rdatatype.RRSIG]
    for rrset in data:
        dns.dnssec.validate(rrset, sigs[(rrset.name, rrset.rdtype)], {ORIGIN: dnskeys}, now=now)
    return len(data)


def covers(owner: Any, following: Any, value: Any) -> bool:
    """Whether (owner, following) covers ``value``; the last link wraps round (RFC 4034 4.1.1)."""
    if owner < following:
        return owner < value < following
    return value > owner or value < following


def rrsigs(zone: dns.zone.Zone) -> list[Any]:
    return [
        rd for _, rds in zone.iterate_rdatasets() if rds.rdtype == dns.rdatatype.RRSIG for rd in rds
    ]


def nsec3_links(response: dns.message.Message) -> dict[str, str]:
    """Owner hash -> next hash of the NSEC3s of the authority section."""
    return {
        r.name.labels[0].decode().upper(): base64.b32hexencode(r[0].next).decode()
        for r in response.authority
        if r.rdtype == dns.rdatatype.NSEC3
    }


def nsec3_hash(name: str) -> str:
    return dns.dnssec.nsec3_hash(name, None, 0, "SHA1")


# --- the signer ------------------------------------------------------------------------------


def test_ksk_signs_dnskey_and_zsk_signs_every_other_rrset(keys: ZoneKeys) -> None:
    """Every RRset has exactly one RRSIG, by the KSK for DNSKEY and by the ZSK otherwise."""
    zone = signed(keys, "nsec3")
    ksk, zsk = dns.dnssec.key_id(keys.ksk), dns.dnssec.key_id(keys.zsk)
    for name, rdataset in zone.iterate_rdatasets():
        if rdataset.rdtype == dns.rdatatype.RRSIG:
            continue
        sigs = zone.get_rdataset(name, dns.rdatatype.RRSIG, rdataset.rdtype)
        assert sigs is not None and len(sigs) == 1, (name, rdataset.rdtype)
        expected = ksk if rdataset.rdtype == dns.rdatatype.DNSKEY else zsk
        assert sigs[0].key_tag == expected


def test_resigning_a_signed_zone_keeps_keys_and_moves_dates(keys: ZoneKeys) -> None:
    """Re-signing (the demo's recovery) keeps the DNSKEYs and replaces every RRSIG's dates."""
    first = signed(keys)
    again = sign_zone(ORIGIN, first, keys, NOW, NOW + 7200, "nsec", serial=2)
    assert again.get_rdataset(ORIGIN, "DNSKEY") == first.get_rdataset(ORIGIN, "DNSKEY")
    soa = again.get_rdataset(ORIGIN, "SOA")
    assert soa is not None and soa[0].serial == 2
    sigs = rrsigs(again)
    assert len(sigs) == len(rrsigs(first)) > 10
    assert {(s.inception, s.expiration) for s in sigs} == {(NOW, NOW + 7200)}


@pytest.mark.parametrize(
    ("records", "kw", "names"),
    [
        (DEMO_RECORDS + "* 300 IN A 127.0.0.1\n", {}, "wildcard"),
        (DEMO_RECORDS + "sub 300 IN NS ns1.sub\n", {}, "delegation"),
        ("www 300 IN A 127.0.0.1\n", {}, "SOA"),
        (DEMO_RECORDS, {"nsec": "nsec5"}, "nsec5"),
        (DEMO_RECORDS, {"tampered": [("nowhere", "A")]}, "nowhere"),
    ],
)
def test_sign_zone_rejects_what_it_cannot_sign(
    keys: ZoneKeys, records: str, kw: dict[str, Any], names: str
) -> None:
    """Unsupported or misspelt input is a clear error naming the problem, not a traceback."""
    with pytest.raises(InvalidValueError, match=names):
        sign_zone(ORIGIN, records, keys, INCEPTION, EXPIRATION, **kw)


def test_make_keys_rejects_unknown_algorithm() -> None:
    """An algorithm we cannot generate is named in the error together with the choices."""
    with pytest.raises(InvalidValueError, match=r"RSAMD5.*ECDSAP256SHA256"):
        make_keys("RSAMD5")


@pytest.mark.parametrize("algorithm", ["ECDSAP256SHA256", "ECDSAP384SHA384", "ED25519"])
@pytest.mark.parametrize("nsec", ["nsec", "nsec3"])
def test_ldns_verify_zone_accepts_the_signed_zone(
    tmp_path: Path, algorithm: str, nsec: str, require_binaries: Callable[..., None]
) -> None:
    """ldns-verify-zone checks every signature and the NSEC/NSEC3 chain of the zone text."""
    require_binaries("ldns-verify-zone")
    path = tmp_path / "zone"
    path.write_text(
        signed(make_keys(algorithm), nsec, extra="a.b 300 IN A 127.0.0.2\n").to_text(
            relativize=False
        )
    )
    done = subprocess.run(
        ["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ldns_verify_zone_rejects_a_tampered_signature(
    tmp_path: Path, keys: ZoneKeys, require_binaries: Callable[..., None]
) -> None:
    """A tampered RRSIG really is bogus for an independent verifier."""
    require_binaries("ldns-verify-zone")
    path = tmp_path / "zone"
    path.write_text(signed(keys, tampered=[("www", "A")]).to_text(relativize=False))
    done = subprocess.run(
        ["ldns-verify-zone", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0


# --- honest answers --------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_answer_carries_rrsig_that_verifies(server: AuthServer, tcp: bool) -> None:
    """A DO query gets an authoritative answer whose RRSIG verifies with the served DNSKEY."""
    response = await ask(server, "www.example.test.", "A", tcp=tcp)
    assert response.flags & dns.flags.AA
    assert response.ednsflags & dns.flags.DO
    dnskeys = await served_dnskeys(server)
    assert validate_all(response.answer, dnskeys, INSIDE) == 1
    keys_response = await ask(server, "example.test.", "DNSKEY", tcp=tcp)
    assert validate_all(keys_response.answer, dnskeys, INSIDE) == 1


async def test_no_dnssec_records_without_do(server: AuthServer) -> None:
    """Without the DO bit the answer has no RRSIG (RFC 4035 3.2.1)."""
    response = await ask(server, "www.example.test.", "A", dnssec=False)
    assert [r.rdtype for r in response.answer] == [dns.rdatatype.A]


async def test_ds_records_match_the_served_ksk(server: AuthServer, keys: ZoneKeys) -> None:
    """The DS text is the SHA-256 digest of the served flags-257 key, usable as a trust anchor."""
    dnskeys = await served_dnskeys(server)
    by_flags = {key.flags: key for key in dnskeys}
    expected = dns.dnssec.make_ds(ORIGIN, by_flags[257], "SHA256").to_text()
    assert ds_records(keys, ORIGIN) == [expected]
    assert expected != dns.dnssec.make_ds(ORIGIN, by_flags[256], "SHA256").to_text()


async def test_nxdomain_is_proven_by_nsec(server: AuthServer) -> None:
    """NXDOMAIN carries signed NSECs covering the name and the wildcard (RFC 4035 3.1.3.2)."""
    qname = dns.name.from_text("nope.example.test.")
    response = await ask(server, qname.to_text())
    assert response.rcode() == dns.rcode.NXDOMAIN
    nsecs = [(r.name, r[0].next) for r in response.authority if r.rdtype == dns.rdatatype.NSEC]
    assert any(covers(owner, nxt, qname) for owner, nxt in nsecs)
    wildcard = dns.name.from_text("*.example.test.")
    assert any(covers(owner, nxt, wildcard) for owner, nxt in nsecs)
    assert validate_all(response.authority, await served_dnskeys(server), INSIDE) >= 2


async def test_nxdomain_is_proven_by_nsec3(keys: ZoneKeys) -> None:
    """NXDOMAIN with NSEC3 carries the closest-encloser proof (RFC 5155 7.2.2), all signed."""
    async with AuthServer(signed(keys, "nsec3")) as server:
        response = await ask(server, "nope.example.test.")
        dnskeys = await served_dnskeys(server)
    assert response.rcode() == dns.rcode.NXDOMAIN
    links = nsec3_links(response)
    assert nsec3_hash("example.test.") in links  # the closest encloser exists
    for missing in ("nope.example.test.", "*.example.test."):
        hashed = nsec3_hash(missing)
        assert any(covers(owner, nxt, hashed) for owner, nxt in links.items()), missing
    assert validate_all(response.authority, dnskeys, INSIDE) == 1 + len(links)


@pytest.mark.parametrize("nsec", ["nsec", "nsec3"])
async def test_nodata_is_proven_by_the_record_at_the_name(keys: ZoneKeys, nsec: str) -> None:
    """NODATA carries the NSEC/NSEC3 of the name, whose type bitmap lacks the asked type."""
    async with AuthServer(signed(keys, nsec)) as server:
        response = await ask(server, "www.example.test.", "MX")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    proofs = [
        r for r in response.authority if r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)
    ]
    assert len(proofs) == 1
    proof = proofs[0]
    if nsec == "nsec":
        assert proof.name == dns.name.from_text("www.example.test.")
    else:
        assert proof.name.labels[0].decode().upper() == nsec3_hash("www.example.test.")
    tokens = set(proof[0].to_text().split())  # the type bitmap, as mnemonics
    assert "A" in tokens and "MX" not in tokens


@pytest.mark.parametrize("nsec", ["nsec", "nsec3"])
async def test_empty_non_terminal_is_nodata_not_nxdomain(keys: ZoneKeys, nsec: str) -> None:
    """A name with only descendants exists (RFC 8020): NOERROR without answer, with a proof."""
    async with AuthServer(signed(keys, nsec, extra="a.b 300 IN A 127.0.0.2\n")) as server:
        response = await ask(server, "b.example.test.")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert any(r.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3) for r in response.authority)


@pytest.mark.parametrize("edns", [True, False], ids=["edns-512", "no-edns"])
async def test_too_big_for_udp_sets_tc_and_tcp_delivers(server: AuthServer, edns: bool) -> None:
    """An answer over the client's buffer (512 without EDNS) comes back TC=1; TCP brings it."""
    query = dns.message.make_query("big.example.test.", "TXT", use_edns=0 if edns else -1)
    if edns:
        query.use_edns(0, dns.flags.DO, 512)
    truncated = await dns.asyncquery.udp(query, HOST, port=server.port, timeout=2)
    assert truncated.flags & dns.flags.TC
    response, used_tcp = await dns.asyncquery.udp_with_fallback(
        query, HOST, port=server.port, timeout=2
    )
    assert used_tcp and not response.flags & dns.flags.TC
    txt = response.find_rrset(response.answer, "big.example.test.", "IN", "TXT")
    assert len(txt) == 8


async def test_names_outside_the_zones_are_refused(server: AuthServer) -> None:
    """A name the server is not authoritative for gets REFUSED, without AA."""
    response = await ask(server, "www.example.org.")
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.flags & dns.flags.AA


async def test_serves_several_zones(keys: ZoneKeys) -> None:
    """Each zone answers for its own names."""
    other = sign_zone("other.test.", DEMO_RECORDS, keys, INCEPTION, EXPIRATION)
    async with AuthServer([signed(keys), other]) as server:
        for name in ("www.example.test.", "www.other.test."):
            response = await ask(server, name)
            assert response.rcode() == dns.rcode.NOERROR and response.answer, name


async def test_replace_zone_serves_the_new_signatures(server: AuthServer, keys: ZoneKeys) -> None:
    """After replace_zone, answers carry the re-signed dates and serial (the demo's recovery)."""
    server.replace_zone(sign_zone(ORIGIN, DEMO_RECORDS, keys, NOW, NOW + 999, serial=7))
    response = await ask(server, "example.test.", "SOA")
    soa = response.find_rrset(response.answer, ORIGIN, "IN", "SOA")
    sig = response.find_rrset(response.answer, ORIGIN, "IN", "RRSIG", "SOA")
    assert soa[0].serial == 7 and sig[0].expiration == NOW + 999
    assert validate_all(response.answer, await served_dnskeys(server), NOW + 1) == 1


async def test_tcp_connection_answers_queries_in_turn(server: AuthServer) -> None:
    """Several length-prefixed queries on one TCP connection each get their answer."""
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        names = ["www.example.test.", "mail.example.test."]
        queries = [dns.message.make_query(name, "A") for name in names]
        writer.write(b"".join(q.to_wire(prepend_length=True) for q in queries))
        for query in queries:
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 2))
            response = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(length), 2))
            assert query.is_response(response)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_malformed_query_is_ignored(server: AuthServer) -> None:
    """Bytes that are not a query get no answer, and the server keeps answering the next one."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=(HOST, server.port)
    )
    try:
        transport.sendto(b"\x00\x01not dns")
    finally:
        transport.close()
    response = await ask(server, "www.example.test.")
    assert response.rcode() == dns.rcode.NOERROR


# --- zones broken on purpose -----------------------------------------------------------------


async def test_special_signatures_are_served_as_made(keys: ZoneKeys) -> None:
    """Tampered, missing and not-yet-valid signatures reach the client as such."""
    zone = signed(
        keys,
        tampered=[("www", "A")],
        unsigned=[("www", "AAAA")],
        windows={("mail", "A"): (NOW + 3600, NOW + 7200)},
    )
    async with AuthServer(zone) as server:
        dnskeys = await served_dnskeys(server)
        tampered = await ask(server, "www.example.test.", "A")
        unsigned = await ask(server, "www.example.test.", "AAAA")
        future = await ask(server, "mail.example.test.", "A")
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_all(tampered.answer, dnskeys, INSIDE)
    assert [r.rdtype for r in unsigned.answer] == [dns.rdatatype.AAAA]
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_all(future.answer, dnskeys, NOW)
    assert validate_all(future.answer, dnskeys, NOW + 3600) == 1


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_drop_means_no_answer(server: AuthServer, tcp: bool) -> None:
    """DROP: nothing comes back (over TCP the connection stays open and silent)."""
    server.faults = [Fault(FaultKind.DROP)]
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "www.example.test.", tcp=tcp, wait=QUICK)


async def test_delay_answers_late(server: AuthServer) -> None:
    """DELAY: a client that gives up early sees a timeout, a patient one gets the answer."""
    server.faults = [Fault(FaultKind.DELAY, seconds=0.6)]
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "www.example.test.", wait=QUICK)
    response = await ask(server, "www.example.test.", wait=10)
    assert response.answer


async def test_truncate_always_and_tcp_closed(server: AuthServer) -> None:
    """TRUNCATE: UDP answers are TC=1 and empty, and the TCP retry finds the door closed."""
    server.faults = [Fault(FaultKind.TRUNCATE)]
    response = await ask(server, "www.example.test.")
    assert response.flags & dns.flags.TC and not response.answer
    query = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    with pytest.raises(EOFError):
        await dns.asyncquery.udp_with_fallback(query, HOST, port=server.port, timeout=2)


async def test_tcp_reset_mid_message(server: AuthServer) -> None:
    """TCP_RESET: half a message, then a reset; UDP still answers normally."""
    server.faults = [Fault(FaultKind.TCP_RESET)]
    with pytest.raises(ConnectionResetError):
        await ask(server, "www.example.test.", tcp=True)
    assert (await ask(server, "www.example.test.")).answer


@pytest.mark.parametrize(
    ("kind", "rejection"),
    [
        (FaultKind.GARBAGE, dns.exception.FormError),  # bytes that are not a DNS message
        (FaultKind.SHORT, dns.exception.FormError),
        (FaultKind.WRONG_ID, dns.query.BadResponse),  # a message, but not the one asked for
        (FaultKind.WRONG_QUESTION, dns.query.BadResponse),
    ],
)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_client_rejects_malformed_or_foreign_answers(
    server: AuthServer, kind: FaultKind, rejection: type[Exception], tcp: bool
) -> None:
    """GARBAGE, SHORT, WRONG_ID, WRONG_QUESTION: the client refuses what comes back."""
    server.faults = [Fault(kind)]
    with pytest.raises(rejection):
        await ask(server, "www.example.test.", tcp=tcp)


async def test_answer_from_another_port(server: AuthServer) -> None:
    """OTHER_PORT: the answer's source is wrong; a client ignoring strangers never gets one."""
    server.faults = [Fault(FaultKind.OTHER_PORT)]
    with pytest.raises(dns.query.UnexpectedSource):
        await ask(server, "www.example.test.")
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "www.example.test.", wait=QUICK, ignore_unexpected=True)
    assert (await ask(server, "www.example.test.", tcp=True)).answer


async def test_strays_come_before_the_right_answer(server: AuthServer) -> None:
    """STRAYS: dnspython sees the wrong-id copy first; ignoring strays it gets the answer."""
    server.faults = [Fault(FaultKind.STRAYS)]
    with pytest.raises(dns.query.BadResponse):
        await ask(server, "www.example.test.")
    response = await ask(server, "www.example.test.", ignore_unexpected=True, ignore_errors=True)
    assert response.answer and response.rcode() == dns.rcode.NOERROR
    assert (await ask(server, "www.example.test.", tcp=True)).answer  # TCP: no strays


@pytest.mark.parametrize(
    "rcode",
    [dns.rcode.REFUSED, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.NXDOMAIN],
)
async def test_rcode_fault(server: AuthServer, rcode: dns.rcode.Rcode) -> None:
    """RCODE: even the apex SOA gets the chosen error code and no records."""
    server.faults = [Fault(FaultKind.RCODE, rcode=rcode)]
    response = await ask(server, "example.test.", "SOA")
    assert response.rcode() == rcode and not response.answer


async def test_lame_answer_has_no_aa(server: AuthServer) -> None:
    """LAME: the records come back without the authoritative-answer bit."""
    server.faults = [Fault(FaultKind.LAME)]
    response = await ask(server, "www.example.test.")
    assert response.answer and not response.flags & dns.flags.AA


async def test_huge_answer_needs_tcp_and_still_verifies(server: AuthServer) -> None:
    """HUGE: about 64 KiB, so UDP says TC=1 and TCP carries it, the real answer intact."""
    dnskeys = await served_dnskeys(server)
    server.faults = [Fault(FaultKind.HUGE)]
    query = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    response, used_tcp = await dns.asyncquery.udp_with_fallback(
        query, HOST, port=server.port, timeout=5
    )
    assert used_tcp and not response.flags & dns.flags.TC
    assert response.wire is not None and len(response.wire) > 64000
    assert validate_all(response.answer, dnskeys, INSIDE) == 1


async def test_faults_are_scoped_by_query_type_and_transport(server: AuthServer) -> None:
    """A fault for one type leaves others alone; UDP and TCP faults combine in list order."""
    server.faults = [Fault(FaultKind.DROP, qtype=dns.rdatatype.DNSKEY)]
    assert (await ask(server, "www.example.test.")).answer
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "example.test.", "DNSKEY", wait=QUICK)
    server.faults = [Fault(FaultKind.TRUNCATE, transport=Transport.UDP), Fault(FaultKind.TCP_RESET)]
    assert (await ask(server, "www.example.test.")).flags & dns.flags.TC
    with pytest.raises(ConnectionResetError):
        await ask(server, "www.example.test.", tcp=True)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": FaultKind.TCP_RESET, "transport": Transport.UDP},
        {"kind": FaultKind.OTHER_PORT, "transport": Transport.TCP},
        {"kind": FaultKind.STRAYS, "transport": Transport.TCP},
        {"kind": FaultKind.DELAY, "seconds": -1},
    ],
)
def test_impossible_faults_are_refused(fault: dict[str, Any]) -> None:
    """A fault that cannot happen as configured is an error, not a silently ignored setting."""
    with pytest.raises(InvalidValueError):
        Fault(**fault)


# --- real tools, when installed --------------------------------------------------------------


async def run(*argv: str) -> str:
    """Run a tool without blocking the loop the server answers on; its stdout."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode()


@pytest.mark.parametrize("tool", ["dig", "kdig"])
async def test_dig_sees_rrsigs(server: AuthServer, tool: str) -> None:
    """dig/kdig asked explicitly at 127.0.0.1 see the answer with its RRSIG."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    out = await run(
        tool,
        f"@{HOST}",
        "-p",
        str(server.port),
        "+dnssec",
        "+norecurse",
        "+time=2",
        "+tries=1" if tool == "dig" else "+retry=0",
        "www.example.test.",
        "A",
    )
    records = [line.split() for line in out.splitlines() if not line.startswith(";")]
    # owner TTL class type data...: the A record, and an RRSIG whose type covered is A
    found = {(r[3], r[4]) for r in records if len(r) > 4 and r[0] == "www.example.test."}
    assert ("A", "127.0.0.1") in found and ("RRSIG", "A") in found, out


@pytest.mark.realdns
@pytest.mark.parametrize("nsec", ["nsec", "nsec3"])
async def test_unbound_validates_through_the_ds(
    tmp_path: Path, keys: ZoneKeys, nsec: str, require_binaries: Callable[..., None]
) -> None:
    """Unbound anchored on ds_records proves answers and denials secure, tampered data bogus."""
    require_binaries("unbound")
    from lab import Unbound, query  # the shared real-DNS lab (tests/lab)

    zone = signed(keys, nsec, tampered=[("mail", "A")])
    anchors = [f"{ORIGIN} DS {ds}" for ds in ds_records(keys, ORIGIN)]
    async with AuthServer(zone) as server:
        unbound = Unbound(
            tmp_path, zones=[str(ORIGIN)], trust_anchors=anchors, upstream=(HOST, server.port)
        )
        await asyncio.to_thread(unbound.start)  # blocking waits must not stall our server
        try:
            answers = {
                (name, rtype): await asyncio.to_thread(
                    query, unbound.address, unbound.port, name, rtype
                )
                for name, rtype in [
                    ("www.example.test.", "A"),
                    ("nope.example.test.", "A"),
                    ("www.example.test.", "MX"),
                    ("mail.example.test.", "A"),
                ]
            }
        finally:
            await asyncio.to_thread(unbound.stop)
    assert answers[("www.example.test.", "A")].validated, unbound.log_tail()
    assert answers[("nope.example.test.", "A")][:2] == (dns.rcode.NXDOMAIN, True)
    assert answers[("www.example.test.", "MX")][:2] == (dns.rcode.NOERROR, True)
    assert answers[("mail.example.test.", "A")].rcode == dns.rcode.SERVFAIL
