"""Side by side with DNSViz on the same zones, servers and parent, on loopback only.

DNSViz (PyPI, in its own venv) runs in recursive mode through the loopback Unbound
(``-s 127.0.53.3``, never ``-A``, which walks from the real root servers), with the parent
``bench.`` as the ceiling (``-a bench.``) and the parent's DNSKEYs as trusted keys for grok.
The watchdog asks both NSD addresses directly and takes the DS through the same Unbound
(``--resolver``), so both judge the chain from the same parent.

Before anything is timed, one DNSViz probe runs under strace: every address it connects or
sends to must be in 127.0.0.0/8, or the comparison stops.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from .gen import PARENT, SERVERS, ZoneSet
from .servers import PORT, RESOLVER

__all__ = ["NetworkLeakError", "dnsviz_bin", "measure"]

_TIMEOUT = 120.0
_ADDRESS = re.compile(r'inet_addr\("([0-9.]+)"\)|inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)"')


class NetworkLeakError(RuntimeError):
    """A peer tried to reach an address outside 127.0.0.0/8."""


def dnsviz_bin(cache: Path) -> Path | None:
    found = cache / "dnsviz-venv" / "bin" / "dnsviz"
    return found if found.exists() else None


def _probe_args(dnsviz: Path, names: list[str], out: Path, threads: int = 1) -> list[str]:
    return [
        str(dnsviz),
        "probe",
        "-4",
        "-s",
        RESOLVER,
        "-a",
        PARENT,
        "-t",
        str(threads),
        "-o",
        str(out),
        *names,
    ]


def _grok_args(dnsviz: Path, anchors: Path, probe: Path, out: Path) -> list[str]:
    return [str(dnsviz), "grok", "-t", str(anchors), "-r", str(probe), "-o", str(out)]


def _run(args: list[str], timeout: float = _TIMEOUT) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} exited {done.returncode}: {done.stderr[-500:]}")
    return time.perf_counter() - started


def verify_loopback_only(args: list[str], trace: Path) -> dict[str, Any]:
    """Run ``args`` under strace; every destination address must be loopback."""
    strace = shutil.which("strace")
    if strace is None:
        raise NetworkLeakError("strace is not installed: cannot prove DNSViz stays on loopback")
    command = [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", str(trace)]
    subprocess.run([*command, *args], capture_output=True, timeout=_TIMEOUT, check=False)
    addresses = set()
    for match in _ADDRESS.finditer(trace.read_text()):
        addresses.add(match.group(1) or match.group(2))
    outside = sorted(a for a in addresses if not a.startswith("127.") and a != "::1")
    if outside:
        raise NetworkLeakError(f"DNSViz tried to reach {', '.join(outside)}")
    return {"destinations": sorted(addresses), "syscalls_traced": str(trace)}


def _dnsviz_verdict(grok: Path, name: str) -> str:
    data = json.loads(grok.read_text())
    zone = data.get(name, {})
    return str(zone.get("delegation", {}).get("status", zone.get("status", "?")))


def measure(
    python: Path, cache: Path, zones: ZoneSet, work: Path, count: int = 100
) -> dict[str, Any]:
    """Per-zone one-shot times of both tools, then one batch of ``count`` zones each."""
    dnsviz = dnsviz_bin(cache)
    if dnsviz is None:
        return {"skipped": "DNSViz is not installed in bench/.cache/dnsviz-venv (run.sh does it)"}
    work.mkdir(parents=True, exist_ok=True)
    names = zones.names(count)
    anchors = work / "trusted-keys"
    anchors.write_text("\n".join(zones.parent_dnskeys) + "\n")
    names_file = work / "names.txt"
    names_file.write_text("\n".join(names) + "\n")
    version = subprocess.run(
        [str(dnsviz.parent / "pip"), "show", "dnsviz"], capture_output=True, text=True, check=False
    ).stdout
    # Proof first (and Unbound's cache warmed for both tools alike).
    network = verify_loopback_only(
        _probe_args(dnsviz, names, work / "warm.json", threads=2), work / "strace.txt"
    )
    watchdog = [str(python.parent / "dnssec-watchdog"), "--check", "-q"]
    watchdog += [arg for server in SERVERS for arg in ("--server", server)]
    watchdog += ["--resolver", f"{RESOLVER}:{PORT}"]
    rows = []
    for name in names:
        probe_s = _run(_probe_args(dnsviz, [name], work / "one.json"))
        grok_s = _run(_grok_args(dnsviz, anchors, work / "one.json", work / "one-grok.json"))
        verdict = _dnsviz_verdict(work / "one-grok.json", name)
        started = time.perf_counter()
        done = subprocess.run([*watchdog, name], capture_output=True, timeout=_TIMEOUT, check=False)
        ours = time.perf_counter() - started
        rows.append(
            {
                "zone": name,
                "dnsviz_s": round(probe_s + grok_s, 4),
                "dnsviz_probe_s": round(probe_s, 4),
                "dnsviz_grok_s": round(grok_s, 4),
                "dnsviz_verdict": verdict,
                "watchdog_s": round(ours, 4),
                "watchdog_exit": done.returncode,
                "ratio": round((probe_s + grok_s) / ours, 2),
            }
        )
    batch_probe = _run(_probe_args(dnsviz, names, work / "batch.json", threads=2), timeout=600)
    batch_grok = _run(
        _grok_args(dnsviz, anchors, work / "batch.json", work / "batch-grok.json"), 600
    )
    started = time.perf_counter()
    done = subprocess.run(
        [*watchdog, "--zones-file", str(names_file)], capture_output=True, timeout=600, check=False
    )
    batch_ours = time.perf_counter() - started
    ratios = [float(r["ratio"]) for r in rows]  # type: ignore[arg-type]
    ours_s = [float(r["watchdog_s"]) for r in rows]  # type: ignore[arg-type]
    theirs_s = [float(r["dnsviz_s"]) for r in rows]  # type: ignore[arg-type]
    return {
        "dnsviz_version": next(
            (
                line.split(":", 1)[1].strip()
                for line in version.splitlines()
                if line.startswith("Version")
            ),
            "?",
        ),
        "zones": len(names),
        "network": network,
        "per_zone": rows,
        "per_zone_summary": {
            "dnsviz_median_s": round(statistics.median(theirs_s), 4),
            "watchdog_median_s": round(statistics.median(ours_s), 4),
            "ratio_median": round(statistics.median(ratios), 2),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "dnsviz_secure": sum(1 for r in rows if r["dnsviz_verdict"] == "SECURE"),
            "watchdog_ok": sum(1 for r in rows if r["watchdog_exit"] == 0),
        },
        "batch": {
            "dnsviz_probe_s": round(batch_probe, 3),
            "dnsviz_grok_s": round(batch_grok, 3),
            "dnsviz_per_zone_s": round((batch_probe + batch_grok) / len(names), 4),
            "watchdog_s": round(batch_ours, 3),
            "watchdog_exit": done.returncode,
            "watchdog_per_zone_s": round(batch_ours / len(names), 4),
            "ratio": round((batch_probe + batch_grok) / batch_ours, 1),
        },
    }
