"""Sign a small zone in memory: a KSK and a ZSK, RRSIGs with chosen dates, NSEC or NSEC3, DS.

Used by the demo and the tests, where we need zones whose signatures expire at a second we
choose, re-signed later with the same keys, or broken on purpose (a tampered signature, an
unsigned RRset, a signature not yet valid). Dates are arguments, never read from the clock.
Limits, on purpose: no delegations below the apex, no wildcards, NSEC3 without opt-out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from watchdog.engine.timeutil import SERIAL_MODULUS
from watchdog.errors import InvalidValueError

__all__ = [
    "DEMO_RECORDS",
    "Denial",
    "RRsetName",
    "ZoneKeys",
    "ds_records",
    "make_keys",
    "sign_zone",
]

# Records of the demo zone, relative to whatever origin it is loaded under. SOA EXPIRE is one
# day: its signatures live days or minutes, and a longer EXPIRE would outlive them (the lint
# soa_expire_beyond_signatures).
DEMO_RECORDS = """\
@     3600 IN SOA   ns1 hostmaster 1 7200 3600 86400 300
@     3600 IN NS    ns1
@     3600 IN MX    10 mail
ns1   3600 IN A     127.0.0.1
mail  3600 IN A     127.0.0.1
www   300  IN A     127.0.0.1
www   300  IN AAAA  ::1
www   300  IN TXT   "dnssec-watchdog demo zone"
"""

# (owner, type) of one RRset, as written in a zone file: ("www", "A"), ("@", "DNSKEY").
RRsetName = tuple[str, str]

_PrivateKey = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | rsa.RSAPrivateKey
)

_GENERATORS: dict[Algorithm, Callable[[], _PrivateKey]] = {
    Algorithm.ECDSAP256SHA256: lambda: ec.generate_private_key(ec.SECP256R1()),
    Algorithm.ECDSAP384SHA384: lambda: ec.generate_private_key(ec.SECP384R1()),
    Algorithm.ED25519: ed25519.Ed25519PrivateKey.generate,
    Algorithm.ED448: ed448.Ed448PrivateKey.generate,
    Algorithm.RSASHA256: lambda: rsa.generate_private_key(65537, 2048),
}

# Types the signer owns: stripped from the input so that signing an already signed zone again
# (new dates, same keys) gives the same result as signing its unsigned source.
_DNSSEC_TYPES = frozenset(
    {
        dns.rdatatype.DNSKEY,
        dns.rdatatype.RRSIG,
        dns.rdatatype.NSEC,
        dns.rdatatype.NSEC3,
        dns.rdatatype.NSEC3PARAM,
    }
)
_SEP = 0x0001  # DNSKEY flag "Secure Entry Point" (RFC 4034 2.1.1): the KSK
_ZONE = 0x0100  # DNSKEY flag "Zone Key" (RFC 4034 2.1.1)
# NSEC3 with SHA-1, no salt, no extra iterations, no opt-out: what RFC 9276 3.1 asks for.
_NSEC3_PARAMS = "1 0 0 -"


class Denial(StrEnum):
    """How non-existence is proven (RFC 4034 4 for NSEC, RFC 5155 for NSEC3)."""

    NSEC = "nsec"
    NSEC3 = "nsec3"


@dataclass(frozen=True, slots=True)
class ZoneKeys:
    """A key-signing key (flags 257) and a zone-signing key (flags 256), private halves included."""

    algorithm: Algorithm
    ksk: DNSKEY
    zsk: DNSKEY
    ksk_private: _PrivateKey = field(repr=False)
    zsk_private: _PrivateKey = field(repr=False)


def make_keys(algorithm: Algorithm | str = Algorithm.ECDSAP256SHA256) -> ZoneKeys:
    """Generate a fresh KSK and ZSK (ECDSA P-256 by default: signing takes microseconds)."""
    try:
        chosen = Algorithm.make(algorithm)
        generate = _GENERATORS[chosen]
    except (KeyError, ValueError, dns.exception.DNSException):
        names = ", ".join(a.name for a in _GENERATORS)
        raise InvalidValueError(
            f"cannot generate DNSSEC keys for algorithm {algorithm!r}: use one of {names}"
        ) from None
    ksk_private, zsk_private = generate(), generate()
    return ZoneKeys(
        algorithm=chosen,
        ksk=dns.dnssec.make_dnskey(ksk_private.public_key(), chosen, flags=_ZONE | _SEP),
        zsk=dns.dnssec.make_dnskey(zsk_private.public_key(), chosen, flags=_ZONE),
        ksk_private=ksk_private,
        zsk_private=zsk_private,
    )


def ds_records(keys: ZoneKeys, origin: dns.name.Name | str) -> list[str]:
    """The SHA-256 DS of the KSK as presentation text ("12345 13 2 1f2e..."), for a trust anchor.

    The owner name is part of the digest (RFC 4034 5.1.4), hence ``origin``.
    """
    return [dns.dnssec.make_ds(_absolute(origin), keys.ksk, "SHA256").to_text()]


def sign_zone(
    origin: dns.name.Name | str,
    records: str | dns.zone.Zone,
    keys: ZoneKeys,
    inception: int,
    expiration: int,
    nsec: Denial | str | None = Denial.NSEC,
    *,
    serial: int | None = None,
    dnskey_ttl: int = 3600,
    windows: Mapping[RRsetName, tuple[int, int]] | None = None,
    unsigned: Collection[RRsetName] = (),
    tampered: Collection[RRsetName] = (),
) -> dns.zone.Zone:
    """Return a new signed copy of ``records`` (zone-file text or a zone, signed or not).

    ``inception`` and ``expiration`` are POSIX seconds, stored modulo 2^32 (RFC 4034 3.1.5).
    The KSK signs the DNSKEY RRset, the ZSK everything else. Broken on purpose, per RRset:
    ``windows`` gives some RRsets other dates (a signature not yet valid, one expiring before
    its siblings), ``unsigned`` leaves some without RRSIG, ``tampered`` flips a bit of their
    signature. ``serial`` replaces the SOA serial, as a signer does when it re-signs.
    """
    apex = _absolute(origin)
    denial = _denial(nsec)
    zone = _load(apex, records)
    soa_rdataset = zone.get_rdataset(apex, dns.rdatatype.SOA)
    assert soa_rdataset is not None  # dns.zone.from_text(check_origin=True) guarantees it
    if serial is not None:
        soa = soa_rdataset[0].replace(serial=serial % SERIAL_MODULUS)
        zone.replace_rdataset(apex, dns.rdataset.from_rdata(soa_rdataset.ttl, soa))
    dnskeys = dns.rdataset.from_rdata(dnskey_ttl, keys.ksk, keys.zsk)
    zone.replace_rdataset(apex, dnskeys)
    # RFC 9077: the TTL of NSEC and NSEC3 records is min(SOA TTL, SOA MINIMUM).
    denial_ttl = min(soa_rdataset.ttl, soa_rdataset[0].minimum)
    if denial is Denial.NSEC:
        _add_nsec_chain(zone, denial_ttl)
    elif denial is Denial.NSEC3:
        _add_nsec3_chain(zone, apex, denial_ttl)
    special = _resolve_names(zone, apex, windows or {}, unsigned, tampered)
    _sign_all(zone, apex, keys, (inception, expiration), special)
    return zone


@dataclass(frozen=True, slots=True)
class _Special:
    windows: Mapping[tuple[dns.name.Name, dns.rdatatype.RdataType], tuple[int, int]]
    unsigned: frozenset[tuple[dns.name.Name, dns.rdatatype.RdataType]]
    tampered: frozenset[tuple[dns.name.Name, dns.rdatatype.RdataType]]


def _absolute(origin: dns.name.Name | str) -> dns.name.Name:
    return origin if isinstance(origin, dns.name.Name) else dns.name.from_text(origin)


def _denial(nsec: Denial | str | None) -> Denial | None:
    if nsec is None:
        return None
    try:
        return Denial(nsec)
    except ValueError:
        raise InvalidValueError(
            f'denial of existence {nsec!r}: use "nsec", "nsec3" or None'
        ) from None


def _load(apex: dns.name.Name, records: str | dns.zone.Zone) -> dns.zone.Zone:
    """Parse into a private zone with absolute names, without the signer's own records."""
    if isinstance(records, dns.zone.Zone):
        if records.origin != apex:
            raise InvalidValueError(f"zone {records.origin} given to sign as {apex}")
        records = records.to_text(relativize=False)
    try:
        zone = dns.zone.from_text(records, apex, relativize=False)
    except dns.exception.DNSException as exc:
        raise InvalidValueError(f"zone {apex}: cannot load records: {exc}") from exc
    for name, node in list(zone.nodes.items()):
        if name.is_wild():
            raise InvalidValueError(f"zone {apex}: wildcard {name} is not supported by the signer")
        for rdataset in list(node.rdatasets):
            if rdataset.rdtype == dns.rdatatype.NS and name != apex:
                raise InvalidValueError(f"zone {apex}: delegation at {name} is not supported")
            if rdataset.rdtype in _DNSSEC_TYPES:
                node.delete_rdataset(rdataset.rdclass, rdataset.rdtype, rdataset.covers)
        if not node.rdatasets:
            del zone.nodes[name]
    return zone


