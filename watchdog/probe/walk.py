"""NSEC walk: enumerate a zone by following its NSEC chain on one server (RFC 4034 4.1).

From the apex, each name's NSEC record gives the types at that name (its bitmap) and the next
name; every type listed is asked with DO=1 and kept, with its RRSIGs, in a ZoneContent, as a
transfer would. Questions go through the prober's per-server limit, which paces the walk. An
NSEC3 zone (RFC 5155) hashes its names and cannot be walked: walk_impossible. A chain longer
than ``limit`` names is walk_limit_exceeded; any other break is walk_failed. A walk is all or
nothing: half a chain is never judged as the zone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import dns.name
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.RRSIG import RRSIG

from watchdog.engine.codes import Code
from watchdog.errors import ProbeError
from watchdog.probe.discovery import ServerAddress
from watchdog.probe.dnsio import Answer, RRset
from watchdog.probe.transfer import ZoneContent

__all__ = ["walk_zone"]

_Ask = Callable[[ServerAddress, dns.name.Name, dns.rdatatype.RdataType, bool], Awaitable[Answer]]
# Never asked for directly: RRSIG comes with its data (RFC 4035 3.1.1); NSEC is the question.
_SKIP = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC})


async def walk_zone(
    apex: dns.name.Name, server: ServerAddress, ask: _Ask, limit: int
) -> ZoneContent:
    """Every RRset of ``apex`` reachable by its NSEC chain on ``server``."""
    content: ZoneContent | None = None
    name, seen = apex, 0
    while True:
        seen += 1
        if seen > limit:
            raise ProbeError(
                Code.WALK_LIMIT_EXCEEDED,
                f"{server.address}: {apex} has more than walk_limit = {limit:,} names",
            )
        answer = await ask(server, name, dns.rdatatype.NSEC, True)
        nsec = _own(answer, name, dns.rdatatype.NSEC)
        if nsec is None:
            if name == apex and any(r.rdtype == dns.rdatatype.NSEC3 for r in answer.authority):
                raise ProbeError(
                    Code.WALK_IMPOSSIBLE,
                    f"{server.address}: {apex} is signed with NSEC3 (hashed names): its "
                    "names cannot be walked",
                )
            raise ProbeError(Code.WALK_FAILED, f"{server.address}: {name} served no NSEC record")
        record = nsec.rdatas[0]
        assert isinstance(record, NSEC)
        if content is None:
            content = ZoneContent(apex, 0)
        _keep(content, answer, name, dns.rdatatype.NSEC)
        types = _types(record)
        delegation = dns.rdatatype.NS in types and name != apex
        for rdtype in types:
            if rdtype in _SKIP or (delegation and rdtype != dns.rdatatype.DS):
                continue  # below a zone cut only DS is the zone's own (RFC 4035 2.2)
            data = await ask(server, name, rdtype, False)
            _keep(content, data, name, rdtype)
        if record.next == apex or not record.next.is_subdomain(apex):
            break
        if record.next <= name:
            raise ProbeError(Code.WALK_FAILED, f"{server.address}: NSEC chain at {name} goes back")
        name = record.next
    return content


def _types(nsec: NSEC) -> list[dns.rdatatype.RdataType]:
    result = []
    for window, bitmap in nsec.windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    result.append(dns.rdatatype.RdataType.make(window * 256 + i * 8 + bit))
    return result


def _own(answer: Answer, name: dns.name.Name, rdtype: int) -> RRset | None:
    for rrset in answer.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def _keep(content: ZoneContent, answer: Answer, name: dns.name.Name, rdtype: int) -> None:
    for rrset in answer.answer:
        if rrset.name != name:
            continue
        if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == rdtype:
            sigs = content.rrsigs.setdefault((name, rdtype), [])
            sigs.extend(r for r in rrset.rdatas if isinstance(r, RRSIG))
        elif rrset.rdtype == rdtype:
            canonical = sorted({r.to_digestable() for r in rrset.rdatas})
            content.data[(name, rdtype)] = (rrset.ttl, canonical)
            if rdtype == dns.rdatatype.DNSKEY:
                content.keys.extend(r for r in rrset.rdatas if isinstance(r, DNSKEY))
            if rdtype == dns.rdatatype.SOA:
                content.serial = int(rrset.rdatas[0].serial)  # type: ignore[attr-defined]
