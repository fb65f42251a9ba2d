"""``dnssec-watchdog --check --config`` honours ``probe_workers``: with 2, the zones are shared
between the command's own process and a worker process (watchdog.probe.pool, as the service
shares them), every zone is checked, and the report is the one a single prober gives.

Zones are signed by ldns-signzone with dates around ``AT`` and served by NSD on 127.0.0.1; each
is anchored by its own DS and the "resolver" is a closed loopback port, so nothing leaves
loopback. Verdicts are derived from the signing dates, not from the command's output.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import NsdServer, SignedZone, make_signed_zone, missing_binaries

from watchdog.cli import main
from watchdog.probe.pool import share

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
AT = "2030-01-01T00:00:00Z"
HOUR, DAY = 3600, 86400
CLOSED = "127.0.0.1:9"  # nothing listens: a resolver that can never be asked anything
# (inception, expiration) relative to NOW, and the verdict they must give at NOW.
_STATES = {
    "ok": ((NOW - DAY, NOW + 13 * DAY), "ok"),
    "warning": ((NOW - 13 * DAY, NOW + DAY), "warning"),
    "strict": ((NOW - 14 * DAY, NOW - HOUR), "strict_fail"),
    "skew": ((NOW - 16 * DAY, NOW - 2 * DAY), "skew_exhausted"),
}
_NAMES = [f"w{i}-{state}.test." for i in range(3) for state in _STATES]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[SignedZone]]]:
    """NSD serving twelve zones, three in each state; (server address, zones)."""
    missing = missing_binaries(("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds"))
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI: not installed: {', '.join(missing)}")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (sh tests/install-debian-deps.sh)")
    work = tmp_path_factory.mktemp("check-workers")
    zones = []
    for name in _NAMES:
        (inception, expiration), _ = _STATES[name.split("-")[1].split(".")[0]]
        zones.append(make_signed_zone(work, name, inception=inception, expiration=expiration))
    with NsdServer(work / "nsd", zones) as nsd:
        yield f"{nsd.address}:{nsd.port}", zones


def write_config(path: Path, server: str, zones: list[SignedZone], workers: int) -> Path:
    lines = ["[watchdog]", f'resolver = "{CLOSED}"', f"probe_workers = {workers}", ""]
    for zone in zones:
        lines += [
            "[[zone]]",
            f'name = "{zone.origin}"',
            f'servers = ["{server}"]',
            f'trust_anchor = "{zone.ds[0]}"',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def test_the_zones_fall_in_both_shares() -> None:
    """Some zones are the command's own to probe, some the worker's (guards the test below)."""
    assert {share(name, 2, local_weight=1.0) for name in _NAMES} == {0, 1}


def test_two_probe_workers_check_every_zone_with_the_same_report(
    served: tuple[str, list[SignedZone]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """probe_workers = 2: a worker process is started, every zone comes back with the verdict
    its dates give, and the JSON, text and Nagios reports equal those of probe_workers = 1."""
    server, zones = served
    started: list[tuple[Any, ...]] = []
    real_exec = asyncio.create_subprocess_exec

    async def recording_exec(*argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        started.append(argv)  # a record of what the pool starts; the real thing runs
        return await real_exec(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording_exec)

    def check(workers: int, *output: str) -> tuple[int, str, str]:
        config = write_config(tmp_path / f"w{workers}.toml", server, zones, workers)
        code = main(["--check", "--config", str(config), "--at", AT, *output])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    one = {fmt: check(1, *fmt) for fmt in [("--json",), (), ("--nagios",)]}
    assert started == []
    two = {fmt: check(2, *fmt) for fmt in [("--json",), (), ("--nagios",)]}
    assert len(started) == 3 and all("watchdog.probe.worker" in argv for argv in started)

    documents = []
    for code, out, err in (one[("--json",)], two[("--json",)]):
        assert (code, err) == (2, "")
        document: dict[str, Any] = json.loads(out)
        document.pop("fetched_at")  # the wall clock of each run
        documents.append(document)
    assert documents[0] == documents[1]
    verdicts = {z["name"]: z["severity"] for z in documents[1]["zones"]}
    assert verdicts == {name: _STATES[name.split("-")[1].split(".")[0]][1] for name in _NAMES}
    assert two[()] == one[()]
    assert two[("--nagios",)] == one[("--nagios",)]
