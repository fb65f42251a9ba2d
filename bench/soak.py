"""Soak: many cycles over many zones, a tenth of them timing out; prints per-cycle figures.

    python -m bench.soak --zones 10000 --cycles 20            # the issue's target
    python -m bench.soak --zones 2000 --cycles 20 --json      # what fits in minutes on 2 cores

The healthy zones are the benchmark's signed zones (bench.gen) on NSD (bench.servers.BenchNsd)
at 127.0.54.1 and 127.0.54.2, port 53, each with its trust anchor; addresses of its own, so a
soak can run beside bench.serve. The timing-out zones point at a
blackhole: UDP sockets on 127.0.0.9 that a child process binds and never reads, so a query is
neither answered nor refused (ICMP port-unreachable would make it a fast connection_refused,
not a timeout). By default each timing-out zone has a blackhole of its own, the worst case: the
prober's "silent server" shortcut (a shared dead server fails the rest of its queue at once)
never helps. Every cycle goes through the service's own batch path, as bench.cycle does:
Service.run_cycle (probe_each, assess_zone, alert transitions, one SQLite commit per chunk).

Per cycle it prints wall time, RSS and open file descriptors of this process, and how many
zones ended in each severity. The budget a cycle must end within is the service's interval
(``--interval``, 900 s by default): a cycle longer than that would make the service fall
behind. Also printed: the share of that budget used, and the lower bound the timing-out zones
alone impose, ceil(dead / max_concurrency) * timeout * (retries + 1), since each holds one of
the max_concurrency query slots for its whole timeout budget. Leaks show as RSS or FDs that
keep growing after the first cycles (caches fill in cycle 1 and 2, then must stay flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from lab.dnsquery import ask

from watchdog.config.parse import load_config
from watchdog.probe import dnsio
from watchdog.probe.pool import ProbePool
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.loop import Service
from watchdog.service.store import Store

from .cycle import memory, memory_text
from .gen import SERVERS, ZoneSet, ensure_zones, zone_name
from .servers import PORT, BenchNsd, port_53_free

__all__ = ["main"]

BLACKHOLE = "127.0.0.9"
# Addresses of our own, so a soak can run while bench.serve or bench.main hold 127.0.53.x.
SOAK_SERVERS = ("127.0.54.1", "127.0.54.2")
_DEAD_DS = "IN DS 12345 13 2 " + "00" * 32  # any well-formed anchor: no resolver is ever asked
_BLACKHOLE_CHILD = """
import json, socket, sys
sockets = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 0))
    sockets.append(s)
