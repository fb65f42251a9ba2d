"""One-shot latency: ``dnssec-watchdog --check ZONE --server ...`` as Nagios runs it.

Wall time over ``runs`` runs (median and spread), then where the time goes: the bare
interpreter start, the imports (``python -X importtime`` of the same command, summed per
top-level package) and a cProfile of the same command (the functions that take longest).
"""

from __future__ import annotations

import io
import pstats
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .gen import SERVERS, ZoneSet

__all__ = ["check_command", "measure"]

_TIMEOUT = 30.0


def check_command(python: Path, zones: ZoneSet, index: int, *extra: str) -> list[str]:
    """The one-shot command for zone ``index`` (the console script next to ``python``): both
    servers, the zone's DS as its trust anchor."""
    return [
        str(python.parent / "dnssec-watchdog"),
        "--check",
        zones.names(index + 1)[index],
        *(arg for server in SERVERS for arg in ("--server", server)),
        "--trust-anchor",
        zones.anchor(index).strip(),
        *extra,
    ]


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    return time.perf_counter() - started, done


def _spread(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_s": round(statistics.median(ordered), 4),
        "min_s": round(ordered[0], 4),
        "p90_s": round(ordered[max(0, int(len(ordered) * 0.9) - 1)], 4),
        "max_s": round(ordered[-1], 4),
        "stdev_s": round(statistics.stdev(ordered), 4) if len(ordered) > 1 else 0.0,
    }


def _imports(python: Path, command: list[str]) -> dict[str, Any]:
    """Sum ``-X importtime`` self times per top-level package for one run of ``command``."""
    done = subprocess.run(
        [str(python), "-X", "importtime", "-m", "watchdog.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    per_package: Counter[str] = Counter()
    total_us = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
        total_us += int(self_us)
        per_package[name.strip().split(".")[0]] += int(self_us)
    return {
        "total_s": round(total_us / 1e6, 4),
        "top": [(name, round(us / 1e6, 4)) for name, us in per_package.most_common(12)],
        "modules": sum(1 for line in done.stderr.splitlines() if line.startswith("import time:")),
    }


def _profile(python: Path, command: list[str], out: Path) -> dict[str, Any]:
    """cProfile the command in a child; the cumulative time of the phases that matter."""
    subprocess.run(
        [str(python), "-m", "cProfile", "-o", str(out), "-m", "watchdog.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    stats = pstats.Stats(str(out))
    phases = {
        ("watchdog/cli.py", "_check"): "whole check",
        ("asyncio/runners.py", "run"): "asyncio.run (network + verification)",
        ("watchdog/assess.py", "assess_zone"): "assess",
        ("watchdog/report.py", "render_text"): "report",
        ("watchdog/cli.py", "_build_parser"): "argument parser",
    }
    found: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, _, cumulative, _) in raw.items():
        for (suffix, name), label in phases.items():
            if function == name and filename.endswith(suffix):
                found[label] = round(found.get(label, 0.0) + cumulative, 4)
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(30)
    out.with_suffix(".txt").write_text(text.getvalue())
    return {"phases_s": found, "total_s": round(stats.total_tt, 4)}  # type: ignore[attr-defined]


def measure(python: Path, zones: ZoneSet, work: Path, runs: int = 20) -> dict[str, Any]:
    """All one-shot figures for zone 0 (ECDSA, NSEC) and zone 2 (RSA, NSEC)."""
    work.mkdir(parents=True, exist_ok=True)
    bare = [_timed([str(python), "-c", "pass"])[0] for _ in range(runs)]
    results: dict[str, Any] = {"interpreter_start": _spread(bare), "runs": runs}
    for index in (0, 2):
        command = check_command(python, zones, index)
        _timed(command)  # warm the page cache and __pycache__ once, untimed
        samples, codes = [], Counter[int]()
        for _ in range(runs):
            seconds, done = _timed(command)
            samples.append(seconds)
            codes[done.returncode] += 1
        results[f"zone{index}"] = {
            "zone": command[2],
            "algorithm": zones.algorithm(index),
            "wall": _spread(samples),
            "exit_codes": dict(codes),
            "imports": _imports(python, command),
            "profile": _profile(python, command, work / f"check-zone{index}.pstats"),
        }
    return results


if __name__ == "__main__":
    sys.exit("run through bench.main")
