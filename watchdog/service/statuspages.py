"""The status page's routes on the service's HTTP listener: ``/``, ``/zones/``, ``/api/v1/zones``.

Each request takes the board's snapshot and renders it in a thread (watchdog.render.status is
pure: the request target and the snapshot in, a whole response out), so the event loop never
waits on rendering, and a page never waits on probing or on the state file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from watchdog.render.status import StatusResponse, respond
from watchdog.service.http import Request, Response, Routes
from watchdog.service.statusboard import StatusBoard

__all__ = ["add_status_routes"]


def _render(board: StatusBoard, method: str, target: str, now: int) -> StatusResponse | None:
    return respond(board.snapshot(now), method, target, now)


def add_status_routes(
    routes: Routes, board: StatusBoard, clock: Callable[[], float] = time.time
) -> None:
    """Serve the status pages from ``board`` on ``routes``."""

    async def page(request: Request) -> Response:
        now = int(clock())
        found = await asyncio.to_thread(_render, board, request.method, request.target, now)
        if found is None:
            return Response(404, b"not found\n")
        headers = {name: value for name, value in found.headers if name != "Content-Type"}
        return Response(found.status, found.body, found.content_type, headers)

    routes.add("/", page)
    routes.add("/zones/", page, prefix=True)
    routes.add("/api/v1/zones", page)
    routes.add("/api/v1/zones/", page, prefix=True)
