"""Issue 8, DNS side: every way a server or a resolver misbehaves is a named finding.

Each case runs one check cycle (``Prober.probe_many`` then ``assess_zone``, as the service does)
over two zones: ``bad.test.`` on a server with the fault, and ``ok.test.`` on a healthy server
of its own. Every case asserts the three things an operator relies on:

1. the bad zone's report carries a finding with the expected code, and for a server fault that
   finding names the faulty server address;
2. the cycle ends within the check's timeout budget (``budget`` below: an upper bound derived
   from the settings, not a speed assertion);
3. the healthy zone in the same cycle is OK, with its deadlines, and mentions no other server.

Servers are ``watchdog.demo.authserver.AuthServer`` (UDP and TCP on one port of 127.0.0.1)
with faults from ``watchdog.demo.faults`` and zones signed by ``watchdog.demo.signer``. The
same server, serving the parent ``test.`` (signed, with DS records) and an unsigned ``disc.``
(NS and address data), plays the recursive resolver. The NS-loop case also runs against a real
Unbound (marked realdns). The last section fuzzes the UDP answer parser with hypothesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from targets import zone_target

from watchdog.config.targets import ProbeSettings, ZoneTarget
from watchdog.demo.answers import answer, zones_by_origin
from watchdog.demo.authserver import AuthServer
from watchdog.demo.faults import Fault, FaultKind, Transport
from watchdog.demo.signer import DEMO_RECORDS, ZoneKeys, ds_records, make_keys, sign_zone
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.errors import ProbeError
from watchdog.probe import dnsio
from watchdog.probe.assemble import Collected, assemble
from watchdog.probe.discovery import ParentDS, ServerAddress
from watchdog.probe.prober import Prober
from watchdog.probe.verify import SignatureVerifier

DAY = 86400
NOW = int(time.time())
HOST = "127.0.0.1"
BAD, OK = "bad.test.", "ok.test."
APEX = dns.name.from_text(BAD)
TIMEOUT, RETRIES = 0.3, 1
# A check asks in at most five rounds, one after the other: the NS names; their addresses; the
# apex SOA; DNSKEY, NS, a non-existent name and the extras together; the parent's DNSKEY.
# Each question makes at most retries + 1 attempts, and one attempt waits at most twice the
# timeout (a UDP wait, then a TCP wait after TC=1). SLACK covers verification and a busy
# 2-core CI machine. This is a bound that must hold, not the time a check is expected to take.
ROUNDS = 5
SLACK = 2.0


def budget(s: ProbeSettings) -> float:
    """The documented upper bound, in seconds, for one check cycle of a few zones."""
    return ROUNDS * (s.retries + 1) * 2 * s.timeout + SLACK


@pytest.fixture(scope="module")
def keys() -> ZoneKeys:
    """One key pair for bad.test. and ok.test. (generation is not under test)."""
    return make_keys()


@pytest.fixture(scope="module")
def parent_keys() -> ZoneKeys:
    return make_keys()


def signed(keys: ZoneKeys, origin: str = BAD, *, window: tuple[int, int] | None = None,
           **options: Any) -> dns.zone.Zone:  # fmt: skip
    inception, expiration = window or (NOW - DAY, NOW + 10 * DAY)
    return sign_zone(origin, DEMO_RECORDS, keys, inception, expiration, "nsec", **options)


def anchor(keys: ZoneKeys, origin: str) -> str:
    return "\n".join(f"{origin} IN DS {ds}" for ds in ds_records(keys, origin))


def parent_zone(parent_keys: ZoneKeys, child_keys: ZoneKeys, extra: str = "") -> dns.zone.Zone:
    """The signed parent test.: the DS of bad.test. by ``child_keys``, plus ``extra``."""
    records = (
        "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 300\n"
        "@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n"
        + "".join(f"bad 3600 IN DS {ds}\n" for ds in ds_records(child_keys, BAD))
        + extra
    )
    return sign_zone("test.", records, parent_keys, NOW - DAY, NOW + 30 * DAY, "nsec")


# Unsigned discovery data: a name server name with no address, and one that is a CNAME loop.
DISC = """\
@ 3600 IN SOA ns.disc. hostmaster.disc. 1 7200 3600 1209600 300
@ 3600 IN NS ns
ns 3600 IN A 127.0.0.1
noaddr 3600 IN NS ns1.nowhere
loop 3600 IN NS ns.loop-a
ns.loop-a 3600 IN CNAME ns.loop-b
ns.loop-b 3600 IN CNAME ns.loop-a
alias 3600 IN CNAME ns
"""


@dataclass(frozen=True)
class Cycle:
    """One check cycle: the reports by zone and how long the cycle took (monotonic)."""

    reports: dict[str, ZoneReport]
    seconds: float
    settings: ProbeSettings

    def findings(self, zone: str) -> list[Finding]:
        report = self.reports[zone]
        return [*report.findings, *(f for s in report.servers for f in s.findings)]


@dataclass
class Lab:
    """The healthy zone's server, the resolver, and a way to run a cycle with a bad zone."""

    good: AuthServer
    resolver: AuthServer
    ok_anchor: str

    @property
    def good_address(self) -> str:
        return f"{HOST}:{self.good.port}"

    async def cycle(self, *bad: ZoneTarget, query_timeout: float = TIMEOUT) -> Cycle:
        probe = ProbeSettings(
            timeout=query_timeout, retries=RETRIES, resolver=(HOST, self.resolver.port)
        )
        targets = [*bad, zone_target(OK, (self.good_address,), self.ok_anchor)]
        started = time.monotonic()
        async with Prober(probe) as prober:
            observations = await prober.probe_many(targets)
        seconds = time.monotonic() - started
        now = int(time.time())
        return Cycle({o.zone: assess_zone(o, now) for o in observations}, seconds, probe)

    def healthy(self, cycle: Cycle) -> None:
        """The healthy zone of the cycle is unaffected: OK, deadlines, only its own server.
        Prints the case's row of the fault matrix (RELIABILITY.md) for ``pytest -s``."""
        _print_row(cycle)
        report = cycle.reports[OK]
        assert report.severity is Severity.OK, cycle.findings(OK)
        assert report.deadlines is not None
        assert [s.address for s in report.servers] == [self.good_address]
        assert all(f.server in (None, self.good_address) for f in cycle.findings(OK))
        assert cycle.seconds < budget(cycle.settings), cycle.seconds


