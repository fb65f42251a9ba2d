"""What a Prometheus scrape of the service's /metrics costs, with 1,000 to 10,000 zones.

``python -m bench.scrape [--zones 1000 10000]``: a snapshot of N zones (each with two server
addresses, one of them down, and two findings: the shape of a zone with trouble, so more
samples than a healthy one) is served by the service's own listener (watchdog.service.http,
watchdog.service.endpoints) on a free 127.0.0.1 port. It prints, for each N: the body size,
the first scrape (the zone part rendered by prometheus_client in a thread), the next one (the
zone part reused: no zone changed), their ratio, and how long /healthz took to answer while the
first scrape was being rendered. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from watchdog.engine.findings import Finding, Severity
from watchdog.service.endpoints import service_routes
from watchdog.service.http import HttpServer
from watchdog.service.snapshot import ServerState, Snapshot, ZoneState
from watchdog.service.telemetry import Verdict

__all__ = ["measure"]

_T = 1_900_000_000


def _zone(i: int) -> ZoneState:
    return ZoneState(
        zone=f"zone{i}.bench.",
        severity="warning",
        checked_at=_T,
        warning_at=_T - 100,
        strict_fail_at=_T + 86_401,
        skew_exhausted_at=_T + 172_801,
        servers=(
            ServerState("127.0.53.1:53", "ns1.bench.", True, 2026120301, "warning"),
            ServerState("[::1]:53", None, False, None, "unreachable"),
        ),
        findings=(
            Finding("signature_expiring", Severity.WARNING, "soon"),
            Finding("timeout", Severity.UNREACHABLE, "no answer", server="[::1]:53"),
        ),
    )


async def _get(port: int, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    body = await asyncio.wait_for(reader.read(), 120)
    writer.close()
    return time.perf_counter() - started, len(body)


async def _measure_one(zones: int) -> dict[str, Any]:
    snapshot = Snapshot(version="bench")
    for i in range(zones):
        snapshot.checked(_zone(i))
    routes = service_routes(snapshot, lambda: Verdict(True), dict)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        HttpServer(routes, "127.0.0.1", 0).serve(lambda h, p: bound.set_result(p))
    )
    try:
        port = await asyncio.wait_for(bound, 10)
        first = asyncio.create_task(_get(port, "/metrics"))
        await asyncio.sleep(0.05)  # the rendering has started in its thread
        health_s, _ = await _get(port, "/healthz")
        cold_s, size = await first
        warm_s, _ = await _get(port, "/metrics")
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    return {
        "zones": zones,
        "bytes": size,
        "first_s": round(cold_s, 3),
        "next_s": round(warm_s, 4),
        "ratio": round(cold_s / warm_s, 1),
        "healthz_during_first_s": round(health_s, 4),
    }


def measure(sizes: list[int]) -> list[dict[str, Any]]:
    return [asyncio.run(_measure_one(n)) for n in sizes]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape")
    parser.add_argument("--zones", type=int, nargs="+", default=[1000, 10000])
    for row in measure(parser.parse_args().zones):
        print(
            f"{row['zones']} zones: {row['bytes'] / 1e6:.1f} MB; first scrape {row['first_s']} s, "
            f"next {row['next_s']} s (ratio {row['ratio']}); /healthz during the first "
            f"{row['healthz_during_first_s']} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
