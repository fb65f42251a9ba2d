"""The dead-man's switch: ping an outside monitor while the watchdog is healthy.

A watchdog that stops cannot page anyone about it, so something outside must notice its
silence. Push monitors (healthchecks.io, Uptime Kuma push monitors, Cronitor heartbeats) wait for
a request to a secret URL at a regular interval and page when one is late. The service sends
that request every ``interval`` only while it is healthy (the supervisor's verdict: every task
made progress, every due zone was checked on time, no webhook lane is stuck past its retry
budget); when it is not, it stops, and pings ``fail_url`` instead when one is configured (the
"/fail" endpoint of healthchecks.io pages at once instead of after the grace time).

The URLs are secrets: they are never logged (events name the ping "heartbeat" or
"heartbeat-fail" and describe errors by type), and the log's redactor knows them too.
Redirects are not followed and TLS certificates are verified, as for webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import structlog

from watchdog.config.parse import HeartbeatConfig
from watchdog.service.endpoints import HealthView

__all__ = ["Heartbeat"]

log = structlog.get_logger(__name__)

_TIMEOUT = 10.0  # seconds for one ping at most (and never more than the interval)


class Heartbeat:
    """Pings ``config.url`` every ``config.interval`` while ``health()`` is healthy."""

    def __init__(self, config: HeartbeatConfig, health: Callable[[], HealthView]) -> None:
        self.config = config
        self._health = health
        self._timeout = min(_TIMEOUT, float(config.interval))
        self.sent = 0  # successful pings of ``url``, for tests and the log

    async def run(self) -> None:
        """Ping until cancelled."""
        async with httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            headers={"User-Agent": "dnssec-watchdog"},
        ) as client:
            withheld: tuple[str, ...] = ()
            while True:
                verdict = self._health()
                if verdict.healthy:
                    if withheld:
                        log.info("heartbeat_resumed")
                    withheld = ()
                    if await self._ping(client, self.config.url, "heartbeat", "ok\n"):
                        self.sent += 1
                else:
                    if verdict.reasons != withheld:
                        log.warning("heartbeat_withheld", reasons=list(verdict.reasons))
                    withheld = verdict.reasons or ("unhealthy",)
                    if self.config.fail_url is not None:
                        body = "".join(f"{r}\n" for r in verdict.reasons)
                        await self._ping(client, self.config.fail_url, "heartbeat-fail", body)
                await asyncio.sleep(self.config.interval)

    async def _ping(self, client: httpx.AsyncClient, url: str, name: str, body: str) -> bool:
        """One request; True on a 2xx. Failures are logged without the URL."""
        content = body.encode("utf-8") if self.config.method == "POST" else None
        try:
            async with asyncio.timeout(self._timeout):
                response = await client.request(self.config.method, url, content=content)
        except TimeoutError:
            log.warning("heartbeat_failed", ping=name, error="timeout")
            return False
        except httpx.HTTPError as exc:
            log.warning("heartbeat_failed", ping=name, error=type(exc).__name__)
            return False
        if not response.is_success:
            log.warning("heartbeat_failed", ping=name, status=response.status_code)
            return False
        log.debug("heartbeat_sent", ping=name, status=response.status_code)
        return True