def _print_row(cycle: Cycle) -> None:
    case = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    for zone, report in cycle.reports.items():
        if zone == OK:
            continue
        codes = sorted({f"{f.code}/{f.severity.value}" for f in cycle.findings(zone)
                        if f.severity is not Severity.OK})  # fmt: skip
        print(f"| {case} | {report.severity.value} | {', '.join(codes) or '-'} | "
              f"{cycle.seconds:.2f} s | {budget(cycle.settings):.1f} s |")  # fmt: skip


@pytest.fixture
async def lab(keys: ZoneKeys, parent_keys: ZoneKeys) -> AsyncIterator[Lab]:
    """ok.test. on its own server, and the resolver serving test. and disc."""
    parent = parent_zone(parent_keys, keys)
    disc = dns.zone.from_text(DISC, "disc.", relativize=False)
    async with AuthServer(signed(keys, OK)) as good, AuthServer([parent, disc]) as resolver:
        yield Lab(good, resolver, anchor(keys, OK))


def named(cycle: Cycle, zone: str, code: str, server: str | None) -> Finding:
    """The finding ``code`` of ``zone`` that names ``server`` (None: a zone-level finding)."""
    found = [f for f in cycle.findings(zone) if f.code == code and f.server == server]
    assert found, f"no {code} on {server}: {cycle.findings(zone)}"
    if server is not None:
        assert server in found[0].message
    return found[0]


# --- transport and protocol faults of an authoritative server ---------------------------------

