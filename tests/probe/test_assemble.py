"""From answers to observations (watchdog.probe.assemble), and the answer checks of dnsio.

These are the judgements a real server rarely lets a test provoke: a DNSKEY answer lost on one
server, DS sets that half match, DS digests we cannot check, a parent key we could not fetch,
and replies that do not belong to the question. Zones are signed in memory with dnspython.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from watchdog.config.targets import TrustAnchor
from watchdog.engine.assess import assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.observations import ChainStatus, Verification, ZoneObservation
from watchdog.errors import ProbeError
from watchdog.probe import dnsio
from watchdog.probe.assemble import Collected, assemble
from watchdog.probe.discovery import ParentDS, ServerAddress
from watchdog.probe.verify import SignatureVerifier

APEX = dns.name.from_text("example.test.")
PARENT = dns.name.from_text("test.")
NOW = 1_900_000_000


@dataclass
class Keys:
    """A KSK/ZSK pair of one zone, able to sign RRsets."""

    owner: dns.name.Name

    def __post_init__(self) -> None:
        self.ksk_private = ec.generate_private_key(ec.SECP256R1())
        self.zsk_private = ec.generate_private_key(ec.SECP256R1())
        self.ksk = dns.dnssec.make_dnskey(
            self.ksk_private.public_key(), Algorithm.ECDSAP256SHA256, flags=257
        )
        self.zsk = dns.dnssec.make_dnskey(self.zsk_private.public_key(), Algorithm.ECDSAP256SHA256)

    def signed(self, rrset: dns.rrset.RRset, *, ksk: bool = False) -> list[dnsio.RRset]:
        private, key = (self.ksk_private, self.ksk) if ksk else (self.zsk_private, self.zsk)
        rrsig = dns.dnssec.sign(
            rrset, private, self.owner, key, inception=NOW - 3600, expiration=NOW + 86400
        )
        return [_light(rrset), _light(dns.rrset.from_rdata(rrset.name, rrset.ttl, rrsig))]

    def dnskey_rrset(self) -> dns.rrset.RRset:
        return dns.rrset.from_rdata(self.owner, 3600, self.ksk, self.zsk)

    def ds(self) -> dns.rrset.RRset:
        return dns.rrset.from_rdata(self.owner, 3600, dns.dnssec.make_ds(self.owner, self.ksk, 2))


def _light(rrset: dns.rrset.RRset) -> dnsio.RRset:
    return dnsio.RRset(rrset.name, rrset.rdtype, rrset.covers, rrset.ttl, tuple(rrset))


def _answer(*rrsets: dnsio.RRset, rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> dnsio.Answer:
    return dnsio.Answer(rcode, dns.flags.QR | dns.flags.AA, tuple(rrsets))


SOA = dns.rrset.from_text(
    APEX, 3600, "IN", "SOA", "ns1.example.test. host.example.test. 7 3600 900 1209600 300"
)


def _server(keys: Keys | None, address: str = "192.0.2.1", *, dnskey: str = "served") -> Collected:
    """One server's answers: a signed SOA and, per ``dnskey``, its DNSKEY RRset ("served"),
    an answer without one ("absent") or no answer at all ("lost")."""
    found = Collected(ServerAddress(address, 53, "ns1.example.test."), APEX)
    assert found.apex_soa(_answer(*(keys.signed(SOA) if keys else [_light(SOA)])))
    if dnskey == "lost":
        found.fail(ProbeError("timeout", "no answer"), Severity.UNKNOWN, APEX, dns.rdatatype.DNSKEY)
    elif dnskey == "absent" or keys is None:
        found.record(_answer(), APEX, dns.rdatatype.DNSKEY, "dnskey")
    else:
        answer = _answer(*keys.signed(keys.dnskey_rrset(), ksk=True))
        found.record(answer, APEX, dns.rdatatype.DNSKEY, "dnskey")
    return found


def _observe(
    *servers: Collected,
    parent: ParentDS | None = None,
    parent_keys: dict[dns.name.Name, dnsio.Answer] | None = None,
    anchor: TrustAnchor | None = None,
) -> ZoneObservation:
    return assemble(
        "example.test.",
        APEX,
        servers,
        parent or ParentDS(),
        parent_keys or {},
        anchor,
        SignatureVerifier(),
    )


def _ds_from_parent(keys: Keys, parent: Keys) -> ParentDS:
    ds, rrsig = parent.signed(keys.ds())
    return ParentDS(ds, rrsig)


def _sigs(obs: ZoneObservation, address: str, rtype: str) -> list[Verification]:
    server = next(s for s in obs.servers if s.address == f"{address}:53")
    return [sig.verification for r in server.rrsets if r.rtype == rtype for sig in r.signatures]


def test_a_lost_dnskey_answer_is_not_called_bogus() -> None:
    """One server's DNSKEY answer timed out: its SOA is verified with the keys the other
    server served, and only the timeout is reported for it."""
    keys = Keys(APEX)
    obs = _observe(
        _server(keys, "192.0.2.1"),
        _server(keys, "192.0.2.2", dnskey="lost"),
        parent=_ds_from_parent(keys, Keys(PARENT)),
    )
    assert obs.chain is ChainStatus.PARENT_DS
    assert _sigs(obs, "192.0.2.2", "SOA") == [Verification.VALID]
    lost = next(s for s in obs.servers if s.address == "192.0.2.2:53")
    assert [p.code for p in lost.problems] == ["timeout"]


def test_no_dnskey_answer_anywhere_leaves_the_chain_unverified() -> None:
    """With an anchor but no DNSKEY answer at all, the chain is NOT_CHECKED and says why."""
    keys = Keys(APEX)
    anchor = TrustAnchor(APEX, dnskeys=(keys.ksk,))
    obs = _observe(_server(keys, dnskey="lost"), anchor=anchor)
    assert obs.chain is ChainStatus.NOT_CHECKED and obs.signed
    assert [p.code for p in obs.problems] == ["chain_unverified"]
    assert _sigs(obs, "192.0.2.1", "SOA") == [Verification.NO_KEY]


def test_a_server_whose_keys_no_ds_matches_is_bogus_while_the_chain_holds() -> None:
    """Mid key rollover gone wrong on one server: the DS matches the other server's keys, so
    the chain holds, and the odd server gets a ds_mismatch finding."""
    keys, stray = Keys(APEX), Keys(APEX)
    obs = _observe(
        _server(keys, "192.0.2.1"),
        _server(stray, "192.0.2.2"),
        parent=_ds_from_parent(keys, Keys(PARENT)),
    )
    assert obs.chain is ChainStatus.PARENT_DS
    odd = next(s for s in obs.servers if s.address == "192.0.2.2:53")
    assert [(p.code, p.severity) for p in odd.problems] == [("ds_mismatch", Severity.BOGUS)]
    assert _sigs(obs, "192.0.2.2", "DNSKEY") == [Verification.NO_KEY]
    assert assess_zone(obs, NOW).severity is Severity.BOGUS


def test_a_ds_set_we_cannot_check_is_said_so() -> None:
    """Only GOST digests at the parent: the chain is not checked, with a ds_unsupported finding."""
    keys, parent = Keys(APEX), Keys(PARENT)
    gost = dns.dnssec.make_ds(APEX, keys.ksk, 2).replace(digest_type=3)
    ds, rrsig = parent.signed(dns.rrset.from_rdata(APEX, 3600, gost))
    obs = _observe(_server(keys), parent=ParentDS(ds, rrsig))
    assert obs.chain is ChainStatus.NOT_CHECKED
    assert [p.code for p in obs.problems] == ["ds_unsupported"]


def test_the_parents_ds_signature_is_verified_with_the_parents_keys() -> None:
    """The DS RRSIG verifies against the parent's DNSKEY answer; without it, NO_KEY says why."""
    keys, parent = Keys(APEX), Keys(PARENT)
    ds_answer = _ds_from_parent(keys, parent)
    parent_dnskey = _answer(*parent.signed(parent.dnskey_rrset(), ksk=True))
    obs = _observe(_server(keys), parent=ds_answer, parent_keys={PARENT: parent_dnskey})
    assert obs.ds is not None
    assert [(s.verification, s.signer) for s in obs.ds.signatures] == [
        (Verification.VALID, "test.")
    ]
    orphan = _observe(_server(keys), parent=ds_answer)
    assert orphan.ds is not None
    (sig,) = orphan.ds.signatures
    assert sig.verification is Verification.NO_KEY and "could not be fetched" in sig.reason


