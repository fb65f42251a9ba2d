"""The service's HTTP server on a real loopback socket: routes, and hostile clients bounded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.service.http import HttpServer, Limits, Request, Response, Routes

FAST = Limits(line=256, fields=10, head_timeout=0.5, write_timeout=0.5, connections=4)


async def _hello(request: Request) -> Response:
    return Response(200, f"hello {request.path} {dict(request.query)}\n".encode())


async def _zone(request: Request) -> Response:
    return Response(200, f"zone {request.path.removeprefix('/zones/')}\n".encode())


async def _boom(request: Request) -> Response:
    raise RuntimeError("handler bug")


def _routes() -> Routes:
    routes = Routes()
    routes.add("/hello", _hello)
    routes.add("/zones/", _zone, prefix=True)
    routes.add("/zones/special", _hello)
    routes.add("/boom", _boom)
    return routes


@contextlib.asynccontextmanager
async def serving(limits: Limits = FAST, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """An HttpServer on a free loopback port; yields the port, cancels the server after."""
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = HttpServer(_routes(), host, 0, limits=limits)
    task = asyncio.create_task(server.serve(lambda h, p: bound.set_result(p)))
    try:
        yield await asyncio.wait_for(bound, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def exchange(port: int, raw: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``raw``, read until the server closes (within 5 s); b"" if it reset."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""  # closed unanswered
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_routes_exact_then_longest_prefix() -> None:
    """Exact paths win, then the longest prefix; percent-escapes and the query are decoded."""
    async with serving() as port:
        hello = await exchange(port, b"GET /hello?a=1&b=%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n")
        zone = await exchange(port, b"GET /zones/example.com. HTTP/1.1\r\n\r\n")
        special = await exchange(port, b"GET /zones/special HTTP/1.0\r\n\r\n")
        escaped = await exchange(port, b"GET /zones/ex%61mple HTTP/1.1\r\n\r\n")
        missing = await exchange(port, b"GET /nothing HTTP/1.1\r\n\r\n")
    assert hello.startswith(b"HTTP/1.1 200 OK\r\n")
    assert hello.endswith(b"hello /hello {'a': '1', 'b': '\xc3\xa9'}\n")
    assert b"\r\nConnection: close\r\n" in hello
    assert b"\r\nContent-Length: " in hello
    assert zone.endswith(b"zone example.com.\n")
    assert special.endswith(b"hello /zones/special {}\n")
    assert escaped.endswith(b"zone example\n")
    assert status_of(missing) == 404


async def test_head_has_headers_and_no_body() -> None:
    """HEAD answers the GET's headers (its Content-Length) without the body."""
    async with serving() as port:
        answer = await exchange(port, b"HEAD /hello HTTP/1.1\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: %d" % len(b"hello /hello {}\n") in head
    assert body == b""


async def test_other_methods_are_refused_with_allow() -> None:
    """POST and friends get 405 and the methods that are allowed."""
    async with serving() as port:
        answer = await exchange(port, b"POST /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert status_of(answer) == 405
    assert b"\r\nAllow: GET, HEAD\r\n" in answer


async def test_a_handler_that_raises_is_a_500_and_the_server_goes_on() -> None:
    """A bug in a handler answers 500; the next request is served."""
    async with serving() as port:
        boom = await exchange(port, b"GET /boom HTTP/1.1\r\n\r\n")
        after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
    assert status_of(boom) == 500
    assert b"handler bug" not in boom
    assert status_of(after) == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /hello\r\n\r\n",
        b"GET /hello HTTP/2.0\r\n\r\n",
        b"GET hello HTTP/1.1\r\n\r\n",  # not origin-form
        b"GET http://x/hello HTTP/1.1\r\n\r\n",
        b"GET /h\xc3\xa9llo HTTP/1.1\r\n\r\n",  # raw non-ASCII in the request line
        b"GET /%ff%fe HTTP/1.1\r\n\r\n",  # escapes that are not UTF-8
        b"GET /hello HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  # obs-fold
        b"GET /hello HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",  # a TLS ClientHello
    ],
)
async def test_garbage_gets_400_and_the_server_goes_on(raw: bytes) -> None:
    """Malformed request lines and headers are 400, and do not stop the server."""
    async with serving() as port:
        answer = await exchange(port, raw)
        after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
    assert status_of(answer) == 400
    assert status_of(after) == 200


async def test_non_ascii_header_values_are_tolerated() -> None:
    """Bytes above 127 in a header value (obs-text) do not break the request."""
    async with serving() as port:
        answer = await exchange(port, b"GET /hello HTTP/1.1\r\nUser-Agent: \xb3\xff\r\n\r\n")
    assert status_of(answer) == 200


async def test_huge_header_line_is_431() -> None:
    """A header line longer than the limit gets 431 without being read whole."""
    async with serving() as port:
        answer = await exchange(port, b"GET /hello HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n")
        after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
    assert status_of(answer) == 431
    assert status_of(after) == 200


async def test_too_many_header_fields_is_431() -> None:
    """More header fields than the limit get 431."""
    fields = b"".join(b"X-%d: y\r\n" % i for i in range(50))
    async with serving() as port:
        answer = await exchange(port, b"GET /hello HTTP/1.1\r\n" + fields + b"\r\n")
    assert status_of(answer) == 431


async def test_slowloris_is_cut_off_and_others_are_served_meanwhile() -> None:
    """A client trickling its head gets 408 at the head timeout; others are served meanwhile."""
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /hello HTTP/1.1\r\n")
        await writer.drain()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(40):
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        trickler = asyncio.create_task(trickle())
        other = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.readline(), 5)  # its status line
        trickler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trickler
        writer.close()
    assert status_of(other) == 200
    assert status_of(answer) == 408


async def test_connections_beyond_the_limit_are_closed_then_served_again() -> None:
    """Past the open-connection limit a new connection is closed; once idle ones end, served."""
    async with serving() as port:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(FAST.connections)]
        await asyncio.sleep(0.1)  # let the server accept them
        refused = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
        for _, writer in idle:
            writer.close()
        for reader, _ in idle:  # each gets its 408 or EOF once closed
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(reader.read(), 5)
        await asyncio.sleep(0.1)
        after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
    assert refused == b""
    assert status_of(after) == 200


async def test_client_that_hangs_up_early_does_not_hurt() -> None:
    """A client that connects and leaves, or sends half a line and leaves, is forgotten."""
    async with serving() as port:
        for raw in (b"", b"GET /hel"):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            writer.close()
        after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
    assert status_of(after) == 200


async def test_listens_on_ipv6_loopback() -> None:
    """[::1] works as a listen address."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        async with serving(host="::1") as port:
            answer = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n", host="::1")
    except OSError as exc:
        pytest.skip(f"::1 is not usable here: {exc}")
    assert status_of(answer) == 200


async def test_address_in_use_raises_for_the_supervisor() -> None:
    """Listening on a taken port raises OSError (the supervisor restarts it later)."""
    async with serving() as port:
        second = HttpServer(_routes(), "127.0.0.1", port, limits=FAST)
        with pytest.raises(OSError):
            await asyncio.wait_for(second.serve(), 5)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(head=st.binary(max_size=300))
def test_any_bytes_get_an_answer_or_a_close(head: bytes) -> None:
    """Whatever bytes arrive, the server answers with a status or closes, and keeps serving."""

    async def run() -> None:
        async with serving() as port:
            answer = await exchange(port, head + b"\r\n\r\n")
            after = await exchange(port, b"GET /hello HTTP/1.1\r\n\r\n")
        assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
        assert status_of(after) == 200

    asyncio.run(run())
