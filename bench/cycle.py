"""Cycle throughput: full checks of N zones through the service's own batch path.

Run in a fresh process per N (``python -m bench.cycle``) so its peak RSS is that of N zones.
It writes a TOML config (servers, trust anchor or the parent's DS through the loopback
Unbound), loads it with the service's loader, and drives ``Service._check`` over every zone,
as the scheduler does for the first batch: Prober.probe_each, assess_zone, the alert
transition, the JSON log line per zone and one SQLite commit per chunk of zones, with the
collector thresholds run_service sets. Prints one JSON object with wall, CPU, RSS, queries
and public-key operations per cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from watchdog import dnsio
from watchdog import service as service_module
from watchdog.config import load_config
from watchdog.logsetup import Redactor, configure_logging
from watchdog.probe import Prober
from watchdog.service import Service
from watchdog.store import Store

from .gen import SERVERS, ensure_zones
from .servers import PORT, RESOLVER

__all__ = ["main", "memory", "write_config"]

_CYCLE_TIMEOUT = 600.0


def write_config(
    path: Path,
    names: list[str],
    anchors: list[str] | None,
    state: Path,
    *,
    interval: str = "15m",
    jitter: str = "30s",
    extra: str = "",
) -> None:
    """A service config for ``names``: both servers each; anchors, or the parent via Unbound."""
    servers = ", ".join(f'"{s}:{PORT}"' for s in SERVERS)
    lines = [
        "[watchdog]",
        f'state_path = "{state}"',
        f'interval = "{interval}"',
        f'jitter = "{jitter}"',
        f'resolver = "{RESOLVER}:{PORT}"',
        'log_format = "json"',
        extra,
    ]
    for i, name in enumerate(names):
        lines += ["[[zone]]", f'name = "{name}"', f"servers = [{servers}]"]
        if anchors is not None:
            lines.append(f'trust_anchor = "{anchors[i].strip()}"')
    path.write_text("\n".join(lines) + "\n")


def memory() -> dict[str, float]:
    """This process's resident set now and at its peak, in MB (Linux /proc)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


class _GcClock:
    """Seconds spent in the cyclic garbage collector (gc.callbacks), and collections per
    generation: with hundreds of thousands of live objects a full collection is not free."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


class _QueryCounter:
    """Counts the datagrams and TCP queries dnsio sends (wraps its module-level senders)."""

    def __init__(self) -> None:
        self.udp = 0
        self.tcp = 0
        udp, tcp = dnsio._udp, dnsio._tcp

        async def counted_udp(*args: Any) -> bytes:
            self.udp += 1
            return await udp(*args)

        async def counted_tcp(*args: Any) -> bytes:
            self.tcp += 1
            return await tcp(*args)

        dnsio._udp = counted_udp  # type: ignore[assignment]
        dnsio._tcp = counted_tcp  # type: ignore[assignment]

    @property
    def total(self) -> int:
        return self.udp + self.tcp


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.cache)  # resolved by main()
    zones = ensure_zones(cache, args.zones)
    work = cache / "run" / f"cycle-{args.zones}-{args.mode}"
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state.sqlite3"
    for stale in work.glob("state.sqlite3*"):
        stale.unlink()
    names = zones.names(args.zones)
    anchors = [zones.anchor(i) for i in range(len(names))] if args.mode == "anchor" else None
    config_path = work / "config.toml"
    write_config(config_path, names, anchors, state)
    started = time.perf_counter()
    config = load_config(config_path)
    load_seconds = time.perf_counter() - started
    redactor = Redactor()
    log_file = (work / "service.log").open("w")
    # As the service logs under systemd: one JSON line per event, here into a file.
    configure_logging("json", redactor, stream=log_file)
    counter = _QueryCounter()
    gc_clock = _GcClock()
    cycles = []
    with Store(state) as store:
        service = Service(config, store, redactor=redactor)
        async with Prober(config.service.probe_settings()) as prober:
            service._prober = prober
            service._load_zones(config)
            if args.gc == "service":
                service_module._tune_gc()  # as run_service does at start
            for n in range(args.cycles):
                sent, tcp, verified = counter.total, counter.tcp, prober.verifier.verified
                gc_seconds, gc_full = gc_clock.seconds, gc_clock.collections[2]
                profiler = cProfile.Profile() if args.profile and n == args.profile - 1 else None
                wall, times = time.perf_counter(), os.times()
                if profiler is not None:
                    profiler.enable()
                async with asyncio.timeout(_CYCLE_TIMEOUT):
                    await service._check(names)
                if profiler is not None:
                    profiler.disable()
                wall, after = time.perf_counter() - wall, os.times()
                user, system = after.user - times.user, after.system - times.system
                severities = Counter(z.severity for z in service.zones.values())
                cycles.append(
                    {
                        "cycle": n + 1,
                        "wall_s": round(wall, 3),
                        "cpu_s": round(user + system, 3),
                        "user_s": round(user, 3),
                        "sys_s": round(system, 3),
                        "zones_per_s": round(len(names) / wall, 1),
                        "queries": counter.total - sent,
                        "tcp_queries": counter.tcp - tcp,
                        "signature_checks": prober.verifier.verified - verified,
                        "gc_s": round(gc_clock.seconds - gc_seconds, 3),
                        "gc_full_collections": gc_clock.collections[2] - gc_full,
                        "severities": dict(severities),
                        **memory(),
                    }
                )
                if profiler is not None:
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
                    (work / f"profile-cycle{n + 1}.txt").write_text(out.getvalue())
                    profiler.dump_stats(work / f"profile-cycle{n + 1}.pstats")
    log_file.close()
    return {
        "zones": len(names),
        "mode": args.mode,
        "gc": args.gc,
        "config_load_s": round(load_seconds, 3),
        "cycles": cycles,
        "work": str(work),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cycle")
    parser.add_argument("--cache", default=str(Path(__file__).parent / ".cache"))
    parser.add_argument("--zones", type=int, required=True)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--mode", choices=("anchor", "parent"), default="anchor")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this cycle (1-based)")
    parser.add_argument(
        "--gc",
        choices=("service", "cpython"),
        default="service",
        help="service: the collector thresholds run_service sets (the default); cpython: "
        "CPython's own defaults, to size what that setting saves",
    )
    args = parser.parse_args(argv)
    args.cache = str(Path(args.cache).resolve())
    result = asyncio.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
