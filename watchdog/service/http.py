"""The service's own small HTTP server: ``/metrics``, ``/healthz``, and any page a route adds.

It runs in the service's event loop, so it must never wait on anything but its sockets: the
handlers read what the service keeps in memory (watchdog.service.snapshot) and hand heavy
rendering to a thread. Every connection answers one request and closes (``Connection:
close``), which Prometheus, curl and browsers all handle; in exchange there is no
keep-alive state to attack.

What a hostile or broken client can do is bounded (the numbers are ``Limits``):
- a request head is read line by line, each line at most ``line`` bytes, at most ``fields``
  header fields, within ``head_timeout`` seconds as a whole: a slowloris sending a byte a
  second is cut off, a huge header gets 431, garbage gets 400, all without a handler running;
- at most ``connections`` connections are open at once; more are closed unanswered;
- an answer must be taken within ``write_timeout`` seconds, or the connection is dropped;
- only GET and HEAD are served (405 otherwise); a request body is never read.
A handler that raises answers 500 and is logged (``http_handler_failed``); the server goes on.

Routes: ``Routes.add("/metrics", handler)`` for one path, ``Routes.add("/zones/", handler,
prefix=True)`` for every path under it (the longest prefix wins; exact paths first).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import structlog

from watchdog.render.status import CONTENT_SECURITY_POLICY

__all__ = ["Handler", "HttpServer", "Limits", "Request", "Response", "Routes"]

log = structlog.get_logger(__name__)

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.6.2
_REQUEST_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/1\.([01])")
_METHODS = ("GET", "HEAD")
_LINGER = 1.0  # seconds to read what a client still sends after its answer
_LINGER_READS = 16  # reads of at most 64 KiB each in that time


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. ``path`` is percent-decoded; header names are lower case;
    ``target`` is the request target as sent (for handlers that parse it themselves: a
    repeated parameter, or a "%2F" inside a zone name, is lost in ``path`` and ``query``)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    target: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler answers; the server adds the framing headers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]
"""An async function from a request to its response; it must not block the event loop."""


def text(status: int, body: str) -> Response:
    """A plain-text response."""
    return Response(status, body.encode("utf-8"))


class Routes:
    """Paths to handlers: exact paths first, then the longest matching prefix."""

    def __init__(self) -> None:
        self._exact: dict[str, Handler] = {}
        self._prefixes: dict[str, Handler] = {}

    def add(self, path: str, handler: Handler, *, prefix: bool = False) -> None:
        if not path.startswith("/"):
            raise ValueError(f"a route starts with '/', not {path!r}")
        (self._prefixes if prefix else self._exact)[path] = handler

    def find(self, path: str) -> Handler | None:
        if path in self._exact:
            return self._exact[path]
        matches = [p for p in self._prefixes if path.startswith(p)]
        return self._prefixes[max(matches, key=len)] if matches else None


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may cost the server."""

    line: int = 8192  # bytes of the request line or of one header field
    fields: int = 100  # header fields in one request
    head_timeout: float = 10.0  # seconds to send the whole request head
    write_timeout: float = 30.0  # seconds to take the whole answer
    connections: int = 64  # open at once


class _Refused(Exception):
    """A request answered with an error status before any handler runs."""

    def __init__(self, status: HTTPStatus, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status.phrase)
        self.status = status
        self.headers = headers or {}


