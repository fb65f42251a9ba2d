"""Whole-zone coverage against real NSD servers: AXFR (with and without TSIG), NSEC walk,
servers compared with the transfer, and transfer faults (issue 12).

The zone holds a deep RRset (a.b.c TXT) whose RRSIG comes from a second signing run with an
earlier expiration, spliced in: only a check that sees the whole zone can find it.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import dns.message
import dns.query
import pytest
from lab import NsdServer, SignedZone, make_signed_zone, make_zone_keys, splice_rrsigs
from targets import zone_target

from watchdog.config.coverage import CoverageSettings, TsigKey
from watchdog.config.targets import ProbeSettings, parse_server
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.coverage import APEX_UNCOVERED
from watchdog.probe.prober import Prober
from watchdog.render.check import render_zone, zone_json

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86400
ORIGIN = "example.test."
DEEP = "a.b.c.example.test."
_NO_RESOLVER = ("127.0.0.1", 9)
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = TsigKey("xfr.example.", "hmac-sha256", base64.b64decode(SECRET))
RECORDS = ('a.b.c TXT "deep"', "www A 192.0.2.80", "mail A 192.0.2.25")


@pytest.fixture(autouse=True)
def _lab(require_binaries: Callable[..., None]) -> None:
    require_binaries("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds", "dnssec-signzone")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., NsdServer]]:
    """Start NSD instances; all are stopped at the end of the test."""
    with ExitStack() as stack:
        count = 0

        def start(zones: Sequence[SignedZone], **options: object) -> NsdServer:
            nonlocal count
            count += 1
            server = NsdServer(tmp_path / f"nsd{count}", zones, **options)  # type: ignore[arg-type]
            return stack.enter_context(server)

        yield start


def deep_zone(tmp_path: Path, *, signer: str = "ldns", nsec3: bool = False) -> SignedZone:
    """Signed NOW - 1 d .. NOW + 14 d, but a.b.c TXT's RRSIG expires at NOW + 3 d."""
    keys = make_zone_keys(tmp_path / "keys", ORIGIN)

    def signed(workdir: Path, expiration: int) -> SignedZone:
        return make_signed_zone(
            workdir,
            ORIGIN,
            inception=NOW - DAY,
            expiration=expiration,
            keys=keys,
            records=RECORDS,
            signer=signer,
            nsec3=nsec3,
        )

    zone = signed(tmp_path / "z1", NOW + 14 * DAY)
    early = signed(tmp_path / "z2", NOW + 3 * DAY)
    splice_rrsigs(zone.zone_file, early.zone_file, DEEP, "TXT")
    return zone


def where(server: NsdServer) -> str:
    return f"{server.address}:{server.port}"


async def check(
    prober: Prober, *addresses: str, coverage: CoverageSettings, anchor: Sequence[str] = ()
) -> ZoneReport:
    target = zone_target(
        ORIGIN, servers=addresses, trust_anchor="\n".join(anchor) or None, coverage=coverage
    )
    return assess_zone(await prober.probe(target), NOW)


def prober() -> Prober:
    return Prober(ProbeSettings(timeout=2.0, retries=1, resolver=_NO_RESOLVER))