_UDP_TC = Fault(FaultKind.TRUNCATE, transport=Transport.UDP)  # TC=1: the prober retries over TCP
SERVER_FAULTS: list[tuple[str, list[Fault], str]] = [
    ("drop", [Fault(FaultKind.DROP)], "timeout"),
    ("answer-after-timeout", [Fault(FaultKind.DELAY, seconds=3 * TIMEOUT)], "timeout"),
    ("tc-then-tcp-closed", [Fault(FaultKind.TRUNCATE)], "connection_closed"),
    ("tcp-reset-mid-message", [_UDP_TC, Fault(FaultKind.TCP_RESET)], "connection_closed"),
    ("tcp-accepts-never-answers", [_UDP_TC, Fault(FaultKind.DROP)], "timeout"),
    ("garbage-udp", [Fault(FaultKind.GARBAGE)], "malformed"),
    ("garbage-tcp", [_UDP_TC, Fault(FaultKind.GARBAGE)], "malformed"),
    ("truncated-message-udp", [Fault(FaultKind.SHORT)], "malformed"),
    ("truncated-message-tcp", [_UDP_TC, Fault(FaultKind.SHORT)], "malformed"),
    ("wrong-id-udp", [Fault(FaultKind.WRONG_ID)], "mismatched"),
    ("wrong-id-tcp", [_UDP_TC, Fault(FaultKind.WRONG_ID)], "mismatched"),
    ("wrong-question", [Fault(FaultKind.WRONG_QUESTION)], "mismatched"),
    ("answer-from-other-port", [Fault(FaultKind.OTHER_PORT)], "timeout"),
    ("refused", [Fault(FaultKind.RCODE, rcode=dns.rcode.REFUSED)], "refused"),
    ("servfail", [Fault(FaultKind.RCODE, rcode=dns.rcode.SERVFAIL)], "servfail"),
    ("notimp", [Fault(FaultKind.RCODE, rcode=dns.rcode.NOTIMP)], "notimp"),
    ("nxdomain-at-apex", [Fault(FaultKind.RCODE, rcode=dns.rcode.NXDOMAIN)], "nxdomain_apex"),
    ("lame-aa-clear", [Fault(FaultKind.LAME)], "lame"),
]


@pytest.mark.parametrize(
    ("faults", "code"), [c[1:] for c in SERVER_FAULTS], ids=[c[0] for c in SERVER_FAULTS]
)
async def test_a_server_fault_is_named_on_that_server(
    lab: Lab, keys: ZoneKeys, faults: list[Fault], code: str
) -> None:
    """The only server of bad.test. misbehaves: its address and the fault are in the report,
    the zone is UNREACHABLE (nothing could be judged), and ok.test. does not notice."""
    async with AuthServer(signed(keys), faults=faults) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,), anchor(keys, BAD)))
    finding = named(cycle, BAD, code, address)
    assert finding.severity is Severity.UNREACHABLE
    assert cycle.reports[BAD].severity is Severity.UNREACHABLE
    assert cycle.reports[BAD].deadlines is None
    lab.healthy(cycle)


async def test_tc_with_tcp_refused_is_connection_refused(lab: Lab) -> None:
    """TC=1 over UDP and nothing listening on TCP: connection_refused at once, on that server."""
    async with _TruncatingUdpOnly() as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,)))
    assert named(cycle, BAD, "connection_refused", address).severity is Severity.UNREACHABLE
    assert cycle.reports[BAD].severity is Severity.UNREACHABLE
    lab.healthy(cycle)


async def test_a_tcp_answer_trickled_byte_by_byte_times_out(lab: Lab) -> None:
    """TC=1 over UDP, then a TCP answer dribbling one byte every 50 ms (each read within the
    timeout): the whole exchange is bounded, a timeout on that server, within the budget."""
    async with _TruncatingUdpOnly(trickle=True) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,)))
    assert named(cycle, BAD, "timeout", address).severity is Severity.UNREACHABLE
    lab.healthy(cycle)


async def test_a_64k_answer_over_tcp_is_read_whole(lab: Lab, keys: ZoneKeys) -> None:
    """Every answer 64 KiB (TC=1 over UDP, then TCP): the zone is checked as usual, OK. (A 2 s
    timeout: the in-process server padding four answers to 64 KiB shares the test's loop and
    CPU, and on a busy machine that alone can take longer than 0.3 s.)"""
    async with AuthServer(signed(keys), faults=[Fault(FaultKind.HUGE)]) as bad:
        target = zone_target(BAD, (f"{HOST}:{bad.port}",), anchor(keys, BAD))
        cycle = await lab.cycle(target, query_timeout=2.0)
    report = cycle.reports[BAD]
    assert report.severity is Severity.OK, cycle.findings(BAD)
    assert report.deadlines is not None
    lab.healthy(cycle)