class HttpServer:
    """Serves ``routes`` on ``host``:``port`` (0: any free port) until cancelled."""

    def __init__(
        self, routes: Routes, host: str, port: int, *, limits: Limits | None = None
    ) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self._connections: set[asyncio.Task[Any]] = set()

    async def serve(self, started: Callable[[str, int], None] | None = None) -> None:
        """Listen and answer until cancelled; ``started(host, port)`` is told the bound port.

        A failure to listen (address in use, not an address of this host) is logged and
        raised, so the supervisor tries again later.
        """
        try:
            server = await asyncio.start_server(
                self._connection, self.host, self.port, limit=self.limits.line
            )
        except OSError as exc:
            log.error(
                "http_listen_failed",
                address=self.host,
                port=self.port,
                error=exc.strerror or type(exc).__name__,
            )
            raise
        try:
            async with server:
                host, port = server.sockets[0].getsockname()[:2]
                log.info("http_listening", address=host, port=port)
                if started is not None:
                    started(host, port)
                await asyncio.Future()  # until cancelled
        finally:
            for task in self._connections:
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= self.limits.connections or task is None:
            writer.transport.abort()
            return
        self._connections.add(task)
        try:
            response, head = await self._answer(reader)
            if response is not None:
                await self._write(writer, response, head)
                await _linger(reader, writer)
        except asyncio.CancelledError:
            # The server is stopping. Ended here rather than raised: Python 3.11's stream
            # callback would log a cancelled connection task as an error (fixed in 3.12).
            pass
        except Exception:  # never let one connection's trouble reach the server
            log.exception("http_connection_failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response | None, bool]:
        """The response to the request on ``reader`` (None: drop the connection silently),
        and whether it answers a HEAD."""
        try:
            async with asyncio.timeout(self.limits.head_timeout):
                lines = await self._read_head(reader)
        except TimeoutError:
            return text(HTTPStatus.REQUEST_TIMEOUT, "request head too slow\n"), False
        except (asyncio.IncompleteReadError, ConnectionError):
            return None, False  # the client went away
        except asyncio.LimitOverrunError:
            return text(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header too large\n"), False
        except _Refused as exc:
            return Response(exc.status, f"{exc}\n".encode(), headers=exc.headers), False
        try:
            request = _parse(lines)
        except _Refused as exc:
            return Response(exc.status, f"{exc}\n".encode(), headers=exc.headers), False
        handler = self.routes.find(request.path)
        if handler is None:
            return text(HTTPStatus.NOT_FOUND, "not found\n"), request.method == "HEAD"
        try:
            return await handler(request), request.method == "HEAD"
        except Exception as exc:
            log.exception(
                "http_handler_failed", path=request.path[:200], error_type=type(exc).__name__
            )
            return text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n"), False

    async def _read_head(self, reader: asyncio.StreamReader) -> list[bytes]:
        """The request line and header lines, without line ends, up to the empty line."""
        lines: list[bytes] = []
        while True:
            line = (await reader.readuntil(b"\n")).rstrip(b"\r\n")
            if not line:
                if lines:
                    return lines
                continue  # RFC 9112 2.2: ignore empty lines before the request line
            if len(lines) > self.limits.fields:
                raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            lines.append(line)

    async def _write(self, writer: asyncio.StreamWriter, response: Response, head: bool) -> None:
        status = HTTPStatus(response.status)
        fields = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            **response.headers,
            "Connection": "close",
        }
        top = f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        top += "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        writer.write(top.encode("latin-1") + (b"" if head else response.body))
        try:
            async with asyncio.timeout(self.limits.write_timeout):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()  # a client that does not read loses its answer


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then read what the client still sends for a moment before closing.

    Closing a socket with unread data in it sends a reset, which can destroy the answer before
    the client reads it (a 408 to a client still trickling its head, a 431 to one still sending
    its huge header). Lingering, as HTTP servers do (RFC 9112 9.6), lets the answer arrive;
    bounded in time and bytes, so it costs a hostile client nothing it can use.
    """
    if writer.transport.is_closing() or not writer.can_write_eof():
        return
    with contextlib.suppress(Exception):
        writer.write_eof()
        async with asyncio.timeout(_LINGER):
            for _ in range(_LINGER_READS):
                if not await reader.read(65536):
                    return


def _parse(lines: list[bytes]) -> Request:
    """The request from its head lines; raises _Refused for anything not a plain GET/HEAD."""
    try:
        first = lines[0].decode("ascii")
    except UnicodeDecodeError:
        raise _Refused(HTTPStatus.BAD_REQUEST) from None
    match = _REQUEST_LINE.fullmatch(first)
    if match is None:
        raise _Refused(HTTPStatus.BAD_REQUEST)
    method, target = match[1], match[2]
    if method not in _METHODS:
        raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": ", ".join(_METHODS)})
    if not target.startswith("/"):
        raise _Refused(HTTPStatus.BAD_REQUEST)
    raw_path, _, raw_query = target.partition("?")
    try:
        path = unquote(raw_path, errors="strict")
        query = dict(parse_qsl(raw_query, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise _Refused(HTTPStatus.BAD_REQUEST) from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        decoded = name.decode("latin-1")
        if not colon or not _TOKEN.fullmatch(decoded):  # also refuses obs-fold (RFC 9112 5.2)
            raise _Refused(HTTPStatus.BAD_REQUEST)
        key = decoded.lower()
        text_value = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text_value}" if key in headers else text_value
    return Request(method, path, query, headers, target)
