"""One-shot ``dnssec-watchdog --check --config`` over N zones, with probe_workers = 1 and 2.

The same N generated zones (bench.gen: both servers, each zone's DS as its trust anchor, the
bench resolver), two configs that differ only in ``probe_workers``; the commands run in turns
(1, 2, 1, 2, ...) so that both see the same machine load, and the median of each is compared
(the goal of issue 15: 2 probers take <= 0.65 of the time of 1). Needs the bench servers
running; ``bench.main`` runs it inside them, ``python -m bench.checkconfig`` starts its own
(as root: port 53 of 127.0.53.x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .cycle import write_config
from .gen import SERVERS, ZoneSet, ensure_zones

__all__ = ["TARGET_RATIO", "markdown", "measure"]

TARGET_RATIO = 0.65  # issue 15
_TIMEOUT = 600.0


def _timed(command: list[str]) -> tuple[float, int, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    if not done.stdout.startswith("{"):
        raise RuntimeError(f"--check --config exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done.returncode, json.loads(done.stdout)


def measure(
    python: Path, zones: ZoneSet, work: Path, count: int = 1000, runs: int = 3
) -> dict[str, Any]:
    """Wall times of ``--check --config`` of ``count`` zones with 1 and 2 probers."""
    work.mkdir(parents=True, exist_ok=True)
    names = zones.names(count)
    anchors = [zones.anchor(i) for i in range(len(names))]
    commands = {}
    for workers in (1, 2):
        config = work / f"check-{workers}.toml"
        write_config(
            config, names, anchors, work / "unused.sqlite3", extra=f"probe_workers = {workers}"
        )
        commands[workers] = [
            str(python.parent / "dnssec-watchdog"), "--check", "--config", str(config), "--json"
        ]  # fmt: skip
    _timed(commands[1])  # caches warm (page cache, __pycache__, NSD), untimed
    samples: dict[int, list[float]] = {1: [], 2: []}
    verdicts: dict[int, dict[str, str]] = {}
    for _ in range(runs):
        for workers, command in commands.items():
            seconds, _, document = _timed(command)
            samples[workers].append(seconds)
            verdicts[workers] = {z["name"]: z["severity"] for z in document["zones"]}
    one, two = (statistics.median(samples[w]) for w in (1, 2))
    return {
        "zones": len(names),
        "servers": len(SERVERS),
        "runs": runs,
        "workers_1_s": [round(s, 3) for s in samples[1]],
        "workers_2_s": [round(s, 3) for s in samples[2]],
        "median_1_s": round(one, 3),
        "median_2_s": round(two, 3),
        "ratio": round(two / one, 3),
        "target_ratio": TARGET_RATIO,
        "same_verdicts": verdicts[1] == verdicts[2],
        "zones_checked": {w: len(v) for w, v in verdicts.items()},
        "severities": {s: list(verdicts[2].values()).count(s) for s in set(verdicts[2].values())},
    }


def text(r: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (
        f"  {r['zones']:,} zones: probe_workers=1 {r['median_1_s']:.2f} s, probe_workers=2 "
        f"{r['median_2_s']:.2f} s: {r['ratio']:.2f}x (goal <= {TARGET_RATIO}); same verdicts: "
        f"{r['same_verdicts']}; zones checked {r['zones_checked']}"
    )


def markdown(r: dict[str, Any]) -> list[str]:
    """The section's lines for BENCHMARKS.md."""
    return [
        f"### `--check --config` of {r['zones']:,} zones (both servers, a DS anchor each), "
        f"probe_workers 1 and 2 (in turns, medians of {r['runs']})",
        "",
        "| probe_workers | median s | runs s | ratio to 1 (goal <= 0.65) |",
        "|---|---|---|---|",
        f"| 1 | {r['median_1_s']:.2f} | {', '.join(f'{s:.2f}' for s in r['workers_1_s'])} | |",
        f"| 2 | {r['median_2_s']:.2f} | {', '.join(f'{s:.2f}' for s in r['workers_2_s'])} "
        f"| {r['ratio']:.2f}x |",
        "",
        f"Same verdict for every zone with 1 and 2: {r['same_verdicts']} ({r['severities']}).",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    from .servers import RESOLVER, BenchNsd, BenchUnbound, port_53_free

    parser = argparse.ArgumentParser(prog="python -m bench.checkconfig")
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", default=str(Path(__file__).parent / ".cache"))
    args = parser.parse_args(argv)
    cache = Path(args.cache).resolve()
    zones = ensure_zones(cache, args.zones)
    busy = [a for a in (*SERVERS, RESOLVER) if not port_53_free(a)]
    if busy:
        raise SystemExit(f"port 53 is taken on {', '.join(busy)}: stop what serves there first")
    with (
        BenchNsd(cache / "run" / "nsd", zones, args.zones),
        BenchUnbound(cache / "run" / "unbound"),
    ):
        result = measure(
            Path(sys.executable), zones, cache / "run" / "checkconfig", args.zones, args.runs
        )
    print(text(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