async def test_stray_datagrams_before_each_answer_are_ignored(lab: Lab, keys: ZoneKeys) -> None:
    """Issue 17: before each answer, a wrong-id copy, an answer to another question and a copy
    from another port; the prober reads on to the right answer (RFC 5452 9.1): OK, no finding."""
    async with AuthServer(signed(keys), faults=[Fault(FaultKind.STRAYS)]) as bad:
        target = zone_target(BAD, (f"{HOST}:{bad.port}",), anchor(keys, BAD))
        cycle = await lab.cycle(target)
    report = cycle.reports[BAD]
    assert report.severity is Severity.OK, cycle.findings(BAD)
    assert cycle.findings(BAD) == []
    assert report.deadlines is not None
    lab.healthy(cycle)


async def test_only_strays_until_the_timeout_is_mismatched() -> None:
    """A server that only ever sends wrong-id answers: 'mismatched' naming the server and
    how many strays came, not a bare timeout."""
    zone = signed(make_keys())
    async with AuthServer(zone, faults=[Fault(FaultKind.WRONG_ID)]) as bad:
        with pytest.raises(ProbeError) as caught:
            await dnsio.query(APEX, dns.rdatatype.SOA, HOST, bad.port, recursive=False,
                              attempt_timeout=TIMEOUT, retries=0)  # fmt: skip
    assert caught.value.code == "mismatched"
    assert f"{HOST}:{bad.port}" in str(caught.value) and "1 such" in str(caught.value)


async def test_a_faulty_second_server_leaves_the_first_to_set_the_deadline(
    lab: Lab, keys: ZoneKeys
) -> None:
    """One of two servers drops everything: it is named, the other one's deadline stands."""
    async with (
        AuthServer(signed(keys)) as fine,
        AuthServer(signed(keys), faults=[Fault(FaultKind.DROP)]) as dead,
    ):
        servers = (f"{HOST}:{fine.port}", f"{HOST}:{dead.port}")
        cycle = await lab.cycle(zone_target(BAD, servers, anchor(keys, BAD)))
    named(cycle, BAD, "timeout", servers[1])
    report = cycle.reports[BAD]
    assert report.deadlines is not None and report.deadlines.strict_fail.server == servers[0]
    lab.healthy(cycle)


async def test_a_lost_dnskey_answer_is_unknown_not_bogus(lab: Lab, keys: ZoneKeys) -> None:
    """The DNSKEY question alone goes unanswered on the only server: the signatures cannot be
    checked, which is UNKNOWN (the watchdog could not decide), never BOGUS."""
    async with AuthServer(signed(keys), faults=[Fault(FaultKind.DROP, qtype=dns.rdatatype.DNSKEY)]
                          ) as bad:  # fmt: skip
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,), anchor(keys, BAD)))
    assert named(cycle, BAD, "timeout", address).rtype == "DNSKEY"
    report = cycle.reports[BAD]
    assert report.severity is Severity.UNKNOWN, cycle.findings(BAD)
    assert not [f for f in cycle.findings(BAD) if f.severity is Severity.BOGUS]
    lab.healthy(cycle)


async def test_unreachable_zone_with_an_anchor_does_not_claim_there_is_none(
    lab: Lab, keys: ZoneKeys
) -> None:
    """Nothing answers for a zone with a trust anchor: the report says the chain could not be
    checked, not that there is "no DS and no trust anchor"."""
    async with AuthServer(signed(keys), faults=[Fault(FaultKind.DROP)]) as bad:
        cycle = await lab.cycle(zone_target(BAD, (f"{HOST}:{bad.port}",), anchor(keys, BAD)))
    codes = [f.code for f in cycle.findings(BAD)]
    assert "chain_not_checked" not in codes
    assert "chain_unverified" in codes
    lab.healthy(cycle)


# --- what the zone serves: signatures, keys, the chain of trust -------------------------------