def _types_text(types: Collection[dns.rdatatype.RdataType]) -> str:
    return " ".join(dns.rdatatype.to_text(t) for t in sorted(types))


def _add_nsec_chain(zone: dns.zone.Zone, ttl: int) -> None:
    """One NSEC per owner, in canonical order (RFC 4034 6.1), the last pointing at the apex."""
    owners = sorted(zone.nodes)
    for owner, following in zip(owners, owners[1:] + owners[:1], strict=True):
        types = {r.rdtype for r in zone.nodes[owner].rdatasets}
        types |= {dns.rdatatype.NSEC, dns.rdatatype.RRSIG}
        text = f"{following} {_types_text(types)}"
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC, text)
        zone.replace_rdataset(owner, dns.rdataset.from_rdata(ttl, rdata))


def _add_nsec3_chain(zone: dns.zone.Zone, apex: dns.name.Name, ttl: int) -> None:
    """NSEC3PARAM at the apex, one NSEC3 per name, empty non-terminals included (RFC 5155 7.1)."""
    param = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM, _NSEC3_PARAMS)
    zone.replace_rdataset(apex, dns.rdataset.from_rdata(0, param))
    names: dict[dns.name.Name, set[dns.rdatatype.RdataType]] = {}
    for owner, node in zone.nodes.items():
        names[owner] = {r.rdtype for r in node.rdatasets} | {dns.rdatatype.RRSIG}
        for depth in range(len(apex) + 1, len(owner)):
            names.setdefault(owner.split(depth)[1], set())  # an empty non-terminal
    hashed = sorted((dns.dnssec.nsec3_hash(name, None, 0, 1), name) for name in names)
    for (digest, name), (following, _) in zip(hashed, hashed[1:] + hashed[:1], strict=True):
        text = f"{_NSEC3_PARAMS} {following} {_types_text(names[name])}"
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC3, text)
        zone.replace_rdataset(
            dns.name.Name((digest.lower(), *apex.labels)), dns.rdataset.from_rdata(ttl, rdata)
        )