print(json.dumps([s.getsockname()[1] for s in sockets]), flush=True)
sys.stdin.read()  # until the parent closes our stdin (or dies)
"""


def _open_fds(pids: list[int]) -> int:
    """Open file descriptors of this process and its probe workers."""
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in ["self", *pids])


def _serving(count: int) -> bool:
    """Whether NSD at SOAK_SERVERS serves the first ``count`` bench zones."""
    try:
        return all(
            ask(
                address, PORT, zone_name(count - 1), "SOA", recursion_desired=False, timeout=1
            ).answer
            for address in SOAK_SERVERS
        )
    except Exception:
        return False


class _SoakNsd(BenchNsd):
    """bench.servers.BenchNsd, listening on SOAK_SERVERS instead."""

    def __init__(self, workdir: Path, zones: ZoneSet, count: int) -> None:
        super().__init__(workdir, zones, count)
        # The readiness check looks for this address's port 53 (it passed by accident while
        # bench.serve held 127.0.53.1, and hung when nothing did).
        self.address = SOAK_SERVERS[0]

    def _prepare(self, port: int) -> list[str]:
        argv = super()._prepare(port)
        config = self.workdir / "nsd.conf"
        text = config.read_text()
        for theirs, ours in zip(SERVERS, SOAK_SERVERS, strict=True):
            text = text.replace(f"ip-address: {theirs}@", f"ip-address: {ours}@")
        config.write_text(text)
        return argv

    def _ready(self) -> bool:
        return _serving(self.count)


def _write_config(
    path: Path, zones: ZoneSet, healthy: int, dead_ports: list[int], dead: int, args: Any
) -> list[str]:
    """The service config: healthy zones on both NSD addresses, dead ones on the blackhole,
    interleaved (every tenth zone dead at 10 %) as real zone lists mix them."""
    lines = [
        "[watchdog]",
        f'state_path = "{path.parent / "state.sqlite3"}"',
        f'interval = "{args.interval}s"',
        'jitter = "0s"',
        f'resolver = "{BLACKHOLE}:{dead_ports[0]}"',
        f"query_timeout = {args.timeout}",
        f"retries = {args.retries}",
        f"max_concurrency = {args.max_concurrency}",
        f"probe_workers = {args.workers}",
        'log_format = "json"',
    ]
    names: list[str] = []
    servers = ", ".join(f'"{s}:{PORT}"' for s in SOAK_SERVERS)
    step = (healthy + dead) / dead if dead else math.inf
    next_dead, h, d = step / 2, 0, 0
    for i in range(healthy + dead):
        if d < dead and i >= next_dead:
            name = f"d{d:05d}.dead.test."
            port = dead_ports[d % len(dead_ports)]
            zone = [f'servers = ["{BLACKHOLE}:{port}"]', f'trust_anchor = "{name} {_DEAD_DS}"']
            d, next_dead = d + 1, next_dead + step
        else:
            name = zone_name(h)
            zone = [f"servers = [{servers}]", f'trust_anchor = "{zones.anchor(h).strip()}"']
            h += 1
        lines += ["[[zone]]", f'name = "{name}"', *zone]
        names.append(name)
    path.write_text("\n".join(lines) + "\n")
    return names


def _prepare(args: argparse.Namespace, zones: ZoneSet, dead_ports: list[int]) -> Path:
    """A fresh work directory with the config; returns the config's path."""
    dead = round(args.zones * args.dead_percent / 100)
    work = Path(args.cache).resolve() / "run" / f"soak-{args.zones}"
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("state.sqlite3*"):
        stale.unlink()
    config_path = work / "config.toml"
    _write_config(config_path, zones, args.zones - dead, dead_ports, dead, args)
    return config_path


async def _soak(args: argparse.Namespace, config_path: Path, log_file: TextIO) -> dict[str, Any]:
    dead = round(args.zones * args.dead_percent / 100)
    config = load_config(config_path)
    names = [zone.name for zone in config.zones]
    redactor = Redactor()
    configure_logging("json", redactor, stream=log_file)
    per_zone = silence = args.timeout * (args.retries + 1)
    dead_bound = math.ceil(dead / args.max_concurrency) * per_zone if dead else 0.0
    cycles = []
    with Store(config.service.state_path) as store:
        service = Service(config, store, redactor=redactor)
        async with service.probing() as prober:
            pids = prober.pids if isinstance(prober, ProbePool) else []
            local = prober._local if isinstance(prober, ProbePool) else prober
            for n in range(args.cycles):
                if n:
                    # Cycles are minutes apart in service; without this pause the prober would
                    # still remember the blackholes as silent and not ask them at all.
                    await asyncio.sleep(silence + 0.5)
                started = time.perf_counter()
                async with asyncio.timeout(args.interval * 2):
                    await service.run_cycle(names)
                wall = time.perf_counter() - started
                severities = service.zones.severities()
                cycle = {
                    "cycle": n + 1,
                    "wall_s": round(wall, 2),
                    "budget_used": round(wall / args.interval, 3),
                    **memory(pids),
                    "fds": _open_fds(pids),
                    # Bounded caches fill over the first cycles (a denial question names a
                    # random label, so its NSEC/NSEC3 answers vary): growth that must level off.
                    # (Of this process's prober: with workers, the local share.)
                    "verified_cache": len(local.verifier._outcomes),
                    "decoded_cache": dnsio._decode.cache_info().currsize,
                    "severities": dict(sorted(severities.items())),
                }
                cycles.append(cycle)
                _report(cycle, args.json)
    return {
        "zones": args.zones,
        "timing_out": dead,
        "blackholes": max(1, args.blackholes or dead),
        "timeout_s": args.timeout,
        "retries": args.retries,
        "max_concurrency": args.max_concurrency,
        "probers": args.workers,
        "budget_s": args.interval,
        "dead_zones_lower_bound_s": dead_bound,
        "cycles": cycles,
        "summary": _summary(cycles, args.interval),
    }


