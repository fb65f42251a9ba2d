"""The whole zone, beyond the apex: by zone transfer or NSEC walk, then every server sampled.

Each check asks the source for the SOA serial first; the zone is transferred (or walked) again
only when the serial changed or it never was, so an unchanged zone costs one SOA question and no
cryptography (the judged groups are kept with the serial). Every RRSIG is verified against the
zone's own DNSKEYs; RRsets whose signatures are alike form one SignatureGroup, so the engine
judges a 100,000-RRset zone in a few groups. Then each public server address is asked a
rotating sample of the zone's RRsets (different ones each check) and what it serves is kept
for the engine to compare with the transfer (stale_signatures).

A transfer or walk that fails leaves a CoverageObservation in mode "apex" with the finding that
says why: a partial zone is never judged as whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA

from watchdog.config.coverage import CoverageSettings
from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    CoverageObservation,
    RRsetObservation,
    SignatureGroup,
)
from watchdog.engine.timeutil import serial_precedes
from watchdog.errors import ProbeError
from watchdog.probe.discovery import ServerAddress
from watchdog.probe.dnsio import Answer
from watchdog.probe.transfer import RRsetKey, ZoneContent, transfer_zone
from watchdog.probe.verify import KeySet, SignatureVerifier
from watchdog.probe.walk import walk_zone

__all__ = ["Ask", "CoverageProbe"]

Ask = Callable[[ServerAddress, dns.name.Name, dns.rdatatype.RdataType, bool], Awaitable[Answer]]

# Types a sample never asks for: RRSIG (RFC 4035 3.1.1), NSEC3 (its owner is a hash, asked
# as such it is NXDOMAIN), NSEC (the denial comes with the apex checks).
_NOT_SAMPLED = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC3, dns.rdatatype.NSEC})
# Enough for a large zone's signatures and a few zones more; a hit costs one hash.
_OUTCOMES = 1_000_000


@dataclass(slots=True)
class _Covered:
    """One zone's last successful transfer or walk, kept until its serial changes."""

    source: str
    serial: int
    content: ZoneContent
    keys: KeySet
    observation: CoverageObservation
    sampleable: list[RRsetKey]
    offset: int = 0


