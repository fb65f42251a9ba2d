"""Probe workers (probe_workers > 1): zones shared among the service process and child
processes, against a real authoritative server on 127.0.0.1.

The pool is checked against what the zones were signed with (each zone's own expiration), not
against the in-process prober's output; the worker processes are real (``python -m
watchdog.probe.worker``) and are killed for real to see that no zone is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import pytest
from service_harness import (
    DAY,
    HOUR,
    ServiceProcess,
    SignedZone,
    UdpSink,
    ZoneServer,
    signed,
    wait_until,
    write_config,
)
from targets import zone_target

from watchdog.config.targets import ProbeSettings, ZoneTarget
from watchdog.engine.assess import assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.observations import ZoneObservation
from watchdog.probe.pool import LOCAL_WEIGHT, ProbePool, ProbeWorkerError, share

# Two probers: names of share 0 (this process) and of share 1 (the child), chosen by the
# pool's own rule and checked below, so both kinds are always exercised.
_NAMES = [f"w{i}.test." for i in range(12)]
_HERE = [n for n in _NAMES if share(n, 2) == 0][:2]
_THERE = [n for n in _NAMES if share(n, 2) == 1][:2]
_WAIT = 30.0  # seconds any one step may take on a loaded machine


def expiration(zone: SignedZone) -> int:
    """The SOA RRSIG's expiration, read from the signed zone itself."""
    node = zone.zone.find_node("@")
    rrsigs = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.SOA)
    (value,) = {r.expiration for r in rrsigs}
    return int(value)


def target(zone: str, port: int) -> ZoneTarget:
    return zone_target(zone, servers=(f"127.0.0.1:{port}",))


def settings(port: int, timeout: float = 2.0) -> ProbeSettings:
    # The resolver is the zone server too: nothing can leave loopback.
    return ProbeSettings(timeout=timeout, retries=1, resolver=("127.0.0.1", port))


async def collect(pool: ProbePool, targets: Sequence[ZoneTarget]) -> dict[int, ZoneObservation]:
    found: dict[int, ZoneObservation] = {}
    async with asyncio.timeout(_WAIT):
        async with contextlib.aclosing(pool.probe_each(targets)) as done:
            async for index, observation in done:
                assert index not in found, f"zone {index} came back twice"
                found[index] = observation
    return found


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended: no such process, or a zombie (an orphan whose new parent
    has not reaped it yet; in a container PID 1 may never)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_the_names_cover_both_shares() -> None:
    assert len(_HERE) == 2 and len(_THERE) == 2


@pytest.mark.parametrize("probers", [2, 3, 4, 8])
def test_shares_are_stable_in_range_and_weighted(probers: int) -> None:
    """Every name has one prober, always the same; the service process gets LOCAL_WEIGHT of a
    worker's share and the workers equal ones (10,000 names, within 2 points)."""
    names = [f"z{i:05d}.example." for i in range(10_000)]
    shares = [share(n, probers) for n in names]
    assert shares == [share(n, probers) for n in names]
    assert set(shares) == set(range(probers))
    total = probers - 1 + LOCAL_WEIGHT
    for number in range(probers):
        expected = (LOCAL_WEIGHT if number == 0 else 1.0) / total
        assert abs(shares.count(number) / len(names) - expected) < 0.02, number


async def test_every_zone_comes_back_once_with_its_own_deadline() -> None:
    """Zones of both shares, signed to expire at different times: each observation belongs to
    its index and gives that zone's own deadline (its expiration + 1)."""
    zones = [signed(name, expires_in=(i + 2) * DAY) for i, name in enumerate(_HERE + _THERE)]
    with ZoneServer(zones) as server:
        targets = [
            zone_target(z.name, (f"127.0.0.1:{server.port}",), "\n".join(z.anchor)) for z in zones
        ]
        async with ProbePool(settings(server.port), 2) as pool:
            (child,) = pool.pids
            found = await collect(pool, targets)
            again = await collect(pool, targets)  # a second cycle through the same workers
            assert pool.pids == [child]
    assert sorted(found) == sorted(again) == list(range(len(zones)))
    now = int(time.time())
    for index, zone in enumerate(zones):
        for observation in (found[index], again[index]):
            assert observation.zone == zone.name
            report = assess_zone(observation, now)
            assert report.severity is Severity.OK, report.findings
            assert report.deadlines is not None
            assert report.deadlines.strict_fail_at == expiration(zone) + 1
    assert gone(child), "the worker outlived its pool"


