"""Cycle throughput: full checks of N zones through the service's own batch path.

Run in a fresh process per N (``python -m bench.cycle``) so its peak RSS is that of N zones.
It writes a TOML config (servers, trust anchor or the parent's DS through the loopback
Unbound), loads it with the service's loader, and drives ``Service.run_cycle`` over every zone,
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
from pathlib import Path
from typing import Any

from watchdog.config.parse import load_config
from watchdog.probe.pool import ProbePool, counts, tune_gc
from watchdog.probe.prober import Prober
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.loop import Service
from watchdog.service.store import Store

from .gen import SERVERS, ensure_zones
from .servers import PORT, RESOLVER

__all__ = ["main", "memory", "memory_text", "write_config"]

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


def memory(pids: list[int] | None = None) -> dict[str, float]:
    """Resident set now and at its peak of this process, in MB (Linux /proc); with worker
    ``pids``, also the sums over this process and its workers (RSS counts the pages they
    share once per process; PSS splits them)."""
    own = _status("self")
    result = {"rss_mb": own["VmRSS"], "peak_rss_mb": own["VmHWM"]}
    if pids:
        result["workers_rss_mb"] = round(sum(_status(str(p))["VmRSS"] for p in pids), 1)
        result["total_rss_mb"] = round(result["rss_mb"] + result["workers_rss_mb"], 1)
        result["total_pss_mb"] = round(sum(_pss(p) for p in ["self", *map(str, pids)]), 1)
    return result


def memory_text(c: dict[str, Any], digits: int = 0) -> str:
    """The RSS of ``memory()``'s figures for a report line; with workers, then the sums over
    all the processes: "86; all 148 (PSS 121)"."""
    text = f"{c['rss_mb']:.{digits}f}"
    if "total_rss_mb" in c:
        text += f"; all {c['total_rss_mb']:.{digits}f} (PSS {c['total_pss_mb']:.{digits}f})"
    return text


def _status(pid: str) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _pss(pid: str) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of this process and the worker ``pids`` so far."""
    times = os.times()
    user, system = times.user, times.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


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


async def _counts(prober: Prober | ProbePool) -> dict[str, int]:
    """Questions sent (UDP, TCP) and public-key operations so far, in whichever process."""
    if isinstance(prober, ProbePool):
        return await prober.stats()
    return counts(prober)


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
    write_config(config_path, names, anchors, state, extra=f"probe_workers = {args.workers}")
    started = time.perf_counter()
    config = load_config(config_path)
    load_seconds = time.perf_counter() - started
    redactor = Redactor()
    log_file = (work / "service.log").open("w")
    # As the service logs under systemd: one JSON line per event, here into a file.
    configure_logging("json", redactor, stream=log_file)
    gc_clock = _GcClock()
    cycles = []
    with Store(state) as store:
        service = Service(config, store, redactor=redactor)
        async with service.probing() as prober:
            if args.gc == "service":
                tune_gc()  # as run_service does at start
            pids = prober.pids if isinstance(prober, ProbePool) else []
            for n in range(args.cycles):
                before = await _counts(prober)
                gc_seconds, gc_full = gc_clock.seconds, gc_clock.collections[2]
                profiler = cProfile.Profile() if args.profile and n == args.profile - 1 else None
                wall, times = time.perf_counter(), _cpu_seconds(pids)
                if profiler is not None:
                    profiler.enable()
                async with asyncio.timeout(_CYCLE_TIMEOUT):
                    await service.run_cycle(names)
                if profiler is not None:
                    profiler.disable()
                wall, after = time.perf_counter() - wall, _cpu_seconds(pids)
                user, system = after[0] - times[0], after[1] - times[1]
                counts = await _counts(prober)
                sent = {k: counts[k] - before[k] for k in counts}
                severities = service.zones.severities()
                cycles.append(
                    {
                        "cycle": n + 1,
                        "wall_s": round(wall, 3),
                        "cpu_s": round(user + system, 3),
                        "user_s": round(user, 3),
                        "sys_s": round(system, 3),
                        "zones_per_s": round(len(names) / wall, 1),
                        "queries": sent["udp"] + sent["tcp"],
                        "tcp_queries": sent["tcp"],
                        "signature_checks": sent["verified"],
                        "gc_s": round(gc_clock.seconds - gc_seconds, 3),
                        "gc_full_collections": gc_clock.collections[2] - gc_full,
                        "severities": dict(severities),
                        **memory(pids),
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
        "workers": args.workers,
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
    parser.add_argument(
        "--workers", type=int, default=1, help="probe_workers of the config (1: in-process)"
    )
    args = parser.parse_args(argv)
    args.cache = str(Path(args.cache).resolve())
    result = asyncio.run(_run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
