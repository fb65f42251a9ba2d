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
from watchdog.service.statusboard import StatusBoard

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
        return board.snapshot(NOW)

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
    size = len(respond(snap, "GET", "/", NOW).body)  # type: ignore[union-attr]
    api = dict((label, median) for label, median, _ in results)[
        "GET /api/v1/zones (first 200 zones, JSON)"
    ]
    print(f"{args.zones} zones (reports made in {made:.1f} s, not timed); {args.runs} runs each")
    print(f"the board keeps {kept:.1f} MiB for them (reports without per-RRset verdicts)")
    print(f"{'what':44} {'median ms':>10} {'max ms':>8} {'x JSON API':>11}")
    for label, median, slowest in results:
        print(f"{label:44} {median:10.1f} {slowest:8.1f} {median / api:11.3f}")
    print(f"/ is {size / 1024:.0f} KiB of HTML")


if __name__ == "__main__":
    main()