class CoverageProbe:
    """Transfers or walks zones and samples their servers; keeps one _Covered per zone."""

    def __init__(self, ask: Ask, timeout: float) -> None:
        self._ask = ask
        self._timeout = timeout
        self._zones: dict[str, _Covered] = {}
        self.verifier = SignatureVerifier(_OUTCOMES)

    async def observe(
        self, apex: dns.name.Name, settings: CoverageSettings, servers: Sequence[ServerAddress]
    ) -> tuple[CoverageObservation, dict[str, tuple[RRsetObservation, ...]]]:
        """This check's coverage and, per server address, the sampled RRsets it served."""
        mode = settings.mode
        if settings.transfer is not None:
            source = ServerAddress(*settings.transfer)
        else:
            source = servers[0] if servers else ServerAddress("", 0)
        if not source.host:
            return _fallback(mode, "", Finding(Code.WALK_FAILED, Severity.WARNING, "no server")), {}
        zone = apex.to_text()
        problems: list[Finding] = []
        try:
            serial = await self._serial(apex, source)
            covered = self._zones.get(zone)
            if covered is not None and covered.source == source.address:
                if serial == covered.serial:
                    return await self._sampled(covered, servers, settings.sample)
                if serial_precedes(serial, covered.serial):
                    problems.append(
                        Finding(
                            Code.SERIAL_WENT_BACKWARDS,
                            Severity.WARNING,
                            f"{zone}: {source.address} serves serial {serial}, older than "
                            f"{covered.serial} seen before",
                            source.address,
                        )
                    )
            content = await self._fetch(apex, settings, source)
        except ProbeError as exc:
            # An NSEC3 zone is a fact to note, not a fault; anything else failed.
            severity = Severity.OK if exc.code is Code.WALK_IMPOSSIBLE else Severity.WARNING
            finding = Finding(exc.code, severity, f"{exc}; this check covers the apex only")
            return _fallback(mode, source.address, finding, *problems), {}
        covered = self._judge(mode, source.address, content)
        self._zones[zone] = covered
        observation, served = await self._sampled(covered, servers, settings.sample)
        return _with(observation, problems=tuple(problems)), served

    async def _serial(self, apex: dns.name.Name, source: ServerAddress) -> int:
        answer = await self._ask(source, apex, dns.rdatatype.SOA, False)
        for rrset in answer.answer:
            if rrset.name == apex and rrset.rdtype == dns.rdatatype.SOA:
                soa = rrset.rdatas[0]
                if isinstance(soa, SOA):
                    return int(soa.serial)
        raise ProbeError(Code.TRANSFER_FAILED, f"{source.address}: {apex} SOA: no SOA served")

    async def _fetch(
        self, apex: dns.name.Name, settings: CoverageSettings, source: ServerAddress
    ) -> ZoneContent:
        if settings.transfer is not None:
            # The whole transfer may take minutes on a large zone; each read has the timeout.
            return await transfer_zone(
                apex, source.host, source.port, settings.tsig, max(self._timeout * 5, 10.0)
            )
        return await walk_zone(apex, source, self._ask, settings.walk_limit)

    def _judge(self, mode: str, source: str, content: ZoneContent) -> _Covered:
        """Verify every signature and group the RRsets whose signatures are alike."""
        keys = KeySet(content.keys)
        groups: dict[tuple[object, ...], _Group] = {}
        names: set[dns.name.Name] = set()
        signatures = 0
        authoritative = content.authoritative()
        for owner, rdtype in authoritative:
            names.add(owner)
            rrsigs = content.rrsigs.get((owner, rdtype), [])
            signatures += len(rrsigs)
            observed = self.verifier.observe_canonical(
                owner, rdtype, content.data[(owner, rdtype)][1], rrsigs, keys, signer=content.apex
            )
            alike = (
                rdtype == dns.rdatatype.DNSKEY,
                tuple(
                    sorted(
                        (s.key_tag, s.algorithm, s.inception, s.expiration, s.verification)
                        for s in observed
                    )
                ),
            )
            group = groups.get(alike)
            if group is None:
                ttl = content.data[(owner, rdtype)][0]
                rrset = RRsetObservation(
                    owner.to_text(),
                    dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype)),
                    ttl,
                    observed,
                )
                groups[alike] = _Group(rrset)
            else:
                group.count += 1
        observation = CoverageObservation(
            mode=mode,
            wanted=mode,
            source=source,
            serial=content.serial,
            rrsets=len(authoritative),
            signatures=signatures,
            names=len(names),
            groups=tuple(SignatureGroup(g.rrset, g.count) for g in groups.values()),
        )
        sampleable = [k for k in authoritative if k[1] not in _NOT_SAMPLED]
        return _Covered(source, content.serial, content, keys, observation, sampleable)

    async def _sampled(
        self, covered: _Covered, servers: Sequence[ServerAddress], sample: int
    ) -> tuple[CoverageObservation, dict[str, tuple[RRsetObservation, ...]]]:
        """Ask every server the next ``sample`` RRsets of the rotation."""
        observation = covered.observation
        count = min(sample, len(covered.sampleable))
        if not count or not servers:
            return observation, {}
        start = covered.offset % len(covered.sampleable)
        picked = [covered.sampleable[(start + i) % len(covered.sampleable)] for i in range(count)]
        covered.offset = (start + count) % len(covered.sampleable)
        ours = tuple(self._rrset(covered, key) for key in picked)
        served = await asyncio.gather(*(self._ask_sample(covered, s, picked) for s in servers))
        by_server = {s.address: rrsets for s, rrsets in zip(servers, served, strict=True)}
        return _with(observation, sampled=ours), by_server

    def _rrset(self, covered: _Covered, key: RRsetKey) -> RRsetObservation:
        owner, rdtype = key
        ttl, canonical = covered.content.data[key]
        observed = self.verifier.observe_canonical(
            owner,
            rdtype,
            canonical,
            covered.content.rrsigs.get(key, []),
            covered.keys,
            signer=covered.content.apex,
        )
        return RRsetObservation(
            owner.to_text(),
            dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype)),
            ttl,
            observed,
        )

    async def _ask_sample(
        self, covered: _Covered, server: ServerAddress, picked: Sequence[RRsetKey]
    ) -> tuple[RRsetObservation, ...]:
        result = []
        for owner, rdtype in picked:
            try:
                answer = await self._ask(server, owner, dns.rdatatype.RdataType.make(rdtype), False)
            except ProbeError:
                continue  # the apex checks already say when a server does not answer
            data = [r for r in answer.answer if r.name == owner and r.rdtype == rdtype]
            if not data:
                continue
            rrsigs = [
                sig
                for r in answer.answer
                if r.name == owner and r.rdtype == dns.rdatatype.RRSIG and r.covers == rdtype
                for sig in r.rdatas
                if isinstance(sig, RRSIG)
            ]
            canonical = sorted({r.to_digestable() for r in data[0].rdatas})
            observed = self.verifier.observe_canonical(
                owner, rdtype, canonical, rrsigs, covered.keys, signer=covered.content.apex
            )
            result.append(
                RRsetObservation(
                    owner.to_text(), dns.rdatatype.to_text(data[0].rdtype), data[0].ttl, observed
                )
            )
        return tuple(result)


@dataclass(slots=True)
class _Group:
    rrset: RRsetObservation  # the first RRset of the group, in transfer (or walk) order
    count: int = 1


def _with(observation: CoverageObservation, **changes: object) -> CoverageObservation:
    return dataclasses.replace(observation, **changes)  # type: ignore[arg-type]


def _fallback(mode: str, source: str, *problems: Finding) -> CoverageObservation:
    return CoverageObservation(mode="apex", wanted=mode, source=source, problems=problems)
