"""Status page server time with 10,000 zones: ``python -m bench.status [--zones N]``.

The snapshot is built from synthetic reports (the real engine, ``assess_zone``, fed with
observations of two servers per zone in a mix of states: healthy, warning, failed, a stale
server, a silent server, bogus), recorded in the service's StatusBoard. Timed, in this one
process: the snapshot after a stored check (the re-sort the first request after a change
pays), rendering ``/`` (counts, filters, one page of 200 rows), a name search, the last page,
a zone page, and the JSON API of the same first 200 zones, the yardstick the ratios are given
against; then the same ``/`` over HTTP from the service's listener on 127.0.0.1. Figures are
medians (and the slowest) of repeated runs; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable

from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.render.status import respond
from watchdog.service.http import HttpServer, Routes
from watchdog.service.statusboard import StatusBoard
from watchdog.service.statuspages import add_status_routes

__all__ = ["main"]

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86400
_POLICY = ZonePolicy()


def _served(zone: str, address: str, expires: int, ok: bool = True) -> ServerObservation:
    verification = Verification.VALID if ok else Verification.BOGUS
    rrsets = tuple(
        RRsetObservation(
            zone,
            rtype,
            3600,
            (
                SignatureObservation(
                    zone, rtype, 4242, 13, NOW - 10 * DAY, expires, 3600, verification
                ),
            ),
        )
        for rtype in ("SOA", "DNSKEY", "NS")
    )
    return ServerObservation(address, f"ns{address[-4]}.{zone}", True, 2030010100, rrsets)


def _silent(address: str) -> ServerObservation:
    return ServerObservation(
        address,
        None,
        False,
        None,
        (),
        (Finding("timeout", Severity.UNREACHABLE, "no answer", address),),
    )


def _report(i: int) -> ZoneReport:
    zone = f"z{i:05}.bench."
    a, b = "127.0.53.1:53", "127.0.53.2:53"
    expires = NOW + (i * 7919) % (30 * DAY) - 2 * DAY  # spread over -2 d .. +28 d
    kind = i % 20
    if kind == 0:
        servers = (_served(zone, a, expires), _served(zone, b, expires - 9 * DAY))  # stale
    elif kind == 1:
        servers = (_served(zone, a, expires), _silent(b))
    elif kind == 2:
        servers = (_served(zone, a, expires, ok=False), _served(zone, b, expires, ok=False))
    else:
        servers = (_served(zone, a, expires), _served(zone, b, expires))
    return assess_zone(ZoneObservation(zone, servers, ChainStatus.TRUST_ANCHOR), NOW, _POLICY)


def _time(action: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, max(samples) * 1000


def _board(zones: int) -> tuple[StatusBoard, float, float]:
    """The service's board holding ``zones`` checked zones; seconds to make the reports, and
    the MiB the board keeps (traced allocations left once the full reports are dropped)."""
    tracemalloc.start()
    start = time.perf_counter()
    board = StatusBoard()
    names = [f"z{i:05}.bench." for i in range(zones)]
    board.set_zones(names, NOW)
    for i in range(zones):
        board.record(_report(i), NOW + 900)
    made = time.perf_counter() - start
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    return board, made, kept


async def _over_http(board: StatusBoard, target: str, runs: int) -> tuple[float, float, int]:
    """GET ``target`` from the service's own listener (watchdog.service.http) on 127.0.0.1,
    one connection per request as the listener answers: milliseconds median, slowest, bytes."""
    routes = Routes()
    add_status_routes(routes, board, clock=lambda: NOW)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        HttpServer(routes, "127.0.0.1", 0).serve(lambda host, port: bound.set_result(port))
    )
    port = await asyncio.wait_for(bound, 10)
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    samples, size = [], 0
    try:
        for _ in range(runs):
            start = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(), 30)
            samples.append(time.perf_counter() - start)
            writer.close()
            size = len(answer)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    return statistics.median(samples) * 1000, max(samples) * 1000, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    board, made, kept = _board(args.zones)
    snap = board.snapshot(NOW)
    again = _report(0)

    def changed() -> object:
        board.record(again, NOW + 900)  # one more stored check: the next request re-sorts
        return board.rebuild(NOW)

    middle = snap.zones[len(snap.zones) // 2].name

    def get(target: str) -> Callable[[], object]:
        def run() -> object:
            response = respond(snap, "GET", target, NOW)
            assert response is not None and response.status == 200, target
            return response

        return run

    rows = [
        ("snapshot after a stored check (re-sort)", changed),
        ("GET / (first page of 200 rows)", get("/")),
        ("GET /?q=z01 (name search)", get("/?q=z01")),
        ("GET /?severity=warning", get("/?severity=warning")),
        (f"GET /?page={-(-args.zones // 200)} (last page)", get(f"/?page={-(-args.zones // 200)}")),
        ("GET /zones/<zone>", get("/zones/" + middle)),
        ("GET /api/v1/zones (first 200 zones, JSON)", get("/api/v1/zones")),
    ]
    results = [(label, *_time(action, args.runs)) for label, action in rows]
    http_median, http_max, http_size = asyncio.run(_over_http(board, "/", args.runs))
    results.append(("GET / over HTTP (listener, loopback)", http_median, http_max))
    size = len(respond(snap, "GET", "/", NOW).body)  # type: ignore[union-attr]
    api = dict((label, median) for label, median, _ in results)[
        "GET /api/v1/zones (first 200 zones, JSON)"
    ]
    print(f"{args.zones} zones (reports made in {made:.1f} s, not timed); {args.runs} runs each")
    print(f"the board keeps {kept:.1f} MiB for them (reports without per-RRset verdicts)")
    print(f"{'what':44} {'median ms':>10} {'max ms':>8} {'x JSON API':>11}")
    for label, median, slowest in results:
        print(f"{label:44} {median:10.1f} {slowest:8.1f} {median / api:11.3f}")
    print(f"/ is {size / 1024:.0f} KiB of HTML ({http_size / 1024:.0f} KiB with the HTTP head)")


if __name__ == "__main__":
    main()
