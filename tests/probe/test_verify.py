"""Signature verification and DS/anchor matching of the prober (no network).

Keys are made here with cryptography and signatures with dnspython's dns.dnssec.sign, an
independent signer; dns.dnssec.validate_rrsig serves as a second opinion where useful.
"""

from __future__ import annotations

import functools

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from watchdog.config.targets import parse_trust_anchor
from watchdog.engine.observations import Verification
from watchdog.probe.verify import (
    KeySet,
    SignatureVerifier,
    ds_matches,
    key_tag,
    secure_entry_keys,
)

ZONE = dns.name.from_text("example.test.")
NOW = 1_900_000_000

_GENERATORS = {
    Algorithm.RSASHA1: lambda: rsa.generate_private_key(65537, 2048),
    Algorithm.RSASHA1NSEC3SHA1: lambda: rsa.generate_private_key(65537, 2048),
    Algorithm.RSASHA256: lambda: rsa.generate_private_key(65537, 2048),
    Algorithm.RSASHA512: lambda: rsa.generate_private_key(65537, 2048),
    Algorithm.ECDSAP256SHA256: lambda: ec.generate_private_key(ec.SECP256R1()),
    Algorithm.ECDSAP384SHA384: lambda: ec.generate_private_key(ec.SECP384R1()),
    Algorithm.ED25519: ed25519.Ed25519PrivateKey.generate,
    Algorithm.ED448: ed448.Ed448PrivateKey.generate,
}


@functools.cache
def _key(algorithm: Algorithm, flags: int = 256, serial: int = 0):  # type: ignore[no-untyped-def]
    """A private key and its DNSKEY; ``serial`` makes distinct keys of one kind."""
    private = _GENERATORS[algorithm]()
    return private, dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=flags)