def _report(cycle: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(cycle), flush=True)
        return
    counts = " ".join(f"{k}={v}" for k, v in cycle["severities"].items())
    print(
        f"cycle {cycle['cycle']:>2}  wall {cycle['wall_s']:>7.2f} s  "
        f"({100 * cycle['budget_used']:.1f}% of budget)  rss {memory_text(cycle, 1)} MB  "
        f"fds {cycle['fds']:>4}  verified {cycle['verified_cache']:>6}  {counts}",
        flush=True,
    )


def _summary(cycles: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """Growth after the warm-up (cycle 2 on): what a leak would show."""
    settled = cycles[1:] if len(cycles) > 2 else cycles
    rss = "total_rss_mb" if "total_rss_mb" in settled[0] else "rss_mb"  # with workers: all
    return {
        "all_within_budget": all(c["wall_s"] < budget for c in cycles),
        "max_wall_s": max(c["wall_s"] for c in cycles),
        "rss_mb_from_cycle_2_to_last": [settled[0][rss], settled[-1][rss]],
        "rss_growth_mb_after_warmup": round(settled[-1][rss] - settled[0][rss], 1),
        "fds_min_max": [min(c["fds"] for c in cycles), max(c["fds"] for c in cycles)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cache", default=str(Path(__file__).parent / ".cache"))
    parser.add_argument("--zones", type=int, default=10_000, help="zones in all (10000)")
    parser.add_argument("--dead-percent", type=float, default=10.0, help="timing out (10)")
    parser.add_argument("--blackholes", type=int, default=0,
                        help="distinct silent servers; 0: one per timing-out zone")  # fmt: skip
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=2, help="query_timeout, seconds (2)")
    parser.add_argument("--retries", type=int, default=2, help="retries (2)")
    parser.add_argument("--max-concurrency", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1, help="probe_workers (1)")
    parser.add_argument("--interval", type=int, default=900, help="the cycle budget, s (900)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args(argv)
    dead = round(args.zones * args.dead_percent / 100)
    healthy = args.zones - dead
    zones = ensure_zones(Path(args.cache).resolve(), healthy)
    blackholes = max(1, args.blackholes or dead)
    child = subprocess.Popen(
        [sys.executable, "-c", _BLACKHOLE_CHILD, BLACKHOLE, str(blackholes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        dead_ports = json.loads(child.stdout.readline())
        if not all(port_53_free(a) for a in SOAK_SERVERS):
            print(f"port 53 of {' and '.join(SOAK_SERVERS)} is taken", file=sys.stderr)
            return 1
        nsd: BenchNsd | None = _SoakNsd(
            Path(args.cache).resolve() / "run" / "soak-nsd", zones, healthy
        )
        if nsd is not None:
            nsd.start()
        try:
            config_path = _prepare(args, zones, dead_ports)
            started = time.monotonic()
            with (config_path.parent / "service.log").open("w") as log_file:
                result = asyncio.run(_soak(args, config_path, log_file))
        finally:
            if nsd is not None:
                nsd.stop()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    result["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({k: v for k, v in result.items() if k != "cycles"}, indent=2))
    return 0 if result["summary"]["all_within_budget"] else 2


if __name__ == "__main__":
    sys.exit(main())