def _resolve_names(
    zone: dns.zone.Zone,
    apex: dns.name.Name,
    windows: Mapping[RRsetName, tuple[int, int]],
    unsigned: Collection[RRsetName],
    tampered: Collection[RRsetName],
) -> _Special:
    """Turn ("www", "A") into zone keys, refusing names of RRsets the zone does not have."""

    def key(rrset: RRsetName) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
        owner, rtype = rrset
        try:
            name = dns.name.from_text(owner, apex)
            rdtype = dns.rdatatype.from_text(rtype)
        except dns.exception.DNSException as exc:
            raise InvalidValueError(f"RRset {owner} {rtype}: {exc}") from exc
        if zone.get_rdataset(name, rdtype) is None:
            raise InvalidValueError(f"zone {apex} has no {rtype} RRset at {name}")
        return name, rdtype

    return _Special(
        windows={key(k): v for k, v in windows.items()},
        unsigned=frozenset(key(k) for k in unsigned),
        tampered=frozenset(key(k) for k in tampered),
    )


def _sign_all(
    zone: dns.zone.Zone,
    apex: dns.name.Name,
    keys: ZoneKeys,
    window: tuple[int, int],
    special: _Special,
) -> None:
    for name, node in zone.nodes.items():
        for rdataset in list(node.rdatasets):
            rrset_key = (name, rdataset.rdtype)
            if rrset_key in special.unsigned:
                continue
            # RFC 4035 2.1 and RFC 6781 3.1: the KSK signs the DNSKEY RRset, the ZSK the rest.
            is_dnskey = rdataset.rdtype == dns.rdatatype.DNSKEY
            private, dnskey = (
                (keys.ksk_private, keys.ksk) if is_dnskey else (keys.zsk_private, keys.zsk)
            )
            inception, expiration = special.windows.get(rrset_key, window)
            rrsig = dns.dnssec.sign(
                (name, rdataset),
                private,
                apex,
                dnskey,
                inception=inception % SERIAL_MODULUS,
                expiration=expiration % SERIAL_MODULUS,
            )
            if rrset_key in special.tampered:
                rrsig = _tamper(rrsig)
            sigs = node.find_rdataset(
                dns.rdataclass.IN, dns.rdatatype.RRSIG, rdataset.rdtype, create=True
            )
            sigs.add(rrsig, rdataset.ttl)


def _tamper(rrsig: RRSIG) -> RRSIG:
    """The same RRSIG with the last bit of its signature flipped: it can no longer verify."""
    flipped = rrsig.signature[:-1] + bytes([rrsig.signature[-1] ^ 1])
    return cast(RRSIG, rrsig.replace(signature=flipped))