def test_an_unsigned_zone_is_only_unsigned_when_a_server_says_so() -> None:
    """DNSKEY answered empty, no DS: not signed, no RRsets to watch. Silence is not 'unsigned'."""
    plain = _observe(_server(None))
    assert not plain.signed and plain.servers[0].rrsets == ()
    assert plain.servers[0].serial == 7
    silent = _observe(_server(Keys(APEX), dnskey="lost"))
    assert silent.signed


def test_a_secondary_without_dnskey_in_a_signed_zone_is_flagged() -> None:
    """One server answers DNSKEY without keys while the DS says signed: no_dnskey, BOGUS."""
    keys = Keys(APEX)
    obs = _observe(
        _server(keys, "192.0.2.1"),
        _server(keys, "192.0.2.2", dnskey="absent"),
        parent=_ds_from_parent(keys, Keys(PARENT)),
    )
    odd = next(s for s in obs.servers if s.address == "192.0.2.2:53")
    assert [(p.code, p.severity) for p in odd.problems] == [("no_dnskey", Severity.BOGUS)]


# -- dnsio: the checks every answer passes before anyone reads it --------------------------------

QNAME = dns.name.from_text("example.test.")


def _reply(
    *, ident: int = 0x1234, qname: str = "Example.TEST.", rdtype: str = "SOA", **flags: int
) -> bytes:
    query = dns.message.make_query(qname, rdtype)
    response = dns.message.make_response(query)
    response.id = ident
    response.flags |= flags.get("set", 0)
    response.flags &= ~flags.get("clear", 0)
    response.answer.append(SOA)
    wire = response.to_wire()
    assert isinstance(wire, bytes)
    return wire