def _unknown_algorithm(zone: dns.zone.Zone, number: int = 200) -> dns.zone.Zone:
    """Every RRSIG and DNSKEY of ``zone`` relabelled with an algorithm nobody implements."""
    for node in zone.nodes.values():
        for rdataset in list(node.rdatasets):
            if rdataset.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY):
                changed = dns.rdataset.Rdataset(rdataset.rdclass, rdataset.rdtype, rdataset.covers)
                for rdata in rdataset:
                    changed.add(rdata.replace(algorithm=number), rdataset.ttl)
                node.replace_rdataset(changed)
    return zone


# (id, options of signed(), expected code, its severity, the zone's severity)
DATA_FAULTS: list[tuple[str, dict[str, Any], str, Severity, Severity]] = [
    ("rrset-without-rrsig", {"unsigned": [("@", "NS")]}, "rrset_unsigned",
     Severity.BOGUS, Severity.BOGUS),
    ("expired", {"window": (NOW - 20 * DAY, NOW - 3600)}, "signature_expired",
     Severity.STRICT_FAIL, Severity.STRICT_FAIL),
    ("expired-beyond-unbound-skew", {"window": (NOW - 20 * DAY, NOW - 3 * DAY)},
     "signature_skew_exhausted", Severity.SKEW_EXHAUSTED, Severity.SKEW_EXHAUSTED),
    ("not-yet-valid", {"window": (NOW + 3600, NOW + 10 * DAY)}, "signature_not_yet_valid",
     Severity.STRICT_FAIL, Severity.STRICT_FAIL),
    ("bogus-signature", {"tampered": [("@", "SOA")]}, "signature_bogus",
     Severity.BOGUS, Severity.BOGUS),
]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "code", "severity", "zone_severity"),
    [c[1:] for c in DATA_FAULTS],
    ids=[c[0] for c in DATA_FAULTS],
)
async def test_a_signature_fault_is_named_on_the_server_serving_it(
    lab: Lab,
    keys: ZoneKeys,
    options: dict[str, Any],
    code: str,
    severity: Severity,
    zone_severity: Severity,
) -> None:
    """Broken signing reaches the report as its own code on the server that serves it."""
    async with AuthServer(signed(keys, **options)) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,), anchor(keys, BAD)))
    assert named(cycle, BAD, code, address).severity is severity
    assert cycle.reports[BAD].severity is zone_severity
    lab.healthy(cycle)


async def test_an_unknown_algorithm_is_unknown_not_bogus(lab: Lab, keys: ZoneKeys) -> None:
    """Algorithm 200 in the keys, the signatures and the anchoring DS: we cannot check it
    (RFC 4035 5.2: such a zone is insecure to a validator), so UNKNOWN with
    signature_unsupported_algorithm, never BOGUS."""
    zone = _unknown_algorithm(signed(keys))
    dnskeys = zone.get_rdataset(APEX, dns.rdatatype.DNSKEY)
    assert dnskeys is not None
    ksk = next(k for k in dnskeys if k.flags & 0x0001)
    ds = f"{BAD} IN DS {dns.dnssec.make_ds(APEX, ksk, 'SHA256').to_text()}"
    async with AuthServer(zone) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,), ds))
    assert named(cycle, BAD, "signature_unsupported_algorithm", address).severity is (
        Severity.UNKNOWN
    )
    assert cycle.reports[BAD].severity is Severity.UNKNOWN
    lab.healthy(cycle)


async def test_dnskey_without_matching_anchor_is_a_broken_chain(lab: Lab, keys: ZoneKeys) -> None:
    """A trust anchor of other keys: ds_mismatch, BOGUS; the server's DNSKEY signature is
    named as signed by no key the anchor points at."""
    async with AuthServer(signed(keys)) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,), anchor(make_keys(), BAD)))
    assert named(cycle, BAD, "ds_mismatch", None).severity is Severity.BOGUS
    assert named(cycle, BAD, "signature_no_key", address).rtype == "DNSKEY"
    assert cycle.reports[BAD].severity is Severity.BOGUS
    lab.healthy(cycle)


