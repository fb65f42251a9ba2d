"""The pages of the service's HTTP listener (``[watchdog] metrics_listen``).

- ``/metrics``: every metric of watchdog.service.metrics, rendered in a thread from a copy of the
  snapshot taken in the event loop: prometheus_client needs about 2 s of CPU for the 160,000
  samples of 10,000 zones (bench/scrape.py), and the loop must not wait for that. The zone
  part is rendered again only when a zone's state changed since (``Snapshot.generation``):
  between check cycles a scrape costs only the service's own few families. OpenMetrics when
  the scraper asks for it.
- ``/healthz``: 200 "ok" while the service is healthy, 503 and one reason a line otherwise
  (the supervisor's health: a wedged task, zones not checked on time, a webhook lane stuck).

Other pages (status pages, an API) are added to the ``Routes`` this module returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from watchdog.service.http import Request, Response, Routes
from watchdog.service.metrics import Encoder, ServiceCollector, ZoneCollector, encoder_for, join
from watchdog.service.snapshot import Snapshot

__all__ = ["HealthView", "service_routes"]


class HealthView(Protocol):
    """What /healthz needs of a health verdict (watchdog.service.supervisor.Health)."""

    @property
    def healthy(self) -> bool: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...


class _ZoneText:
    """The zone part of /metrics, rendered once per snapshot generation and encoding.

    Concurrent scrapes of one generation share one rendering.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._done: dict[str, tuple[int, bytes]] = {}  # content type -> (generation, body)
        self._rendering: dict[tuple[str, int], asyncio.Future[bytes]] = {}

    async def body(self, encoder: Encoder, content_type: str) -> bytes:
        generation = self._snapshot.generation
        done = self._done.get(content_type)
        if done is not None and done[0] == generation:
            return done[1]
        key = (content_type, generation)
        if key not in self._rendering:
            collector = ZoneCollector(self._snapshot.zones.values())  # copied in the loop
            self._rendering[key] = asyncio.ensure_future(asyncio.to_thread(encoder, collector))
        future = self._rendering[key]
        try:
            body = await asyncio.shield(future)
        finally:
            if future.done():
                self._rendering.pop(key, None)
        self._done[content_type] = (generation, body)
        return body


def service_routes(
    snapshot: Snapshot,
    health: Callable[[], HealthView],
    restarts: Callable[[], Mapping[str, int]],
) -> Routes:
    """The listener's routes: /metrics from ``snapshot`` (with ``restarts()`` per task),
    /healthz from ``health()``."""
    zone_text = _ZoneText(snapshot)

    async def metrics(request: Request) -> Response:
        snapshot.restarts = restarts()
        encoder, content_type = encoder_for(request.headers.get("accept", ""))
        zones = await zone_text.body(encoder, content_type)
        service = encoder(ServiceCollector(snapshot.freeze(zones=False)))
        return Response(200, join(zones, service, content_type), content_type)

    async def healthz(request: Request) -> Response:
        verdict = health()
        if verdict.healthy:
            return Response(200, b"ok\n")
        return Response(503, "".join(f"{r}\n" for r in verdict.reasons).encode("utf-8"))

    routes = Routes()
    routes.add("/metrics", metrics)
    routes.add("/healthz", healthz)
    return routes