def _rrset(owner: str = "www.example.test.", rtype: str = "A", *rdatas: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", rtype, *(rdatas or ("192.0.2.1", "192.0.2.2")))


def _sign(
    rrset: dns.rrset.RRset,
    algorithm: Algorithm = Algorithm.ECDSAP256SHA256,
    *,
    inception: int = NOW - 3600,
    expiration: int = NOW + 86400,
    signer: dns.name.Name = ZONE,
) -> tuple[RRSIG, DNSKEY]:
    private, dnskey = _key(algorithm)
    rrsig = dns.dnssec.sign(
        rrset, private, signer, dnskey, inception=inception, expiration=expiration
    )
    return rrsig, dnskey


def _verify(
    rrset: dns.rrset.RRset,
    rrsig: RRSIG,
    keys: list[DNSKEY],
    verifier: SignatureVerifier | None = None,
) -> tuple[Verification, str]:
    return (verifier or SignatureVerifier()).verify(
        rrset.name, rrset.rdtype, list(rrset), rrsig, KeySet(keys), signer=ZONE
    )


def _tamper(rrsig: RRSIG) -> RRSIG:
    signature = bytearray(rrsig.signature)
    signature[len(signature) // 2] ^= 0x01
    return rrsig.replace(signature=bytes(signature))


# -- verification -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(_GENERATORS), ids=lambda a: a.name)
def test_a_correct_signature_verifies_for_every_supported_algorithm(algorithm: Algorithm) -> None:
    """RSASHA1 through ED448: a genuine signature is VALID, and dnspython agrees."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset, algorithm)
    assert _verify(rrset, rrsig, [dnskey]) == (Verification.VALID, "")
    dns.dnssec.validate_rrsig(
        rrset, rrsig, {ZONE: dns.rrset.from_rdata(ZONE, 300, dnskey)}, now=NOW
    )


@pytest.mark.parametrize("algorithm", list(_GENERATORS), ids=lambda a: a.name)
def test_a_tampered_signature_is_bogus_for_every_algorithm(algorithm: Algorithm) -> None:
    """One flipped bit in the signature makes it BOGUS, with a reason naming the key."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset, algorithm)
    verification, reason = _verify(rrset, _tamper(rrsig), [dnskey])
    assert verification is Verification.BOGUS
    assert str(rrsig.key_tag) in reason


def test_changed_data_under_a_signature_is_bogus() -> None:
    """A signature over other data (a changed address) does not verify."""
    rrsig, dnskey = _sign(_rrset())
    served = _rrset("www.example.test.", "A", "192.0.2.1", "192.0.2.99")
    assert _verify(served, rrsig, [dnskey])[0] is Verification.BOGUS


def test_record_order_and_owner_case_do_not_matter() -> None:
    """Canonical form (RFC 4034 6.2/6.3): order of records and case of the owner are ignored."""
    rrsig, dnskey = _sign(_rrset("www.example.test.", "A", "192.0.2.1", "192.0.2.2"))
    served = _rrset("WWW.Example.TEST.", "A", "192.0.2.2", "192.0.2.1")
    assert _verify(served, rrsig, [dnskey]) == (Verification.VALID, "")


@pytest.mark.parametrize(
    ("inception", "expiration"),
    [
        (NOW - 400 * 86400, NOW - 300 * 86400),  # expired long ago
        (NOW + 300 * 86400, NOW + 400 * 86400),  # not yet valid
        (4294967000, 500),  # straddles the 2106 wrap of the 32-bit fields
    ],
    ids=["expired", "future", "wraps-2106"],
)
def test_verification_does_not_depend_on_the_clock(inception: int, expiration: int) -> None:
    """Dates are the engine's business: expired, future and wrapping signatures still verify."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset, inception=inception, expiration=expiration)
    assert _verify(rrset, rrsig, [dnskey]) == (Verification.VALID, "")


def test_a_signature_by_a_key_not_in_the_set_is_no_key() -> None:
    """A key tag matching no DNSKEY: NO_KEY, and the reason names the key tag."""
    rrset = _rrset()
    rrsig, _ = _sign(rrset, Algorithm.ECDSAP256SHA256)
    _, other = _key(Algorithm.ED25519)
    verification, reason = _verify(rrset, rrsig, [other])
    assert verification is Verification.NO_KEY
    assert str(rrsig.key_tag) in reason


def test_a_signer_other_than_the_apex_is_no_key() -> None:
    """RFC 4035 5.3.1: the signer must be the zone apex, even if the key itself matches."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset, signer=dns.name.from_text("test."))
    verification, reason = _verify(rrset, rrsig, [dnskey])
    assert verification is Verification.NO_KEY
    assert "test." in reason


@pytest.mark.parametrize("algorithm", [3, 6, 12, 17, 23, 253])
def test_unsupported_algorithms_are_neither_valid_nor_bogus(algorithm: int) -> None:
    """DSA, GOST, private and unassigned algorithm numbers: UNSUPPORTED_ALGORITHM."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset)
    verification, _ = _verify(rrset, rrsig.replace(algorithm=algorithm), [dnskey])
    assert verification is Verification.UNSUPPORTED_ALGORITHM


def test_a_revoked_key_verifies_only_the_dnskey_rrset() -> None:
    """RFC 5011 2.1: a DNSKEY with the REVOKE bit cannot vouch for other data."""
    private, _ = _key(Algorithm.ED25519)
    revoked = dns.dnssec.make_dnskey(private.public_key(), Algorithm.ED25519, flags=257 | 0x80)
    rrset = _rrset()
    rrsig = dns.dnssec.sign(rrset, private, ZONE, revoked, inception=NOW, expiration=NOW + 9)
    assert _verify(rrset, rrsig, [revoked])[0] is Verification.NO_KEY
    keys = dns.rrset.from_rdata(ZONE, 300, revoked)
    rrsig = dns.dnssec.sign(keys, private, ZONE, revoked, inception=NOW, expiration=NOW + 9)
    assert _verify(keys, rrsig, [revoked])[0] is Verification.VALID


def test_a_wildcard_expanded_answer_verifies() -> None:
    """An answer synthesised from *.example.test. carries the wildcard's signature (labels=2)."""
    wildcard = _rrset("*.example.test.", "TXT", '"hello"')
    rrsig, dnskey = _sign(wildcard)
    expanded = _rrset("anything.deep.example.test.", "TXT", '"hello"')
    assert _verify(expanded, rrsig, [dnskey]) == (Verification.VALID, "")
    assert _verify(_rrset("example.test.", "TXT", '"hello"'), rrsig, [dnskey])[0] is (
        Verification.BOGUS
    )


def test_identical_pairs_are_verified_once() -> None:
    """The same RRset and RRSIG seen on several servers costs one public-key operation."""
    rrset = _rrset()
    rrsig, dnskey = _sign(rrset)
    verifier = SignatureVerifier()
    for _ in range(5):
        assert _verify(_rrset(), rrsig, [dnskey], verifier)[0] is Verification.VALID
    assert verifier.verified == 1
    assert _verify(rrset, _tamper(rrsig), [dnskey], verifier)[0] is Verification.BOGUS
    assert _verify(rrset, _tamper(rrsig), [dnskey], verifier)[0] is Verification.BOGUS
    assert verifier.verified == 2


def test_observe_reports_raw_fields_of_each_signature() -> None:
    """Each RRSIG becomes a SignatureObservation with its raw 32-bit dates and key tag."""
    rrset = _rrset()
    first, dnskey = _sign(rrset, inception=NOW - 10, expiration=NOW + 10)
    second, _ = _sign(rrset, inception=NOW - 20, expiration=NOW + 20)
    observed = SignatureVerifier().observe(
        rrset.name,
        rrset.rdtype,
        list(rrset),
        [first, _tamper(second)],
        KeySet([dnskey]),
        signer=ZONE,
    )
    assert [(s.inception, s.expiration) for s in observed] == [
        (NOW - 10, NOW + 10),
        (NOW - 20, NOW + 20),
    ]
    assert [s.verification for s in observed] == [Verification.VALID, Verification.BOGUS]
    assert {(s.owner, s.rtype, s.key_tag, s.signer) for s in observed} == {
        ("www.example.test.", "A", key_tag(dnskey), "example.test.")
    }


# -- DS and trust anchors -----------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["SHA1", "SHA256", "SHA384"])
def test_a_ds_matches_its_key_and_no_other(digest: str) -> None:
    """DS digests SHA-1, SHA-256 and SHA-384 match their own key only."""
    _, ksk = _key(Algorithm.ECDSAP256SHA256, 257)
    _, other = _key(Algorithm.ECDSAP256SHA256, 257, 1)
    ds = dns.dnssec.make_ds(ZONE, ksk, digest, validating=True)
    assert ds_matches(ds, ksk, ZONE)
    assert not ds_matches(ds, other, ZONE)
    assert not ds_matches(ds, ksk, dns.name.from_text("other.test."))
    assert secure_entry_keys([other, ksk], ZONE, [ds], []) == [ksk]


def test_a_ds_with_an_unsupported_digest_matches_nothing() -> None:
    """GOST (digest type 3) is not checked, so it cannot tie a key to the parent."""
    _, ksk = _key(Algorithm.ECDSAP256SHA256, 257)
    ds = dns.dnssec.make_ds(ZONE, ksk, "SHA256", validating=True).replace(digest_type=3)
    assert not ds_matches(ds, ksk, ZONE)


def test_trust_anchor_accepts_what_the_signing_tools_print() -> None:
    """dsset lines, K*.key files with comments, parentheses and no TTL/class all parse."""
    _, ksk = _key(Algorithm.ECDSAP256SHA256, 257)
    ds = dns.dnssec.make_ds(ZONE, ksk, "SHA256")
    half = len(ksk.to_text()) // 2
    text = "\n".join(
        [
            "; This is a key-signing key, keyid 12345, for example.test.",
            f"example.test. 3600 IN DS {ds.to_text()}",
            f"example.test. IN DNSKEY ( {ksk.to_text()[:half]}",
            f"    {ksk.to_text()[half:]} ) ; KSK",
        ]
    )
    anchor = parse_trust_anchor(text, ZONE)
    assert anchor.zone == ZONE
    assert anchor.ds == (ds,)
    assert anchor.dnskeys == (ksk,)
    assert secure_entry_keys([ksk], ZONE, anchor.ds, []) == [ksk]
    assert secure_entry_keys([ksk], ZONE, [], anchor.dnskeys) == [ksk]


def test_dnssec_rdata_sanity() -> None:
    """The test keys are zone keys with the flags asked for (guards the helpers above)."""
    _, ksk = _key(Algorithm.ED25519, 257)
    assert ksk.flags == 257
    assert dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, ksk.to_text()) == ksk
