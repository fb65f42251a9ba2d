"""Config loading at scale: ``dnssec-watchdog --validate-config`` of an N-zone config.

Each zone has two servers and an inline DS (made up: loading checks its syntax, not a key), as
a large deployment's config does. Timed as a subprocess, the way systemd's ExecStartPre and an
operator run it, against the same interpreter's bare start (``python -c pass``) and the
command's own floor (a 1-zone config: interpreter, imports, argument parsing). Figures per zone
beyond the bare start (the goal of issue 15: <= 0.15 ms) and beyond the floor. Needs no root,
no server: ``python -m bench.configload [--zones N] [--python PATH ...]``, one JSON line per
interpreter given (so two checkouts compare in one run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .gen import SERVERS, zone_name

__all__ = ["TARGET_MS_PER_ZONE", "markdown", "measure", "write_config"]

TARGET_MS_PER_ZONE = 0.15  # issue 15
_TIMEOUT = 300.0


def write_config(path: Path, zones: int) -> None:
    """An N-zone config: both bench servers and an inline DS (SHA-256, ECDSA) per zone."""
    servers = ", ".join(f'"{s}:53"' for s in SERVERS)
    lines = ["[watchdog]", f'state_path = "{path.parent / "state.sqlite3"}"', ""]
    for i in range(zones):
        name = zone_name(i)
        digest = hashlib.sha256(name.encode()).hexdigest().upper()
        lines += [
            "[[zone]]",
            f'name = "{name}"',
            f"servers = [{servers}]",
            f'trust_anchor = "{name} 3600 IN DS {(i * 7919) % 65535 + 1} 13 2 {digest}"',
        ]
    path.write_text("\n".join(lines) + "\n")


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}... exited {done.returncode}: {done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


def _median(command: list[str], runs: int) -> dict[str, float]:
    """Medians of wall and CPU time: on a busy machine the wall time includes waiting for a
    core, the CPU time is the work done."""
    _timed(command)  # page cache and __pycache__ warm, untimed
    samples = [_timed(command) for _ in range(runs)]
    walls = sorted(w for w, _ in samples)
    return {
        "median_s": round(statistics.median(walls), 4),
        "min_s": round(walls[0], 4),
        "max_s": round(walls[-1], 4),
        "cpu_median_s": round(statistics.median(c for _, c in samples), 4),
    }


def measure(python: Path, work: Path, zones: int = 10_000, runs: int = 5) -> dict[str, Any]:
    """The figures for one interpreter (its venv's dnssec-watchdog): bare start, the 1-zone
    floor and the N-zone load, medians of ``runs`` each, taken in turns."""
    work.mkdir(parents=True, exist_ok=True)
    big, small = work / f"config-{zones}.toml", work / "config-1.toml"
    if not big.exists():
        write_config(big, zones)
    write_config(small, 1)
    command = [str(python.parent / "dnssec-watchdog"), "--validate-config", "--config"]
    bare = _median([str(python), "-c", "pass"], runs * 2)
    floor = _median([*command, str(small)], runs * 2)
    load = _median([*command, str(big)], runs)
    beyond_start = (load["median_s"] - bare["median_s"]) / zones * 1000
    beyond_floor = (load["median_s"] - floor["median_s"]) / (zones - 1) * 1000
    cpu_beyond_start = (load["cpu_median_s"] - bare["cpu_median_s"]) / zones * 1000
    return {
        "python": str(python),
        "zones": zones,
        "runs": runs,
        "interpreter_start": bare,
        "floor_1_zone": floor,
        "load": load,
        "ms_per_zone_beyond_start": round(beyond_start, 4),
        "ms_per_zone_beyond_floor": round(beyond_floor, 4),
        "cpu_ms_per_zone_beyond_start": round(cpu_beyond_start, 4),
        "target_ms_per_zone": TARGET_MS_PER_ZONE,
        "ratio_to_target": round(beyond_start / TARGET_MS_PER_ZONE, 2),
    }


def text(r: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (
        f"  {r['zones']:,} zones: --validate-config {r['load']['median_s']:.3f} s "
        f"(bare start {r['interpreter_start']['median_s']:.3f} s, 1-zone floor "
        f"{r['floor_1_zone']['median_s']:.3f} s): {r['ms_per_zone_beyond_start']:.3f} ms a zone "
        f"beyond the start ({r['ratio_to_target']:.2f}x the {TARGET_MS_PER_ZONE} ms goal), "
        f"{r['ms_per_zone_beyond_floor']:.3f} ms beyond the floor; CPU "
        f"{r['cpu_ms_per_zone_beyond_start']:.3f} ms a zone beyond the start's"
    )


def markdown(r: dict[str, Any]) -> list[str]:
    """The section's lines for BENCHMARKS.md."""
    return [
        f"### Config loading (`--validate-config`, {r['zones']:,} zones, two servers and an "
        f"inline DS each; medians of {r['runs']})",
        "",
        "| | wall s | CPU s | ms a zone (wall) | against the goal (0.15 ms a zone beyond the "
        "start) |",
        "|---|---|---|---|---|",
        f"| bare interpreter start (`python -c pass`) | {r['interpreter_start']['median_s']:.3f} "
        f"| {r['interpreter_start']['cpu_median_s']:.3f} | | |",
        f"| `--validate-config` of a 1-zone config (the floor) "
        f"| {r['floor_1_zone']['median_s']:.3f} | {r['floor_1_zone']['cpu_median_s']:.3f} | | |",
        f"| `--validate-config` of {r['zones']:,} zones | {r['load']['median_s']:.3f} "
        f"| {r['load']['cpu_median_s']:.3f} "
        f"| {r['ms_per_zone_beyond_start']:.3f} beyond the start, "
        f"{r['ms_per_zone_beyond_floor']:.3f} beyond the floor "
        f"(CPU: {r['cpu_ms_per_zone_beyond_start']:.3f} beyond the start's) "
        f"| {r['ratio_to_target']:.2f}x |",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.configload")
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", default=str(Path(__file__).parent / ".cache"))
    parser.add_argument(
        "--python", action="append", help="interpreter(s) to time (default: this one)"
    )
    args = parser.parse_args(argv)
    work = Path(args.cache).resolve() / "run" / "configload"
    for python in args.python or [sys.executable]:
        result = measure(Path(python), work, args.zones, args.runs)
        print(text(result), file=sys.stderr, flush=True)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
