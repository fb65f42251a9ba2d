"""A small authoritative DNS server for the demo and the tests: UDP and TCP on one port.

It answers from in-memory zones (usually made by ``signer.sign_zone``) with AA=1, adds RRSIGs
and NSEC/NSEC3 proofs when the query has the DO bit (RFC 4035 3.1), honours the client's EDNS
buffer size (TC=1 when the answer does not fit, so the client retries over TCP), refuses names
outside its zones, and injects the faults listed in ``faults``. Not supported: delegations below
the apex, wildcard synthesis, zone transfers.

    python -m watchdog.demo.authserver --zone example.test --port 5353 --lifetime 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.zone
import structlog

from .answers import answer, zones_by_origin
from .faults import Ending, Fault, Reply, Transport, plan_reply
from .signer import DEMO_RECORDS, Denial, ds_records, make_keys, sign_zone

__all__ = ["AuthServer", "main"]

_log = structlog.get_logger(__name__)

_BIND_ATTEMPTS = 20


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: AuthServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._server._spawn(self._server._serve_udp(data, addr))


class AuthServer:
    """An authoritative server for ``zones`` on ``host``:``port`` (0: any free port), UDP and TCP.

    ``faults`` may be reassigned at any time; ``replace_zone`` swaps a zone between two queries.
    """

    def __init__(
        self,
        zones: dns.zone.Zone | Iterable[dns.zone.Zone],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Sequence[Fault] = (),
    ) -> None:
        self.host = host
        self.faults: Sequence[Fault] = tuple(faults)
        self._zones = zones_by_origin(zones)
        self._requested_port = port
        self._port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_other: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port UDP and TCP listen on (known once started)."""
        return self._port

    def replace_zone(self, zone: dns.zone.Zone) -> None:
        """Serve ``zone`` instead of the zone of the same origin (or in addition to the others)."""
        self._zones = {**self._zones, **zones_by_origin(zone)}  # one assignment: atomic
        _log.info("authserver_zone_replaced", zone=str(zone.origin), port=self._port)

    async def start(self) -> None:
        """Bind UDP and TCP to the same port and start answering."""
        loop = asyncio.get_running_loop()
        for attempt in range(_BIND_ATTEMPTS):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self._requested_port)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError:
                udp.close()  # that port is taken for TCP: try another one, unless it was asked for
                if self._requested_port or attempt == _BIND_ATTEMPTS - 1:
                    raise
                continue
            self._udp, self._port = udp, port
            break
        self._udp_other, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0)
        )
        _log.info(
            "authserver_started",
            host=self.host,
            port=self._port,
            zones=[str(o) for o in self._zones],
        )

    async def stop(self) -> None:
        """Stop listening, abandon queries in progress and close every connection."""
        for transport in (self._udp, self._udp_other):
            if transport is not None:
                transport.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        self._udp = self._udp_other = self._tcp = None
        _log.info("authserver_stopped", port=self._port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(self, wire: bytes, transport: Transport, peer: object) -> Reply | None:
        """Parse, answer, apply faults; None for a message we do not answer at all."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError) as exc:
            # A real server would send FORMERR when it can; silence is enough for the demo.
            _log.warning(
                "authserver_query_malformed",
                transport=str(transport),
                peer=str(peer),
                error=str(exc),
            )
            return None
        if query.flags & dns.flags.QR:
            return None  # a response, not a query: answering it could start a loop
        return plan_reply(query, answer(self._zones, query), self.faults, transport)

    async def _serve_udp(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self._reply(data, Transport.UDP, addr)
        if reply is None or not reply.data:
            return
        if reply.delay:
            await asyncio.sleep(reply.delay)
        for data, other_port in (*reply.before, (reply.data, reply.other_port)):
            sender = self._udp_other if other_port else self._udp
            if sender is not None and not sender.is_closing():
                sender.sendto(data, addr)

    def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._tcp_connection(reader, writer))

    async def _tcp_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        ending = Ending.CLOSE
        try:
            ending = await self._tcp_exchanges(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            if ending is Ending.RESET:
                # SO_LINGER with a zero timeout makes the close send RST instead of FIN.
                sock = writer.get_extra_info("socket")
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _tcp_exchanges(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Ending:
        """Answer length-prefixed queries (RFC 7766 8) until a reply ends the connection."""
        peer = writer.get_extra_info("peername")
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = self._reply(await reader.readexactly(length), Transport.TCP, peer)
            if reply is None:
                return Ending.CLOSE
            if reply.delay:
                await asyncio.sleep(reply.delay)
            writer.write(reply.data)
            await writer.drain()
            if reply.ending is Ending.HANG:
                while await reader.read(4096):
                    pass  # silent until the client leaves (or the server stops)
                return Ending.CLOSE
            if reply.ending is not Ending.KEEP:
                return reply.ending


async def _serve_forever(zone: dns.zone.Zone, host: str, port: int) -> None:
    async with AuthServer(zone, host, port) as server:
        print(f"serving {zone.origin} on {host} port {server.port} (UDP and TCP); Ctrl-C stops")
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a freshly signed demo zone and print its DS, for manual checks with dig or kdig."""
    parser = argparse.ArgumentParser(
        prog="python -m watchdog.demo.authserver", description=main.__doc__
    )
    parser.add_argument("--zone", default="example.test", help="zone name (default: example.test)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5353, help="UDP and TCP port (default: 5353)")
    parser.add_argument(
        "--lifetime", type=int, default=120, help="signatures expire this many seconds from now"
    )
    parser.add_argument("--denial", choices=[d.value for d in Denial], default=Denial.NSEC.value)
    args = parser.parse_args(argv)
    now = int(time.time())
    origin = dns.name.from_text(args.zone)
    keys = make_keys()
    zone = sign_zone(origin, DEMO_RECORDS, keys, now, now + args.lifetime, args.denial)
    for ds in ds_records(keys, origin):
        print(f"{origin} IN DS {ds}")
    try:
        asyncio.run(_serve_forever(zone, args.host, args.port))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
