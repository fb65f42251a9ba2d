"""The prober's recursive resolver: questions with RD and CD, failover, and a small cache.

Discovery (NS, A, AAAA) and the parent's DS and DNSKEY go through here. The cache serves the
many zones that share a few name servers and one parent: concurrent askers of the same
question share one lookup, and a good answer is kept for min(TTL, 300 s).
"""

from __future__ import annotations

import asyncio
import math

import dns.name
import dns.rdatatype

from watchdog.errors import ProbeError
from watchdog.probe import dnsio
from watchdog.probe.discovery import system_resolvers
from watchdog.probe.dnsio import Answer

__all__ = ["Resolver"]

_CACHE_SECONDS = 300  # longest a resolver answer is kept
_CACHE_ENTRIES = 100_000
_Outcome = Answer | ProbeError


class Resolver:
    """Asks ``addresses`` in turn (None: the nameservers of /etc/resolv.conf, read on first
    use), at most ``slots`` questions at once together with the authoritative ones."""

    def __init__(
        self,
        addresses: tuple[tuple[str, int], ...] | None,
        slots: asyncio.Semaphore,
        *,
        attempt_timeout: float,
        retries: int,
    ) -> None:
        self._addresses = addresses
        self._slots = slots
        self._attempt_timeout = attempt_timeout
        self._retries = retries
        self._cache: dict[tuple[dns.name.Name, int], tuple[float, asyncio.Task[_Outcome]]] = {}

    async def ask(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """A recursive question, to each resolver in turn until one answers; ProbeError if none."""
        if self._addresses is None:
            self._addresses = system_resolvers()
        failure: ProbeError | None = None
        for host, port in self._addresses:
            try:
                async with self._slots:
                    return await dnsio.query(
                        qname,
                        rdtype,
                        host,
                        port,
                        recursive=True,
                        attempt_timeout=self._attempt_timeout,
                        retries=self._retries,
                    )
            except ProbeError as exc:
                failure = ProbeError(exc.code, f"resolver {exc}")
        assert failure is not None
        raise failure

    async def ask_cached(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """``ask``, shared by concurrent askers and remembered for min(TTL, 300 s)."""
        loop = asyncio.get_running_loop()
        key = (qname, int(rdtype))
        entry = self._cache.get(key)
        if entry is None or entry[0] < loop.time():
            if len(self._cache) >= _CACHE_ENTRIES:
                now = loop.time()
                self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
            task = loop.create_task(self._outcome(qname, rdtype))
            self._cache[key] = entry = (math.inf, task)  # in flight: join it
            task.add_done_callback(lambda done: self._settle(key, done))
        # shield: one asker giving up must not cancel the lookup the others wait for.
        result = await asyncio.shield(entry[1])
        if isinstance(result, ProbeError):
            raise result
        return result

    async def close(self) -> None:
        """Cancel lookups still in flight."""
        tasks = [task for _, task in self._cache.values()]
        self._cache.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _outcome(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> _Outcome:
        try:
            return await self.ask(qname, rdtype)
        except ProbeError as exc:
            return exc

    def _settle(self, key: tuple[dns.name.Name, int], done: asyncio.Task[_Outcome]) -> None:
        entry = self._cache.get(key)
        if entry is None or entry[1] is not done:
            return
        result = None if done.cancelled() else done.result()
        if not isinstance(result, Answer):
            del self._cache[key]  # failures are not remembered: the next asker tries again
            return
        ttls = [r.ttl for r in (*result.answer, *result.authority)] or [0]
        expires = asyncio.get_running_loop().time() + min(min(ttls), _CACHE_SECONDS)
        self._cache[key] = (expires, done)