async def test_dnskey_without_matching_parent_ds_is_a_broken_chain(
    lab: Lab, parent_keys: ZoneKeys
) -> None:
    """The parent (through the resolver) publishes the DS of other keys than the ones served."""
    async with AuthServer(signed(make_keys())) as bad:
        address = f"{HOST}:{bad.port}"
        cycle = await lab.cycle(zone_target(BAD, (address,)))
    assert named(cycle, BAD, "ds_mismatch", None).severity is Severity.BOGUS
    assert cycle.reports[BAD].severity is Severity.BOGUS
    assert cycle.reports[BAD].ds is not None  # the parent's DS was fetched and judged
    lab.healthy(cycle)


# --- what the resolver and the delegation say ------------------------------------------------


async def test_a_cname_at_the_apex_is_named_on_the_server(lab: Lab) -> None:
    """The configured server answers the apex SOA question with a CNAME (alias.disc. is an
    alias, not a zone): named as such on that server, and not called BOGUS."""
    address = f"{HOST}:{lab.resolver.port}"
    cycle = await lab.cycle(zone_target("alias.disc.", (address,)))
    assert named(cycle, "alias.disc.", "cname_at_apex", address).severity is (Severity.UNREACHABLE)
    assert cycle.reports["alias.disc."].severity is Severity.UNREACHABLE
    lab.healthy(cycle)


async def test_a_cname_at_the_apex_is_named_by_discovery(lab: Lab) -> None:
    """Asked for the NS of an alias, the resolver answers with the CNAME: discovery says so."""
    cycle = await lab.cycle(zone_target("alias.disc."))
    assert "ns.disc." in named(cycle, "alias.disc.", "cname_at_apex", None).message
    assert cycle.reports["alias.disc."].severity is Severity.UNREACHABLE
    lab.healthy(cycle)


@pytest.mark.parametrize(
    ("zone", "ns_name"), [("noaddr.disc.", "ns1.nowhere.disc."), ("loop.disc.", "ns.loop-a.disc.")]
)
async def test_an_ns_name_without_address_is_named(lab: Lab, zone: str, ns_name: str) -> None:
    """An NS name with no A/AAAA (absent, or a CNAME loop): ns_no_address names it, and the
    zone is UNREACHABLE with no_servers."""
    cycle = await lab.cycle(zone_target(zone))
    assert ns_name in named(cycle, zone, "ns_no_address", None).message
    named(cycle, zone, "no_servers", None)
    assert cycle.reports[zone].severity is Severity.UNREACHABLE
    lab.healthy(cycle)


# --- fuzzing the answer parser -----------------------------------------------------------------

_FUZZ_KEYS = make_keys()
_FUZZ_ZONES = zones_by_origin(signed(_FUZZ_KEYS))
_FUZZ_QUESTIONS = [
    (APEX, dns.rdatatype.SOA, False),
    (APEX, dns.rdatatype.DNSKEY, False),
    (dns.name.from_text("wd-nothere.bad.test."), dns.rdatatype.A, True),  # NXDOMAIN, NSECs
]


def honest_wire(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, ident: int) -> bytes:
    query = dns.message.make_query(qname, rdtype, want_dnssec=True, payload=dnsio.EDNS_PAYLOAD)
    query.id = ident
    query.flags &= ~dns.flags.RD
    return answer(_FUZZ_ZONES, query).to_wire()


@st.composite
def mutated(draw: st.DrawFn, wire: bytes) -> bytes:
    """``wire`` with some bytes replaced, maybe cut short or extended; id kept, so that the
    parser gets past the id check and into the records."""
    data = bytearray(wire)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(2, len(data) - 1))] = draw(st.integers(0, 255))
    data = data[: draw(st.integers(2, len(data)))] if draw(st.booleans()) else data
    return bytes(data + draw(st.binary(max_size=40)))


def _judge(reply: bytes, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType,
           authority: bool) -> None:  # fmt: skip
    """Parse like the UDP path, and feed whatever parses on through observe and the engine."""
    question = dnsio.query_wire(qname, rdtype, recursive=False)
    ident = int.from_bytes(reply[:2], "big") if len(reply) >= 2 else 0
    where = dnsio._Where(HOST, 53, qname, rdtype)
    try:
        parsed = dnsio._parse(reply, question, ident, authority, where)
    except ProbeError as exc:
        assert exc.code in ("malformed", "mismatched")
        assert f"{HOST}:53" in str(exc)
        return
    collected = Collected(ServerAddress(HOST, 53), APEX)
    if rdtype == dns.rdatatype.SOA:
        collected.apex_soa(parsed)
    else:  # as the prober records the other questions
        role = "dnskey" if rdtype == dns.rdatatype.DNSKEY else "denial"
        collected.record(parsed, qname, rdtype, role)
    observation = assemble(BAD, APEX, [collected], ParentDS(), {}, None, SignatureVerifier())
    assess_zone(observation, NOW)


