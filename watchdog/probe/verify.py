"""Cryptographic checks, independent of the clock: RRSIG verification and DS/anchor matching.

Time is the engine's business (assess.py); here a signature is only VALID, BOGUS, NO_KEY or
UNSUPPORTED_ALGORITHM. The signed data is rebuilt as RFC 4034 3.1.8.1 describes and checked
with dnspython's algorithm classes (dns.dnssecalgs), so no clock or policy gets in the way:
dns.dnssec.validate_rrsig compares raw 32-bit dates with the clock and cannot see past 2106.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import dns.dnssec
import dns.dnssecalgs
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.exceptions import InvalidSignature
from dns.dnssecalgs.base import GenericPublicKey
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from watchdog.engine.observations import SignatureObservation, Verification

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "SUPPORTED_DIGESTS",
    "KeySet",
    "SignatureVerifier",
    "ds_matches",
    "key_tag",
    "secure_entry_keys",
    "signature_data",
]

# RSASHA1, RSASHA1-NSEC3-SHA1, RSASHA256, RSASHA512, ECDSAP256SHA256, ECDSAP384SHA384, ED25519,
# ED448 (RFC 8624 3.1: the algorithms a validator implements). DSA, GOST and private
# algorithms are UNSUPPORTED_ALGORITHM: unknown to us, not bogus.
SUPPORTED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
# DS digest types: SHA-1, SHA-256, SHA-384 (RFC 8624 3.3). GOST (3) is not checked.
SUPPORTED_DIGESTS = frozenset({1, 2, 4})

_ZONE_FLAG = 0x0100  # RFC 4034 2.1.1
_DNSKEY_HEAD = struct.Struct("!HBB")  # flags, protocol, algorithm (RFC 4034 2.1)
_DIGEST_NAMES = {1: "sha1", 2: "sha256", 4: "sha384"}  # DS digest types (RFC 4034, 4509, 6605)
_REVOKE_FLAG = 0x0080  # RFC 5011 2.1
# Verification outcomes (~170 bytes each): a miss costs a public-key operation (~80 us for
# ECDSA P-256), and 10,000 zones keep ~50,000 signatures in use, so room for four times that.
_OUTCOME_LIMIT = 200_000
# Public key objects (~2 kB each in OpenSSL): needed only when an outcome is not cached, and
# loading one again costs ~10 us. A zone's signatures come in together, made by its few keys;
# across a cycle of thousands of zones, each with keys of its own, a cache of thousands missed
# anyway (zones are walked in turn) while holding ~8 MB a process. (At 200,000, a year of key
# rollovers at 10,000 zones could hold hundreds of MB.)
_PUBLIC_KEY_LIMIT = 256

_V = TypeVar("_V")


def key_tag(key: DNSKEY) -> int:
    """The RFC 4034 Appendix B key tag of ``key``."""
    if key.algorithm == 1:  # RSAMD5 tags differ (RFC 4034 Appendix B.1)
        return dns.dnssec.key_id(key)
    return _tag(_dnskey_wire(key))


def _dnskey_wire(key: DNSKEY) -> bytes:
    """The DNSKEY RDATA on the wire; it holds no name, so this is its canonical form too."""
    return _DNSKEY_HEAD.pack(key.flags, key.protocol, key.algorithm) + key.key


def _tag(wire: bytes) -> int:
    # RFC 4034 Appendix B: the RDATA summed as big-endian 16-bit words (an odd last byte is the
    # high half of a word), the carry added back once. unpack sums in C what dnspython's
    # key_id loops over byte by byte in Python (300 iterations for an RSA-2048 key).
    if len(wire) % 2:
        wire += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(wire) // 2}H", wire)
    total = sum(words)
    return (total + (total >> 16)) & 0xFFFF


def ds_matches(ds: DS, key: DNSKEY, zone: dns.name.Name) -> bool:
    """Whether ``ds`` is the digest of ``key`` at ``zone`` (RFC 4034 5.1.4)."""
    if ds.key_tag != key_tag(key) or ds.algorithm != key.algorithm:
        return False
    if ds.digest_type not in SUPPORTED_DIGESTS:
        return False
    # RFC 4034 5.1.4: digest = hash(canonical owner name | DNSKEY RDATA).
    made = hashlib.new(_DIGEST_NAMES[ds.digest_type], zone.to_digestable() + _dnskey_wire(key))
    return made.digest() == ds.digest


def secure_entry_keys(
    keys: Iterable[DNSKEY], zone: dns.name.Name, ds: Sequence[DS], anchor_keys: Sequence[DNSKEY]
) -> list[DNSKEY]:
    """The served zone keys a DS or an anchor DNSKEY points at (RFC 4035 5.2)."""
    return [
        key
        for key in keys
        if key.flags & _ZONE_FLAG
        and key.protocol == 3
        and (key in anchor_keys or any(ds_matches(d, key, zone) for d in ds))
    ]


def signature_data(
    owner: dns.name.Name, rdtype: int, rdatas: Iterable[dns.rdata.Rdata], rrsig: RRSIG
) -> bytes:
    """The bytes ``rrsig`` signs: RRSIG RDATA without the signature, then the RRset (class IN)
    in canonical form and order, duplicates removed, with the original TTL (RFC 4034 3.1.8.1,
    6.2, 6.3).

    Raises ValueError when the owner and the RRSIG's labels field disagree (RFC 4035 5.3.1).
    """
    return _signed_data(owner, rdtype, _canonical_rdatas(rdatas), rrsig)


def _canonical_rdatas(rdatas: Iterable[dns.rdata.Rdata]) -> list[bytes]:
    """The RRset's RDATA in canonical form and order, duplicates removed (RFC 4034 6.2, 6.3);
    the same for every RRSIG over the set, so made once per set."""
    return sorted({r.to_digestable() for r in rdatas})


def _signed_data(
    owner: dns.name.Name, rdtype: int, canonical: Sequence[bytes], rrsig: RRSIG
) -> bytes:
    head = struct.pack(
        "!HBBIIIH",
        rrsig.type_covered,
        rrsig.algorithm,
        rrsig.labels,
        rrsig.original_ttl,
        rrsig.expiration,
        rrsig.inception,
        rrsig.key_tag,
    )
    labels = len(owner) - 1  # the root label does not count
    if owner.is_wild():
        labels -= 1
    if rrsig.labels > labels:
        raise ValueError(f"labels field {rrsig.labels} exceeds the owner's {labels} labels")
    if rrsig.labels < labels:
        # Wildcard expansion (RFC 4035 5.3.2): the signed owner is "*." + the rightmost labels.
        owner = dns.name.Name((b"*", *owner.labels[-(rrsig.labels + 1) :]))
    fixed = owner.to_digestable() + struct.pack(
        "!HHI", rdtype, dns.rdataclass.IN, rrsig.original_ttl
    )
    parts = [head, rrsig.signer.to_digestable()]
    for rdata in canonical:
        parts += (fixed, struct.pack("!H", len(rdata)), rdata)
    return b"".join(parts)


class KeySet:
    """Zone keys indexed by (algorithm, key tag), each tag computed once per check."""

    def __init__(self, keys: Iterable[DNSKEY] = ()) -> None:
        self._keys: dict[tuple[int, int], list[tuple[DNSKEY, bytes]]] = {}
        wires = []
        for key in keys:
            # RFC 4035 5.3.1: only zone keys (flag bit 7) of protocol 3 verify zone data.
            if key.flags & _ZONE_FLAG and key.protocol == 3:
                wire = _dnskey_wire(key)
                tag = _tag(wire) if key.algorithm != 1 else key_tag(key)
                self._keys.setdefault((int(key.algorithm), tag), []).append((key, wire))
                wires.append(wire)
        # What the set holds, comparable and hashable: two sets with the same fingerprint
        # verify every signature alike.
        self.fingerprint: tuple[bytes, ...] = tuple(wires)

    def __len__(self) -> int:
        return sum(len(v) for v in self._keys.values())

    def candidates(self, rrsig: RRSIG) -> list[tuple[DNSKEY, bytes]]:
        """Keys that may have made ``rrsig``; a revoked key signs only its own DNSKEY RRset
        (RFC 5011 2.1)."""
        found = self._keys.get((int(rrsig.algorithm), rrsig.key_tag), [])
        if rrsig.type_covered == dns.rdatatype.DNSKEY:
            return found
        return [(k, w) for k, w in found if not k.flags & _REVOKE_FLAG]


class SignatureVerifier:
    """Verifies RRSIGs and remembers each outcome by the exact bytes checked.

    Identical (RRset, RRSIG, key) triples served by several servers, or again in the next cycle,
    cost one hash instead of one public-key operation. The caches are bounded.
    """

    def __init__(self, outcome_limit: int = _OUTCOME_LIMIT) -> None:
        self._outcome_limit = outcome_limit
        self._outcomes: dict[bytes, tuple[Verification, str]] = {}
        self._public: dict[bytes, GenericPublicKey | str] = {}
        self.verified = 0  # public-key operations actually done, for tests and benchmarks

    def observe(
        self,
        owner: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        rdatas: Sequence[dns.rdata.Rdata],
        rrsigs: Iterable[RRSIG],
        keys: KeySet,
        *,
        signer: dns.name.Name,
        no_key_reason: str = "",
    ) -> tuple[SignatureObservation, ...]:
        """One SignatureObservation per RRSIG over the RRset, checked against ``keys``.

        ``signer`` is the only acceptable signer name (the zone apex, RFC 4035 5.3.1);
        ``no_key_reason`` explains a missing key (e.g. "not matched by any DS").
        """
        # Made on first need, once for all the set's RRSIGs (a DNSKEY set has one per key).
        canonical = functools.cache(lambda: _canonical_rdatas(rdatas))
        return self._observe(owner, rdtype, canonical, rrsigs, keys, signer, no_key_reason)

    def observe_canonical(
        self,
        owner: dns.name.Name,
        rdtype: int,
        canonical: Sequence[bytes],
        rrsigs: Iterable[RRSIG],
        keys: KeySet,
        *,
        signer: dns.name.Name,
    ) -> tuple[SignatureObservation, ...]:
        """``observe`` for an RRset already held as canonical RDATA in canonical order (a
        transferred zone keeps only that)."""
        return self._observe(
            owner, dns.rdatatype.RdataType.make(rdtype), lambda: canonical, rrsigs, keys, signer, ""
        )

    def _observe(
        self,
        owner: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        canonical: Callable[[], Sequence[bytes]],
        rrsigs: Iterable[RRSIG],
        keys: KeySet,
        signer: dns.name.Name,
        no_key_reason: str,
    ) -> tuple[SignatureObservation, ...]:
        owner_text = owner.to_text()
        rtype = dns.rdatatype.to_text(rdtype)
        result = []
        for rrsig in rrsigs:
            verification, reason = self._verify(
                owner, rdtype, canonical, rrsig, keys, signer, no_key_reason
            )
            result.append(
                SignatureObservation(
                    owner=owner_text,
                    rtype=rtype,
                    key_tag=rrsig.key_tag,
                    algorithm=int(rrsig.algorithm),
                    inception=rrsig.inception,
                    expiration=rrsig.expiration,
                    original_ttl=rrsig.original_ttl,
                    verification=verification,
                    reason=reason,
                    # The RRsets at the apex are signed by their own owner: the same labels
                    # (case included) print the same.
                    signer=owner_text
                    if rrsig.signer.labels == owner.labels
                    else rrsig.signer.to_text(),
                )
            )
        return tuple(result)

    def verify(
        self,
        owner: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        rdatas: Sequence[dns.rdata.Rdata],
        rrsig: RRSIG,
        keys: KeySet,
        *,
        signer: dns.name.Name,
        no_key_reason: str = "",
    ) -> tuple[Verification, str]:
        """Check one RRSIG over the RRset (owner, rdtype, rdatas) against ``keys``."""
        return self._verify(
            owner, rdtype, lambda: _canonical_rdatas(rdatas), rrsig, keys, signer, no_key_reason
        )

    def _verify(
        self,
        owner: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        canonical: Callable[[], Sequence[bytes]],
        rrsig: RRSIG,
        keys: KeySet,
        signer: dns.name.Name,
        no_key_reason: str,
    ) -> tuple[Verification, str]:
        if rrsig.algorithm not in SUPPORTED_ALGORITHMS:
            return Verification.UNSUPPORTED_ALGORITHM, f"algorithm {rrsig.algorithm} is unknown"
        if rrsig.type_covered != rdtype:
            return Verification.BOGUS, "the RRSIG covers another type"
        if rrsig.signer != signer:
            return Verification.NO_KEY, f"signer {rrsig.signer} is not {signer}"
        candidates = keys.candidates(rrsig)
        if not candidates:
            why = no_key_reason or "no such key in the DNSKEY RRset"
            return Verification.NO_KEY, f"key {rrsig.key_tag} algorithm {rrsig.algorithm}: {why}"
        try:
            data = _signed_data(owner, rdtype, canonical(), rrsig)
        except ValueError as exc:
            return Verification.BOGUS, str(exc)
        digest = hashlib.sha256(data)
        digest.update(rrsig.signature)
        for _, wire in candidates:
            digest.update(wire)
        cache_key = digest.digest()
        outcome = self._outcomes.get(cache_key)
        if outcome is None:
            outcome = self._check(data, rrsig, candidates)
            _remember(self._outcomes, cache_key, outcome, self._outcome_limit)
        return outcome

    def _check(
        self, data: bytes, rrsig: RRSIG, candidates: Sequence[tuple[DNSKEY, bytes]]
    ) -> tuple[Verification, str]:
        self.verified += 1
        problems = []
        for key, wire in candidates:
            public = self._public_key(key, wire)
            if isinstance(public, str):
                problems.append(public)
                continue
            try:
                public.verify(rrsig.signature, data)
            except (InvalidSignature, ValueError):
                continue
            return Verification.VALID, ""
        if len(problems) == len(candidates):
            if all(p.startswith("unsupported") for p in problems):
                return Verification.UNSUPPORTED_ALGORITHM, problems[0]
            return Verification.BOGUS, problems[0]
        return Verification.BOGUS, f"signature does not verify with key {rrsig.key_tag}"

    def _public_key(self, key: DNSKEY, wire: bytes) -> GenericPublicKey | str:
        public = self._public.get(wire)
        if public is None:
            try:
                cls = dns.dnssecalgs.get_algorithm_cls_from_dnskey(key).public_cls
                public = cls.from_dnskey(key)
            except dns.exception.UnsupportedAlgorithm:
                public = f"unsupported: algorithm {key.algorithm} not available here"
            except (ValueError, TypeError, dns.exception.DNSException) as exc:
                public = f"DNSKEY {key_tag(key)} holds an invalid public key ({exc})"
            _remember(self._public, wire, public, _PUBLIC_KEY_LIMIT)
        return public


def _remember(cache: dict[bytes, _V], key: bytes, value: _V, limit: int) -> None:
    if len(cache) >= limit:
        # Drop the older half: dicts keep insertion order.
        for stale in list(cache)[: limit // 2]:
            del cache[stale]
    cache[key] = value
