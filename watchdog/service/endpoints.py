"""The pages of the service's HTTP listener (``[watchdog] metrics_listen``).

- ``/metrics``: every metric of watchdog.service.metrics, rendered in a thread from a copy of the
  snapshot taken in the event loop (rendering 10,000 zones takes a moment; the loop does not
  wait for it). OpenMetrics when the scraper's Accept header asks for it.
- ``/healthz``: 200 "ok" while the service is healthy, 503 and one reason a line otherwise
  (the supervisor's health: a wedged task, zones not checked on time, a webhook lane stuck).

Other pages (status pages, an API) are added to the ``Routes`` this module returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from watchdog.service.http import Request, Response, Routes
from watchdog.service.metrics import exposition
from watchdog.service.snapshot import Snapshot

__all__ = ["HealthView", "service_routes"]


class HealthView(Protocol):
    """What /healthz needs of a health verdict (watchdog.service.supervisor.Health)."""

    @property
    def healthy(self) -> bool: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...


def service_routes(
    snapshot: Snapshot,
    health: Callable[[], HealthView],
    restarts: Callable[[], Mapping[str, int]],
) -> Routes:
    """The listener's routes: /metrics from ``snapshot`` (with ``restarts()`` per task),
    /healthz from ``health()``."""

    async def metrics(request: Request) -> Response:
        snapshot.restarts = restarts()
        view = snapshot.freeze()
        accept = request.headers.get("accept", "")
        body, content_type = await asyncio.to_thread(exposition, view, accept)
        return Response(200, body, content_type)

    async def healthz(request: Request) -> Response:
        verdict = health()
        if verdict.healthy:
            return Response(200, b"ok\n")
        return Response(503, "".join(f"{r}\n" for r in verdict.reasons).encode("utf-8"))

    routes = Routes()
    routes.add("/metrics", metrics)
    routes.add("/healthz", healthz)
    return routes