@settings(max_examples=300, deadline=None)
@given(reply=st.binary(max_size=700), which=st.sampled_from(_FUZZ_QUESTIONS))
def test_parser_survives_random_bytes(reply: bytes, which: tuple[Any, ...]) -> None:
    """Any bytes at all: an Answer or ProbeError malformed/mismatched naming the server."""
    _judge(reply, *which)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(_FUZZ_QUESTIONS))
def test_parser_survives_damaged_real_answers(data: st.DataObject, which: tuple[Any, ...]) -> None:
    """Real signed answers with bytes changed, cut or appended: parsed, verified and judged
    without any exception but ProbeError."""
    qname, rdtype, _ = which
    _judge(data.draw(mutated(honest_wire(qname, rdtype, 0x1234))), *which)


class _MutatingServer:
    """UDP and TCP on one port of 127.0.0.1, in its own thread and loop, answering every query
    with the honest answer passed through ``self.damage`` (set per example)."""

    def __init__(self) -> None:
        self.damage: Callable[[bytes], bytes] = lambda wire: wire
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> _MutatingServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reply(self, wire: bytes, transport: str) -> bytes:
        query = dns.message.from_wire(wire)
        honest = answer(_FUZZ_ZONES, query).to_wire()
        if transport == "udp" and len(honest) > dnsio.EDNS_PAYLOAD:
            honest = honest[:2] + bytes([honest[2] | 0x02]) + honest[3:12]  # TC=1, no records
        return self.damage(honest)

    async def _start(self) -> None:
        server = self

        class Udp(asyncio.DatagramProtocol):
            transport: Any = None

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(server.reply(data, "udp")[:65000], addr)

        self._udp, self._tcp, self.port = await _udp_and_tcp(Udp, self._serve_tcp)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            length = int.from_bytes(await reader.readexactly(2), "big")
            data = self.reply(await reader.readexactly(length), "tcp")[:65535]
            writer.write(len(data).to_bytes(2, "big") + data)
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


@pytest.fixture(scope="module")
def mutating_server() -> Iterator[_MutatingServer]:
    with _MutatingServer() as server:
        yield server


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 6), cut=st.booleans())
def test_a_server_answering_damaged_bytes_becomes_findings(
    mutating_server: _MutatingServer, seed: int, flips: int, cut: bool
) -> None:
    """A server whose every answer (UDP and TCP) is damaged: the whole check, from the wire to
    the engine, ends with a report; whatever failed names the server."""
    rng = random.Random(seed)

    def damage(wire: bytes) -> bytes:
        data = bytearray(wire)
        for _ in range(flips):
            data[rng.randrange(2, len(data))] = rng.randrange(256)
        return bytes(data[: rng.randrange(2, len(data) + 1)] if cut else data)

    mutating_server.damage = damage
    address = f"{HOST}:{mutating_server.port}"
    probe = ProbeSettings(timeout=0.2, retries=0, resolver=(HOST, 9))

    async def check() -> ZoneReport:
        async with Prober(probe) as prober:
            observation = await prober.probe(zone_target(BAD, (address,), anchor(_FUZZ_KEYS, BAD)))
        return assess_zone(observation, int(time.time()))

    report = asyncio.run(check())
    failures = [f for s in report.servers for f in s.findings if f.code in _TRANSPORT_CODES]
    assert all(f.server == address and address in f.message for f in failures)


_TRANSPORT_CODES = frozenset({"malformed", "mismatched", "timeout", "connection_closed"})