def _parse(reply: bytes, rdtype: dns.rdatatype.RdataType = dns.rdatatype.SOA) -> dnsio.Answer:
    question = dnsio.query_wire(QNAME, rdtype, recursive=False)
    where = dnsio._Where("192.0.2.1", 53, QNAME, rdtype)
    return dnsio._parse(reply, question, 0x1234, False, where)


def test_a_matching_answer_is_decoded_whatever_the_case_of_its_question() -> None:
    """Same id, QR set, same question (case-insensitively): the SOA comes through."""
    answer = _parse(_reply())
    assert answer.rcode == dns.rcode.NOERROR
    assert [(r.name, r.rdtype) for r in answer.answer] == [(APEX, dns.rdatatype.SOA)]


@pytest.mark.parametrize(
    ("reply", "rdtype"),
    [
        (_reply(ident=0x4321), dns.rdatatype.SOA),
        (_reply(qname="other.test."), dns.rdatatype.SOA),
        (_reply(), dns.rdatatype.DNSKEY),
        (_reply(clear=dns.flags.QR), dns.rdatatype.SOA),
    ],
    ids=["wrong-id", "other-name", "other-type", "not-a-response"],
)
def test_an_answer_to_another_question_is_mismatched(
    reply: bytes, rdtype: dns.rdatatype.RdataType
) -> None:
    """Wrong id, name, type, or no QR bit: ProbeError 'mismatched', never data."""
    with pytest.raises(ProbeError) as caught:
        _parse(reply, rdtype)
    assert caught.value.code == "mismatched"


@pytest.mark.parametrize("cut", [5, 20, -3])
def test_a_cut_off_answer_is_malformed(cut: int) -> None:
    """Bytes missing from the header, question or records: ProbeError 'malformed'."""
    with pytest.raises(ProbeError) as caught:
        _parse(_reply()[:cut])
    assert caught.value.code in {"malformed", "mismatched"}
    if cut != 20:  # 20 bytes end inside the question: it no longer matches ours
        assert caught.value.code == "malformed"


def test_a_record_count_beyond_the_data_is_malformed() -> None:
    """An ANCOUNT promising more records than the message holds."""
    reply = bytearray(_reply())
    struct.pack_into("!H", reply, 6, 9)
    with pytest.raises(ProbeError) as caught:
        _parse(bytes(reply))
    assert caught.value.code == "malformed"


def test_the_question_wire_asks_for_dnssec_with_a_1232_byte_buffer() -> None:
    """The prebuilt question parses as DO=1, EDNS0, payload 1232; RD only when recursive."""
    auth = dns.message.from_wire(dnsio.query_wire(QNAME, dns.rdatatype.SOA, recursive=False))
    assert auth.edns == 0 and auth.payload == 1232 and auth.ednsflags & dns.flags.DO
    assert not auth.flags & dns.flags.RD
    rec = dns.message.from_wire(dnsio.query_wire(QNAME, dns.rdatatype.DS, recursive=True))
    assert rec.flags & dns.flags.RD and rec.flags & dns.flags.CD
    assert rec.question[0].rdtype == dns.rdatatype.DS


def test_dnskeys_in_fixtures_are_zone_keys() -> None:
    """Guards the helpers: KSK flags 257, ZSK 256."""
    keys = Keys(APEX)
    assert isinstance(keys.ksk, DNSKEY) and (keys.ksk.flags, keys.zsk.flags) == (257, 256)
