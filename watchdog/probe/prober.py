"""The prober: ask every authoritative server address of a zone, verify, hand back observations.

Per zone: find the servers (NS + A/AAAA through the resolver, or the configured list) and the
parent's DS at the same time; ask every address for SOA, DNSKEY and NS at the apex, a random
non-existent name (for its NSEC/NSEC3 proof), NSEC3PARAM, CDS and CDNSKEY (for the lints) and
the configured extra names; then verify every
RRSIG against the DNSKEYs the same server served (observe.py). Every failure becomes a Finding
on the server or the zone; ``probe`` never raises for network, DNS or target problems.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import string
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import Any, Self

import dns.exception
import dns.name
import dns.rdatatype
from dns.rdtypes.ANY.RRSIG import RRSIG

from watchdog.config.coverage import CoverageSettings
from watchdog.config.targets import ProbeSettings, ZoneTarget
from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    RRsetObservation,
    ServerObservation,
    ValidatorAnswer,
    ZoneObservation,
)
from watchdog.errors import InvalidValueError, ProbeError
from watchdog.probe import dnsio
from watchdog.probe.assemble import Collected, assemble
from watchdog.probe.coverage import CoverageProbe
from watchdog.probe.discovery import (
    Discovery,
    ParentDS,
    ServerAddress,
    discover,
    lookup_ds,
    resolve_configured,
)
from watchdog.probe.dnsio import Answer
from watchdog.probe.resolver import Resolver
from watchdog.probe.validators import ask_validators
from watchdog.probe.verify import SignatureVerifier

__all__ = ["Prober"]


# Without any answer from the address there is nothing else to ask it.
_NO_ANSWER = frozenset(
    {Code.TIMEOUT, Code.CONNECTION_REFUSED, Code.NETWORK_UNREACHABLE, Code.NETWORK_ERROR}
)
_FAMILY_NAMES = {4: "IPv4", 6: "IPv6"}
# Questions whose answer's authority section matters: NSEC/NSEC3 proofs live there.
_AUTHORITY_ROLES = frozenset({"denial", "extra"})


_DEFAULT_SETTINGS = ProbeSettings()


class Prober:
    """Probes zones; owns the semaphores, the verification cache and the resolver (cache).

    Use as ``async with Prober(settings) as prober: await prober.probe_many(targets)``.
    """

    def __init__(self, settings: ProbeSettings = _DEFAULT_SETTINGS) -> None:
        self.settings = settings
        self.verifier = SignatureVerifier()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._per_server: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._resolver = Resolver(
            (settings.resolver,) if settings.resolver else None,
            self._slots,
            attempt_timeout=settings.timeout,
            retries=settings.retries,
        )
        self._warned_families: set[int] = set()
        # Per server address: when it last answered, and since when it has been silent.
        self._answered: dict[tuple[str, int], float] = {}
        self._silent: dict[tuple[str, int], float] = {}
        self._silence_window = settings.timeout * (settings.retries + 1)
        self.coverage = CoverageProbe(self._ask_server, settings.timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._resolver.close()

    async def probe_many(self, targets: Sequence[ZoneTarget]) -> list[ZoneObservation]:
        """Probe all ``targets`` concurrently (within the settings' bounds), results in order."""
        results: list[ZoneObservation | None] = [None] * len(targets)
        async with contextlib.aclosing(self.probe_each(targets)) as done:
            async for index, observation in done:
                results[index] = observation
        return [r for r in results if r is not None]

    async def probe_each(
        self, targets: Sequence[ZoneTarget]
    ) -> AsyncGenerator[tuple[int, ZoneObservation], None]:
        """Probe all ``targets`` concurrently; yield (index, observation) as each zone is done.

        At most ``max_concurrency`` zones are in flight: enough to fill every query slot, since
        a zone never has more questions out than that. Starting a 10,000-zone batch all at
        once only queued its questions at the semaphores while every zone's half-built state
        stayed alive (bench/, BENCHMARKS.md). Yielding as zones finish lets the caller judge
        and store them in chunks instead of holding a whole batch until its end. A failure
        that ``probe`` does not turn into a finding (a bug) is raised here; leaving the
        iteration early (use ``contextlib.aclosing``) stops the zones still in flight.
        """
        finished: asyncio.Queue[tuple[int, ZoneObservation] | Exception] = asyncio.Queue()
        queue = iter(enumerate(targets))

        async def lane() -> None:
            try:
                for index, target in queue:  # one shared iterator: each zone is taken once
                    finished.put_nowait((index, await self.probe(target)))
            except Exception as exc:  # handed to the caller, not lost in a task
                finished.put_nowait(exc)

        lanes = min(len(targets), max(1, self.settings.max_concurrency))
        tasks = [asyncio.create_task(lane()) for _ in range(lanes)]
        try:
            for _ in range(len(targets)):
                item = await finished.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def probe(self, target: ZoneTarget) -> ZoneObservation:
        """One check of one zone; network, DNS and target problems become findings."""
        try:
            return await self._probe(target)
        except InvalidValueError as exc:
            problem = Finding(Code.INVALID_TARGET, Severity.UNKNOWN, str(exc))
        except ProbeError as exc:
            problem = Finding(exc.code, Severity.UNKNOWN, str(exc))
        return ZoneObservation(target.zone, (), problems=(problem,))

    async def _probe(self, target: ZoneTarget) -> ZoneObservation:
        try:
            apex = dns.name.from_text(target.zone)
        except dns.exception.DNSException as exc:
            raise InvalidValueError(f'zone "{target.zone}" is not a domain name ({exc})') from exc
        anchor, extras, configured = target.trust_anchor, target.extra, target.servers
        servers_task = (
            resolve_configured(configured, self._resolver.ask_cached)
            if configured
            else discover(apex, self._resolver.ask_cached)
        )
        if anchor is not None or apex == dns.name.root:
            # A configured anchor replaces the parent; the root has none. (Awaited alone: two
            # tasks per zone less than a gather, and nothing to wait for beside it.)
            found, parent = await servers_task, ParentDS()
        else:
            found, parent = await asyncio.gather(servers_task, lookup_ds(apex, self._resolver.ask))
        reachable, family_problems = self._split_families(target.zone, found)
        # One non-existent name for every server of the zone: they should prove the same thing,
        # and identical answers are decoded once (dnsio's memo).
        absent = _random_name(apex)
        collected, validators = await asyncio.gather(
            asyncio.gather(*(self._probe_server(apex, s, extras, absent) for s in reachable)),
            self._ask_validators(apex),
        )
        parent_keys = await self._parent_keys(parent)
        observation = assemble(
            target.zone,
            apex,
            collected,
            parent,
            parent_keys,
            anchor,
            self.verifier,
            problems=(*found.problems, *family_problems, *parent.problems),
        )
        if validators:
            observation = dataclasses.replace(observation, validators=validators)
        if not collected and not any(
            p.severity is Severity.UNREACHABLE for p in observation.problems
        ):
            observation = _with_problem(
                observation,
                Finding(
                    Code.NO_SERVERS,
                    Severity.UNREACHABLE,
                    f"{target.zone}: no authoritative server address could be probed",
                ),
            )
        if target.coverage.mode != "apex":
            observation = await self._whole_zone(observation, apex, target.coverage, reachable)
        return observation

    async def _whole_zone(
        self,
        observation: ZoneObservation,
        apex: dns.name.Name,
        settings: CoverageSettings,
        servers: Sequence[ServerAddress],
    ) -> ZoneObservation:
        """The transfer or walk, and each server's sample added to what it served."""
        coverage, served = await self.coverage.observe(apex, settings, servers)
        merged = tuple(_add_rrsets(s, served.get(s.address, ())) for s in observation.servers)
        return dataclasses.replace(observation, servers=merged, coverage=coverage)

    async def _ask_validators(self, apex: dns.name.Name) -> tuple[ValidatorAnswer, ...]:
        if not self.settings.validators:
            return ()
        return await ask_validators(
            apex,
            self.settings.validators,
            attempt_timeout=self.settings.timeout,
            retries=self.settings.retries,
        )

    # -- servers ------------------------------------------------------------------------------

    def _split_families(
        self, zone: str, found: Discovery
    ) -> tuple[list[ServerAddress], list[Finding]]:
        """Servers this host can route to; the rest reported once per family, not as timeouts."""
        reachable: list[ServerAddress] = []
        cut: dict[int, list[ServerAddress]] = {}
        for server in found.servers:
            if dnsio.family_reachable(server.host, server.port):
                reachable.append(server)
            else:
                cut.setdefault(6 if ":" in server.host else 4, []).append(server)
        problems = []
        for family, servers in cut.items():
            name = _FAMILY_NAMES[family]
            if family not in self._warned_families:
                self._warned_families.add(family)
                _log().warning("family_unreachable", family=name)
            listed = ", ".join(s.address for s in servers)
            problems.append(
                Finding(
                    Code.FAMILY_UNREACHABLE,
                    # A blind spot of this host, not a fault of the zone, unless it is all we have.
                    Severity.OK if reachable else Severity.UNREACHABLE,
                    f"{zone}: {name} is not reachable from this host; not checked: {listed}",
                )
            )
        return reachable, problems

    async def _probe_server(
        self,
        apex: dns.name.Name,
        server: ServerAddress,
        extras: Sequence[tuple[dns.name.Name, dns.rdatatype.RdataType]],
        absent: dns.name.Name,
    ) -> Collected:
        found = Collected(server, apex)
        try:
            soa = await self._ask_server(server, apex, dns.rdatatype.SOA)
        except ProbeError as exc:
            found.reachable = exc.code not in _NO_ANSWER
            found.fail(exc, Severity.UNREACHABLE)
            return found
        if not found.apex_soa(soa):
            return found
        questions: list[tuple[dns.name.Name, dns.rdatatype.RdataType, str]] = [
            (apex, dns.rdatatype.DNSKEY, "dnskey"),
            (apex, dns.rdatatype.NS, "apex"),
            (absent, dns.rdatatype.A, "denial"),
            # For the hygiene lints (engine/lints.py); most zones have none of them.
            (apex, dns.rdatatype.NSEC3PARAM, "facts"),
            (apex, dns.rdatatype.CDS, "facts"),
            (apex, dns.rdatatype.CDNSKEY, "facts"),
            *((name, rdtype, "extra") for name, rdtype in extras),
        ]
        answers = await asyncio.gather(
            *(
                self._try_server(server, name, rdtype, role in _AUTHORITY_ROLES)
                for name, rdtype, role in questions
            )
        )
        for (name, rdtype, role), answer in zip(questions, answers, strict=True):
            if isinstance(answer, ProbeError):
                found.fail(answer, Severity.UNKNOWN, name, rdtype)
            else:
                found.record(answer, name, rdtype, role)
        return found

    async def _try_server(
        self,
        server: ServerAddress,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        authority: bool,
    ) -> Answer | ProbeError:
        try:
            return await self._ask_server(server, qname, rdtype, authority)
        except ProbeError as exc:
            return exc

    async def _ask_server(
        self,
        server: ServerAddress,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        authority: bool = False,
    ) -> Answer:
        key = (server.host, server.port)
        limit = self._per_server.get(key)
        if limit is None:
            limit = self._per_server[key] = asyncio.Semaphore(self.settings.per_server_concurrency)
        loop = asyncio.get_running_loop()
        async with limit, self._slots:
            started = loop.time()
            # A shared server that stopped answering would otherwise hold every zone it serves
            # in its queue for a full timeout budget each: after one question went unanswered
            # (while nothing else came back from it), the others fail at once for a while.
            silent_since = self._silent.get(key)
            if silent_since is not None and started - silent_since < self._silence_window:
                raise ProbeError(
                    Code.TIMEOUT,
                    f"{server.address}: {qname} {dns.rdatatype.to_text(rdtype)}: not asked; "
                    f"the server answered nothing in the last {self._silence_window:g} s",
                )
            try:
                answer = await dnsio.query(
                    qname,
                    rdtype,
                    server.host,
                    server.port,
                    recursive=False,
                    attempt_timeout=self.settings.timeout,
                    retries=self.settings.retries,
                    authority=authority,
                )
            except ProbeError as exc:
                if exc.code == Code.TIMEOUT and self._answered.get(key, -math.inf) < started:
                    self._silent[key] = loop.time()
                raise
            self._answered[key] = loop.time()
            self._silent.pop(key, None)
            return answer

    # -- parent ---------------------------------------------------------------------------

    async def _parent_keys(self, parent: ParentDS) -> dict[dns.name.Name, Answer]:
        """The DNSKEY answers for the signers of the DS RRSIGs (normally the one parent)."""
        signers = {rrsig.signer for rrsig in parent.rrsigs or () if isinstance(rrsig, RRSIG)}
        keys = {}
        for signer in signers:
            try:
                keys[signer] = await self._resolver.ask_cached(signer, dns.rdatatype.DNSKEY)
            except ProbeError as exc:
                _log().info("parent_dnskey_failed", signer=signer.to_text(), error=str(exc))
        return keys


def _log() -> Any:
    """The module's logger, imported on first use: a clean --check never logs, and structlog
    is a tenth of the one-shot command's import time."""
    import structlog

    return structlog.get_logger(__name__)


def _random_name(apex: dns.name.Name) -> dns.name.Name:
    """A name that almost surely does not exist, so the server must prove it (NSEC/NSEC3)."""
    label = "wd-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
    return dns.name.Name((label.encode(), *apex.labels))


def _add_rrsets(server: ServerObservation, rrsets: Sequence[RRsetObservation]) -> ServerObservation:
    """``server`` with the sampled ``rrsets`` it served that the apex checks did not ask."""
    asked = {(r.owner, r.rtype) for r in server.rrsets}
    new = tuple(r for r in rrsets if (r.owner, r.rtype) not in asked)
    return dataclasses.replace(server, rrsets=(*server.rrsets, *new)) if new else server


def _with_problem(observation: ZoneObservation, problem: Finding) -> ZoneObservation:
    return ZoneObservation(
        observation.zone,
        observation.servers,
        observation.chain,
        observation.ds,
        observation.signed,
        (*observation.problems, problem),
    )