async def test_a_killed_worker_fails_its_zones_and_is_started_again() -> None:
    """A worker killed mid-batch (as by the OOM killer) fails the batch with
    ProbeWorkerError, not silently; the next batch gets a new worker and every zone."""
    zones = [signed(name, expires_in=5 * DAY) for name in _THERE]
    with ZoneServer(zones) as server, UdpSink() as silent:
        async with ProbePool(settings(server.port, timeout=5.0), 2) as pool:
            (first,) = pool.pids
            # A server that never answers keeps the child busy for 10 s (5 s x 2 attempts).
            slow = [target(_THERE[0], silent.port)]

            async def drain() -> None:
                async with contextlib.aclosing(pool.probe_each(slow)) as done:
                    async for _ in done:
                        raise AssertionError("a zone of the killed worker came back")

            batch = asyncio.create_task(drain())
            await asyncio.to_thread(
                wait_until,
                lambda: silent.received() > 0,  # the child's question is out
                deadline=time.time() + _WAIT,
                what="the worker's question to the silent server",
            )
            os.kill(first, signal.SIGKILL)
            with pytest.raises(ProbeWorkerError, match="ended"):
                async with asyncio.timeout(_WAIT):
                    await batch
            found = await collect(pool, [target(z.name, server.port) for z in zones])
            (second,) = pool.pids
    assert second != first
    assert sorted(found) == [0, 1]
    assert all(o.servers and o.servers[0].reachable for o in found.values())


async def test_leaving_a_batch_early_drops_its_queued_zones() -> None:
    """A caller that stops reading (a shutdown) is not answered later with stale zones, and
    the pool goes on serving new batches."""
    zones = [signed(name, expires_in=5 * DAY) for name in _HERE + _THERE]
    with ZoneServer(zones) as server:
        targets = [target(z.name, server.port) for z in zones]
        async with ProbePool(settings(server.port), 2) as pool:
            async with asyncio.timeout(_WAIT):
                async with contextlib.aclosing(pool.probe_each(targets * 50)) as done:
                    async for _ in done:
                        break
            found = await collect(pool, targets)
    assert sorted(found) == [0, 1, 2, 3]
    assert [found[i].zone for i in range(4)] == [z.name for z in zones]


def test_the_service_with_workers_checks_every_zone_and_ends_its_workers(
    tmp_path: Path,
) -> None:
    """``probe_workers = 2``: the service starts one worker process, zones of both shares are
    judged as signed (warning, ok), a reload keeps the worker (and says a restart is needed to
    change it), and SIGTERM ends the worker with the service."""
    zones = [
        signed(_HERE[0], expires_in=12 * HOUR),
        signed(_HERE[1], expires_in=5 * DAY),
        signed(_THERE[0], expires_in=12 * HOUR),
        signed(_THERE[1], expires_in=5 * DAY),
    ]
    expected = dict(zip([z.name for z in zones], ["warning", "ok", "warning", "ok"], strict=True))
    with ZoneServer(zones) as server:
        config = write_config(tmp_path, server.port, zones, settings={"probe_workers": 2})
        with ServiceProcess(config) as service:
            for name, severity in expected.items():
                service.wait_for_log("zone_checked", zone=name, severity=severity, timeout=_WAIT)
            children = service.children()
            assert len(children) == 1
            (worker,) = children
            cmdline = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
            assert b"watchdog.probe.worker" in cmdline
            # A reload cannot change the probers: it says so, and the worker stays.
            write_config(tmp_path, server.port, zones, settings={"probe_workers": 3})
            service.send(signal.SIGHUP)
            warned = service.wait_for_log("restart_needed", timeout=_WAIT)
            assert warned["keys"] == ["watchdog.probe_workers"]
            service.wait_for_log("config_reloaded", timeout=_WAIT)
            assert service.children() == [worker]
            assert service.stop() == 0
            assert service.events("check_failed") == []
    deadline = time.monotonic() + 10
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(worker), "the worker outlived the service"


def test_a_killed_service_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGKILL of the service (a crash, the OOM killer): its worker sees its stdin close and
    ends by itself; nothing is left running."""
    zones = [signed(_HERE[0], expires_in=5 * DAY), signed(_THERE[0], expires_in=5 * DAY)]
    with ZoneServer(zones) as server:
        config = write_config(tmp_path, server.port, zones, settings={"probe_workers": 2})
        with ServiceProcess(config) as service:
            for zone in zones:
                service.wait_for_log("zone_checked", zone=zone.name, severity="ok", timeout=_WAIT)
            (worker,) = service.children()
            assert service.kill() == -signal.SIGKILL
    wait_until(lambda: gone(worker), deadline=time.time() + 10, what="the orphaned worker to end")


def test_an_equal_local_weight_gives_equal_shares() -> None:
    """local_weight = 1 (--check, which judges nothing while it probes): both probers take
    half of 10,000 names, within 2 points, each name always the same one."""
    names = [f"z{i:05d}.example." for i in range(10_000)]
    shares = [share(n, 2, local_weight=1.0) for n in names]
    assert shares == [share(n, 2, local_weight=1.0) for n in names]
    assert abs(shares.count(0) / len(names) - 0.5) < 0.02
