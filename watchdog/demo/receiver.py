"""A tiny webhook receiver for the demo: accepts POSTs on 127.0.0.1 and hands each body on.

Just enough HTTP/1.1 for one request per connection (what httpx sends to a webhook); it answers
204 and closes. Not a general web server: it exists so ``make demo`` needs nothing installed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.engine.digits import ascii_int
from watchdog.errors import InvalidValueError

__all__ = ["ReceivedRequest", "WebhookReceiver"]

_MAX_BODY = 1 << 20
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float  # time.time() when the body was complete


class WebhookReceiver:
    """``async with WebhookReceiver(on_request) as r:`` serves on ``r.url`` until exit."""

    def __init__(
        self,
        on_request: Callable[[ReceivedRequest], None],
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self._on_request = on_request
        self._host = host
        self._port = port
        self._clock = clock or time.time
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "receiver not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/hook"

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = b"204 No Content"
        try:
            request = await asyncio.wait_for(self._read(reader), _TIMEOUT)
            if request is None:
                status = b"400 Bad Request"
            else:
                self._on_request(request)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            status = b"400 Bad Request"
        with contextlib.suppress(ConnectionError):
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> ReceivedRequest | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] != "POST":
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        try:
            length = ascii_int(headers.get("content-length", "0"), "Content-Length")
        except InvalidValueError:
            return None
        if length > _MAX_BODY:
            return None
        body = await reader.readexactly(length)
        return ReceivedRequest(parts[1], headers, body, self._clock())