async def _udp_and_tcp(
    protocol: Callable[[], asyncio.DatagramProtocol],
    serve_tcp: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None,
) -> tuple[Any, Any, int]:
    """UDP and TCP on one free port of 127.0.0.1 (retried: a free UDP port may be taken for
    TCP). Without ``serve_tcp`` the TCP port is bound and never listens: connections to it are
    refused, and nobody else can take it meanwhile."""
    loop = asyncio.get_running_loop()
    for _ in range(20):
        udp, _ = await loop.create_datagram_endpoint(protocol, local_addr=(HOST, 0))
        port: int = udp.get_extra_info("sockname")[1]
        try:
            if serve_tcp is not None:
                return udp, await asyncio.start_server(serve_tcp, HOST, port), port
            closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                closed.bind((HOST, port))
            except OSError:
                closed.close()
                raise
            return udp, closed, port
        except OSError:
            udp.close()
    raise AssertionError("no port of 127.0.0.1 free for both UDP and TCP after 20 tries")


class _TruncatingUdpOnly:
    """Answers every UDP query with TC=1 and nothing else. No TCP listener on that port, or
    with ``trickle`` one that announces 256 bytes and sends one every 50 ms."""

    def __init__(self, *, trickle: bool = False) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | socket.socket | None = None
        self._trickle = trickle
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def _dribble(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            for byte in b"\x01\x00" + bytes(256):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass  # the client gave up: the point of this server
        finally:
            writer.close()  # also when cancelled at the end of the test
            self._handlers.discard(task)

    async def __aenter__(self) -> _TruncatingUdpOnly:
        class Protocol(asyncio.DatagramProtocol):
            transport: Any = None

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                response = dns.message.make_response(dns.message.from_wire(data))
                response.flags |= dns.flags.TC | dns.flags.AA
                self.transport.sendto(response.to_wire(), addr)

        handler = self._dribble if self._trickle else None
        self._transport, self._tcp, self.port = await _udp_and_tcp(Protocol, handler)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
        if isinstance(self._tcp, socket.socket):
            self._tcp.close()
        elif self._tcp is not None:
            self._tcp.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._tcp.wait_closed()


# --- a real resolver meeting a delegation loop ---------------------------------------------------


@pytest.mark.realdns
async def test_an_ns_loop_through_unbound_is_a_named_lookup_failure(
    tmp_path: Path, require_binaries: Callable[..., None], lab: Lab
) -> None:
    """loop. and loopb. delegate to each other's names without glue: Unbound answers SERVFAIL
    for the NS question; the report says which lookup failed, within the budget."""
    require_binaries("nsd", "unbound")
    from lab import NsdServer, Unbound, make_unsigned_zone

    parent = make_unsigned_zone(
        tmp_path / "parent",
        "watchdog.test.",
        records=["loop IN NS ns.loopb", "loopb IN NS ns.loop"],
    )
    with contextlib.ExitStack() as stack:
        nsd = stack.enter_context(NsdServer(tmp_path / "nsd", [parent]))
        unbound = stack.enter_context(
            # No trust anchor: it fetches DNSSEC data and judges none (the prober asks CD=1).
            Unbound(
                tmp_path / "unbound",
                zones=["watchdog.test."],
                trust_anchors=(),
                upstream=(nsd.address, nsd.port),
                stub=True,
            )
        )
        probe = ProbeSettings(
            timeout=1.0, retries=RETRIES, resolver=(unbound.address, unbound.port)
        )
        started = time.monotonic()
        async with Prober(probe) as prober:
            loop_zone, healthy = await prober.probe_many(
                [
                    zone_target("loop.watchdog.test."),
                    zone_target(OK, (lab.good_address,), lab.ok_anchor),
                ]
            )
        seconds = time.monotonic() - started
    now = int(time.time())
    report = assess_zone(loop_zone, now)
    print(f"| ns-loop-through-unbound | {report.severity.value} | "
          f"{', '.join(sorted({f.code for f in report.findings}))} | {seconds:.2f} s | "
          f"{budget(probe):.1f} s |")  # fmt: skip
    failed = [f for f in report.findings if f.code == "ns_lookup_failed"]
    assert failed and "loop.watchdog.test." in failed[0].message, report.findings
    assert report.severity is Severity.UNREACHABLE
    assert assess_zone(healthy, now).severity is Severity.OK
    assert seconds < budget(probe)