@pytest.mark.parametrize(("signer", "nsec3"), [("ldns", False), ("dnssec-signzone", True)])
async def test_a_transfer_finds_the_deep_rrset_that_expires_first(
    tmp_path: Path, servers: Callable[..., NsdServer], signer: str, nsec3: bool
) -> None:
    """With transfer (TSIG-signed) the deadline comes from a.b.c TXT; apex-only misses it."""
    zone = deep_zone(tmp_path, signer=signer, nsec3=nsec3)
    nsd = servers([zone], provide_xfr=True, tsig_keys={ORIGIN: (KEY.name, SECRET)})
    async with prober() as p:
        whole = await check(
            p,
            where(nsd),
            anchor=zone.ds,
            coverage=CoverageSettings(transfer=parse_server(where(nsd)), tsig=KEY),
        )
        apex = await check(p, where(nsd), anchor=zone.ds, coverage=CoverageSettings())

    assert whole.deadlines is not None and whole.coverage is not None
    assert (whole.deadlines.strict_fail.owner, whole.deadlines.strict_fail.rtype) == (DEEP, "TXT")
    assert whole.deadlines.strict_fail_at == NOW + 3 * DAY + 1
    assert whole.coverage.mode == "transfer" and whole.coverage.serial == zone.serial
    assert whole.coverage.rrsets >= 8 and whole.coverage.names >= 5
    assert f"{DEEP} TXT RRSIG" in render_zone(whole)
    assert zone_json(whole)["coverage"]["mode"] == "transfer"

    assert apex.deadlines is not None and apex.coverage is not None
    assert apex.deadlines.strict_fail_at == NOW + 14 * DAY + 1
    assert apex.deadlines.strict_fail.owner != DEEP
    assert apex.coverage.mode == "apex" and apex.coverage.uncovered == APEX_UNCOVERED
    assert "apex" in render_zone(apex) and "not checked" in render_zone(apex)


