"""What an authoritative server answers, as pure functions of its zones and the query.

``ServedZone`` indexes one zone once (owners, RRSIGs by type covered, the NSEC or NSEC3 chain);
``answer`` turns a query into the honest response: AA=1, RRSIGs and denial proofs when the DO
bit is set (RFC 4035 3.1), REFUSED outside the zones. No sockets here (see authserver).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["ServedZone", "answer", "zones_by_origin"]

# The UDP buffer our responses advertise: the DNS Flag Day 2020 value, which avoids fragments.
_OUR_PAYLOAD = 1232

_Key = tuple[dns.name.Name, dns.rdatatype.RdataType]
_Sections = tuple[dns.rcode.Rcode, list[dns.rrset.RRset], list[dns.rrset.RRset]]


@dataclass(frozen=True, slots=True)
class ServedZone:
    """A private, read-only index of one zone, built once per zone (or replacement)."""

    origin: dns.name.Name
    rrsets: Mapping[_Key, dns.rrset.RRset]  # everything but RRSIG, by (owner, type)
    sigs: Mapping[_Key, dns.rrset.RRset]  # RRSIGs, by (owner, type covered)
    types: Mapping[dns.name.Name, tuple[dns.rdatatype.RdataType, ...]]  # owners with data
    existing: frozenset[dns.name.Name]  # owners and empty non-terminals
    nsec_owners: tuple[dns.name.Name, ...]  # canonical order (RFC 4034 6.1)
    nsec3_chain: tuple[tuple[str, dns.name.Name], ...]  # (HASH, owner), sorted by hash
    nsec3_param: tuple[int, int, bytes] | None  # (algorithm, iterations, salt)

    @classmethod
    def from_zone(cls, zone: dns.zone.Zone) -> ServedZone:
        """Index a copy of ``zone``, so that later changes by the caller are not served."""
        origin = zone.origin
        assert origin is not None
        copy = dns.zone.from_text(zone.to_text(relativize=False), origin, relativize=False)
        rrsets: dict[_Key, dns.rrset.RRset] = {}
        sigs: dict[_Key, dns.rrset.RRset] = {}
        for name, rdataset in copy.iterate_rdatasets():
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
            for rdata in rdataset:
                rrset.add(rdata, rdataset.ttl)
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                sigs[(name, rdataset.covers)] = rrset
            else:
                rrsets[(name, rdataset.rdtype)] = rrset
        nsec3_owners = {name for name, rdtype in rrsets if rdtype == dns.rdatatype.NSEC3}
        types: dict[dns.name.Name, tuple[dns.rdatatype.RdataType, ...]] = {}
        for name, rdtype in rrsets:
            if name not in nsec3_owners:
                types[name] = (*types.get(name, ()), rdtype)
        existing = {
            name.split(depth)[1] for name in types for depth in range(len(origin), len(name) + 1)
        }
        param_set = rrsets.get((origin, dns.rdatatype.NSEC3PARAM))
        param = (
            (param_set[0].algorithm, param_set[0].iterations, param_set[0].salt)
            if param_set
            else None
        )
        return cls(
            origin=origin,
            rrsets=rrsets,
            sigs=sigs,
            types=types,
            existing=frozenset(existing),
            nsec_owners=tuple(sorted(n for n, t in rrsets if t == dns.rdatatype.NSEC)),
            # base32hex keeps the order of the hash values (RFC 4648 7, RFC 5155 3.3)
            nsec3_chain=tuple(sorted((n.labels[0].decode().upper(), n) for n in nsec3_owners)),
            nsec3_param=param,
        )

    def lookup(
        self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType, dnssec: bool
    ) -> _Sections:
        """Rcode, answer and authority for a name inside this zone (RFC 1034 4.3.2, step 3)."""
        at_name = self.types.get(qname, ())
        if qtype == dns.rdatatype.ANY:
            found = list(at_name)
        elif qtype in at_name:
            found = [qtype]
        else:
            found = [dns.rdatatype.CNAME] if dns.rdatatype.CNAME in at_name else []
        if found:
            return dns.rcode.NOERROR, self._with_sigs([(qname, t) for t in found], dnssec), []
        rcode = dns.rcode.NOERROR if qname in self.existing else dns.rcode.NXDOMAIN
        denial = self._denial(qname, rcode) if dnssec else []
        authority = self._with_sigs([(self.origin, dns.rdatatype.SOA), *denial], dnssec)
        return rcode, [], authority

    def _with_sigs(self, keys: Iterable[_Key], dnssec: bool) -> list[dns.rrset.RRset]:
        out: list[dns.rrset.RRset] = []
        for key in dict.fromkeys(keys):  # in order, without duplicates
            out.append(self.rrsets[key])
            if dnssec and key in self.sigs:
                out.append(self.sigs[key])
        return out

    def _denial(self, qname: dns.name.Name, rcode: dns.rcode.Rcode) -> list[_Key]:
        """The NSEC or NSEC3 records proving NODATA or NXDOMAIN (RFC 4035 3.1.3, RFC 5155 7.2)."""
        nxdomain = rcode == dns.rcode.NXDOMAIN
        encloser = self._closest_encloser(qname)
        wildcard = dns.name.Name((b"*", *encloser.labels))
        if self.nsec3_param is not None:
            if not nxdomain:
                return [self._nsec3_for(qname)]
            next_closer = qname.split(len(encloser) + 1)[1]
            return [self._nsec3_for(n) for n in (encloser, next_closer, wildcard)]
        if self.nsec_owners:
            return [self._nsec_for(n) for n in ((qname, wildcard) if nxdomain else (qname,))]
        return []

    def _closest_encloser(self, qname: dns.name.Name) -> dns.name.Name:
        for depth in range(len(qname), len(self.origin), -1):
            candidate = qname.split(depth)[1]
            if candidate in self.existing:
                return candidate
        return self.origin

    def _nsec_for(self, name: dns.name.Name) -> _Key:
        """The NSEC at ``name`` or, if none, the one covering it (the apex one covers the end)."""
        index = bisect.bisect_right(self.nsec_owners, name) - 1
        return self.nsec_owners[index], dns.rdatatype.NSEC

    def _nsec3_for(self, name: dns.name.Name) -> _Key:
        """The NSEC3 matching the hash of ``name`` or, if none, the one covering it."""
        assert self.nsec3_param is not None
        algorithm, iterations, salt = self.nsec3_param
        digest = dns.dnssec.nsec3_hash(name, salt, iterations, algorithm)
        index = bisect.bisect_right(self.nsec3_chain, digest, key=lambda link: link[0]) - 1
        return self.nsec3_chain[index][1], dns.rdatatype.NSEC3  # index -1: the last one covers


def answer(
    zones: Mapping[dns.name.Name, ServedZone], query: dns.message.Message
) -> dns.message.Message:
    """The honest response to ``query`` from ``zones``."""
    response = dns.message.make_response(query, our_payload=_OUR_PAYLOAD)
    dnssec = bool(query.ednsflags & dns.flags.DO)
    if dnssec:
        response.ednsflags |= dns.flags.DO  # echoed, RFC 3225 3
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
        return response
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    matching = [z for o, z in zones.items() if question.name.is_subdomain(o)]
    if question.rdclass != dns.rdataclass.IN or not matching:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    zone = max(matching, key=lambda z: len(z.origin))
    rcode, response.answer, response.authority = zone.lookup(question.name, question.rdtype, dnssec)
    response.set_rcode(rcode)
    response.flags |= dns.flags.AA
    return response


def zones_by_origin(
    zones: dns.zone.Zone | Iterable[dns.zone.Zone],
) -> dict[dns.name.Name, ServedZone]:
    """Index one zone or several, keyed by origin (a later zone replaces an earlier one)."""
    served = [
        ServedZone.from_zone(z) for z in ([zones] if isinstance(zones, dns.zone.Zone) else zones)
    ]
    return {z.origin: z for z in served}
