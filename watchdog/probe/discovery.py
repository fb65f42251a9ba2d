"""Finding the servers to probe and the parent's DS, through a recursive resolver.

Every lookup goes through an ``Ask`` callable (a recursive question, CD=1, that returns a checked
answer or raises ProbeError), so this module holds the DNS logic and the Prober holds the
sockets, semaphores and caches. Failures come back as findings, never as exceptions.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.errors import ProbeError
from watchdog.probe.dnsio import Answer, RRset, format_address

__all__ = [
    "Ask",
    "Discovery",
    "ParentDS",
    "ServerAddress",
    "discover",
    "lookup_ds",
    "resolve_configured",
    "system_resolvers",
]

Ask = Callable[[dns.name.Name, dns.rdatatype.RdataType], Awaitable[Answer]]

_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """One authoritative server address to probe, and the NS name it was found under."""

    host: str  # an IP address literal
    port: int
    name: str | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True, slots=True)
class Discovery:
    """The server addresses of a zone, plus what went wrong finding them."""

    servers: tuple[ServerAddress, ...]
    problems: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class ParentDS:
    """The parent's answer for the zone's DS: the RRset and its RRSIGs, or nothing."""

    rrset: RRset | None = None
    rrsigs: RRset | None = None
    problems: tuple[Finding, ...] = ()


def system_resolvers() -> tuple[tuple[str, int], ...]:
    """The nameservers of /etc/resolv.conf; raises ProbeError ``no_resolver`` if none."""
    import dns.resolver  # only without a configured resolver: keeps --check imports small

    try:
        config = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise ProbeError(
            Code.NO_RESOLVER, f"cannot read the system resolver configuration: {exc}"
        ) from exc
    found = tuple((str(ns), config.port) for ns in config.nameservers if _is_ip(str(ns)))
    if not found:
        raise ProbeError(Code.NO_RESOLVER, "the system resolver configuration lists no nameserver")
    return found


async def discover(zone: dns.name.Name, ask: Ask) -> Discovery:
    """The zone's NS names and each name's A and AAAA addresses, each address its own server."""
    where = zone.to_text()
    try:
        answer = await ask(zone, dns.rdatatype.NS)
    except ProbeError as exc:
        return Discovery((), (_problem(Code.NS_LOOKUP_FAILED, f"{where} NS: {exc}"),))
    if answer.rcode == dns.rcode.NXDOMAIN:
        return Discovery(
            (), (_problem(Code.ZONE_NXDOMAIN, f"{where}: the resolver says NXDOMAIN"),)
        )
    names = sorted(
        {
            rdata.target
            for rrset in _answers(answer, zone, dns.rdatatype.NS)
            for rdata in rrset
            if isinstance(rdata, NS)
        }
    )
    if not names:
        alias = _answers(answer, zone, dns.rdatatype.CNAME)
        if alias and alias[0].rdatas:
            # RFC 2181 10.1: a CNAME cannot sit at a zone apex; this name is an alias.
            target = alias[0].rdatas[0]
            return Discovery(
                (),
                (_problem(Code.CNAME_AT_APEX, f"{where}: is a CNAME to {target}, not a zone"),),
            )
        return Discovery(
            (), (_problem(Code.NO_NS, f"{where}: the resolver returns no NS records"),)
        )
    found = await asyncio.gather(*(_addresses(name, 53, ask) for name in names))
    servers = [s for found_servers, _ in found for s in found_servers]
    problems = [p for _, found_problems in found for p in found_problems]
    return Discovery(_unique(servers), tuple(problems))


async def resolve_configured(configured: Sequence[tuple[str, int]], ask: Ask) -> Discovery:
    """Configured servers (parsed by watchdog.config.targets.parse_server): addresses as
    they are, host names looked up."""
    servers: list[ServerAddress] = []
    lookups = []
    for host, port in configured:
        if _is_ip(host):
            servers.append(ServerAddress(host, port))
        else:
            lookups.append(_addresses(dns.name.from_text(host), port, ask))
    found = await asyncio.gather(*lookups)
    servers += [s for found_servers, _ in found for s in found_servers]
    return Discovery(_unique(servers), tuple(p for _, problems in found for p in problems))


async def lookup_ds(zone: dns.name.Name, ask: Ask) -> ParentDS:
    """The DS RRset of ``zone`` and its RRSIGs as the resolver returns them (from the parent)."""
    try:
        answer = await ask(zone, dns.rdatatype.DS)
    except ProbeError as exc:
        return ParentDS(problems=(_problem(Code.DS_LOOKUP_FAILED, f"{zone} DS: {exc}"),))
    rrset = _find(answer, zone, dns.rdatatype.DS, dns.rdatatype.NONE)
    if rrset is None:
        return ParentDS()  # NODATA or NXDOMAIN: the parent holds no DS, the zone is insecure
    return ParentDS(rrset, _find(answer, zone, dns.rdatatype.RRSIG, dns.rdatatype.DS))


async def _addresses(
    name: dns.name.Name, port: int, ask: Ask
) -> tuple[list[ServerAddress], list[Finding]]:
    label = name.to_text()
    answers = await asyncio.gather(*(_lookup(name, rdtype, ask) for rdtype in (_A, _AAAA)))
    servers = [
        ServerAddress(str(ipaddress.ip_address(rdata.address)), port, label)
        for rrsets, _ in answers
        for rrset in rrsets
        for rdata in rrset
        if isinstance(rdata, A | AAAA)
    ]
    problems = [p for _, p in answers if p is not None]
    if not servers and not problems:
        problems.append(
            _problem(
                Code.NS_NO_ADDRESS, f"{label}: no A or AAAA record; this name cannot be probed"
            )
        )
    return servers, problems


async def _lookup(
    name: dns.name.Name, rdtype: dns.rdatatype.RdataType, ask: Ask
) -> tuple[list[RRset], Finding | None]:
    try:
        answer = await ask(name, rdtype)
    except ProbeError as exc:
        kind = dns.rdatatype.to_text(rdtype)
        return [], _problem(Code.ADDRESS_LOOKUP_FAILED, f"{name} {kind}: {exc}")
    # Follow a CNAME chain within the answer: every A/AAAA RRset in it belongs to the chain.
    return [r for r in answer.answer if r.rdtype == rdtype], None


def _answers(answer: Answer, owner: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> list[RRset]:
    return [r for r in answer.answer if r.name == owner and r.rdtype == rdtype]


def _find(
    answer: Answer,
    owner: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType,
) -> RRset | None:
    for rrset in answer.answer:
        if rrset.name == owner and rrset.rdtype == rdtype and rrset.covers == covers:
            return rrset
    return None


def _unique(servers: Iterable[ServerAddress]) -> tuple[ServerAddress, ...]:
    """One server per (address, port): two NS names on one address are one server."""
    seen: dict[tuple[str, int], ServerAddress] = {}
    for server in servers:
        seen.setdefault((server.host, server.port), server)
    return tuple(seen.values())


def _problem(code: Code, message: str) -> Finding:
    # We could not see (part of) the zone: the alert machinery waits for repeated failures.
    return Finding(code, Severity.UNKNOWN, message)


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version