async def test_the_alerting_state_counts_the_rrsets_by_state(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """Judged 2 d 20 h later the deep RRset warns, and the finding counts it: "1 of N"."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone], provide_xfr=True)
    async with prober() as p:
        target = zone_target(
            ORIGIN,
            servers=(where(nsd),),
            coverage=CoverageSettings(transfer=parse_server(where(nsd))),
        )
        observation = await p.probe(target)
    report = assess_zone(observation, NOW + 2 * DAY + 20 * 3600)
    assert report.coverage is not None
    (expiring,) = [f for f in report.findings if f.code == "signature_expiring"]
    assert expiring.owner == DEEP and expiring.rtype == "TXT"
    assert f"1 of {report.coverage.rrsets:,} RRsets expire before" in expiring.message
    assert dict(report.coverage.counts)["warning"] == 1


async def test_an_unchanged_serial_costs_no_cryptography(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """The second check of an unchanged zone verifies nothing and reports the same coverage."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone], provide_xfr=True)
    coverage = CoverageSettings(transfer=parse_server(where(nsd)), sample=0)
    async with prober() as p:
        first = await check(p, where(nsd), coverage=coverage)
        done = p.coverage.verifier.verified
        second = await check(p, where(nsd), coverage=coverage)
        assert p.coverage.verifier.verified == done > 0
    assert first.coverage == second.coverage


async def test_a_server_with_older_signatures_for_the_same_serial_is_stale(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A second NSD serving the serial with older signatures: stale_signatures names it."""
    keys = make_zone_keys(tmp_path / "keys", ORIGIN)
    fresh = make_signed_zone(
        tmp_path / "z1", ORIGIN, inception=NOW - DAY, expiration=NOW + 14 * DAY, keys=keys
    )
    old = make_signed_zone(
        tmp_path / "z2", ORIGIN, inception=NOW - 9 * DAY, expiration=NOW + 5 * DAY, keys=keys
    )
    primary = servers([fresh], provide_xfr=True)
    secondary = servers([old])
    async with prober() as p:
        report = await check(
            p,
            where(primary),
            where(secondary),
            coverage=CoverageSettings(transfer=parse_server(where(primary)), sample=4),
        )
    stale = [f for f in report.findings if f.code == "stale_signatures"]
    assert [f.server for f in stale] == [where(secondary)]
    assert stale[0].severity.value == "warning"
    (verdict,) = [s for s in report.servers if s.address == where(secondary)]
    assert verdict.deadlines is not None and verdict.deadlines.strict_fail_at == NOW + 5 * DAY + 1


async def test_a_walk_finds_the_deep_rrset(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """An NSEC walk on a server that refuses transfers still finds a.b.c TXT."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone])
    async with prober() as p:
        report = await check(p, where(nsd), coverage=CoverageSettings(walk=True))
    assert report.coverage is not None and report.coverage.mode == "walk"
    assert report.deadlines is not None and report.deadlines.strict_fail.owner == DEEP


async def test_an_nsec3_zone_cannot_be_walked(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """NSEC3: walk_impossible (a note) and the check falls back to the apex."""
    zone = deep_zone(tmp_path, nsec3=True)
    nsd = servers([zone])
    async with prober() as p:
        report = await check(p, where(nsd), coverage=CoverageSettings(walk=True))
    assert report.coverage is not None and report.coverage.mode == "apex"
    assert report.coverage.wanted == "walk"
    (impossible,) = [f for f in report.findings if f.code == "walk_impossible"]
    assert impossible.severity.value == "ok" and "apex only" in impossible.message


async def test_a_walk_over_its_limit_is_not_judged_as_whole(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A chain longer than walk_limit: walk_limit_exceeded, apex mode."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone])
    async with prober() as p:
        report = await check(p, where(nsd), coverage=CoverageSettings(walk=True, walk_limit=2))
    assert report.coverage is not None and report.coverage.mode == "apex"
    assert "walk_limit_exceeded" in {f.code for f in report.findings}


@pytest.mark.parametrize(
    ("xfr", "key", "code"),
    [
        (False, None, "transfer_refused"),
        (
            True,
            TsigKey("xfr.example.", "hmac-sha256", b"wrong secret, 32 bytes long....."),
            "transfer_tsig_failed",
        ),
    ],
)
async def test_a_refused_or_unauthenticated_transfer_is_named(
    tmp_path: Path,
    servers: Callable[..., NsdServer],
    xfr: bool,
    key: TsigKey | None,
    code: str,
) -> None:
    """REFUSED and a bad TSIG key are findings, and the check covers the apex only."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone], provide_xfr=xfr, tsig_keys={ORIGIN: (KEY.name, SECRET)})
    async with prober() as p:
        report = await check(
            p, where(nsd), coverage=CoverageSettings(transfer=parse_server(where(nsd)), tsig=key)
        )
    assert report.coverage is not None and report.coverage.mode == "apex"
    (fault,) = [f for f in report.findings if f.code == code]
    assert fault.severity.value == "warning" and "apex only" in fault.message
    assert SECRET not in fault.message
    assert report.deadlines is not None and report.deadlines.strict_fail.owner != DEEP


async def test_a_transfer_cut_mid_way_is_never_judged_as_whole(
    tmp_path: Path, servers: Callable[..., NsdServer]
) -> None:
    """A source that sends the SOA and some records, then closes: transfer_cut, apex mode."""
    zone = deep_zone(tmp_path)
    nsd = servers([zone], provide_xfr=True)
    messages = list(dns.query.xfr(nsd.address, ORIGIN, port=nsd.port, timeout=5))
    first = messages[0]
    first.answer = first.answer[: max(1, len(first.answer) // 2)]
    soa = dns.query.udp(dns.message.make_query(ORIGIN, "SOA"), nsd.address, 5, port=nsd.port)

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        query = dns.message.from_wire(await reader.readexactly(length))
        first.id = query.id
        wire = first.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        writer.close()

    class SerialOverUdp(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            soa.id = dns.message.from_wire(data).id
            self.transport.sendto(soa.to_wire(), addr)  # type: ignore[attr-defined]

    fault = await asyncio.start_server(cut, "127.0.0.1", 0)
    port = fault.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(SerialOverUdp, local_addr=("127.0.0.1", port))
    try:
        async with fault, prober() as p:
            report = await check(
                p, where(nsd), coverage=CoverageSettings(transfer=("127.0.0.1", port))
            )
    finally:
        udp.close()
    assert report.coverage is not None and report.coverage.mode == "apex"
    (finding,) = [f for f in report.findings if f.code == "transfer_cut"]
    assert "apex only" in finding.message
