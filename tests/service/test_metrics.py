"""The collector and the listener's pages, scraped over a real loopback socket and parsed with
prometheus_client's parser; the README's metric table kept in step with the code."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from watchdog import __version__
from watchdog.engine.findings import Finding, Severity
from watchdog.service.endpoints import service_routes
from watchdog.service.http import HttpServer
from watchdog.service.metrics import METRICS
from watchdog.service.snapshot import OutboxState, ServerState, Snapshot, ZoneState

README = Path(__file__).resolve().parents[2] / "README.md"
T = 1_900_000_000


def zone(name: str, *, deadlines: bool = True, severity: str = "ok") -> ZoneState:
    return ZoneState(
        zone=name,
        severity=severity,
        checked_at=T,
        warning_at=T + 100 if deadlines else None,
        strict_fail_at=T + 200 if deadlines else None,
        skew_exhausted_at=T + 300 if deadlines else None,
        servers=(
            ServerState("127.0.0.1:53", "ns1.example.", True, 2026120301, severity),
            ServerState("[::1]:53", None, False, None, "unreachable"),
        ),
        findings=(
            Finding("timeout", Severity.UNREACHABLE, "no answer", server="[::1]:53"),
            Finding("timeout", Severity.UNREACHABLE, "no answer again", server="[::1]:53"),
            Finding("signature_expiring", Severity.WARNING, "soon"),
        ),
    )


@dataclass
class Verdict:
    healthy: bool
    reasons: tuple[str, ...] = ()


@contextlib.asynccontextmanager
async def listener(snapshot: Snapshot, verdict: Verdict) -> AsyncIterator[int]:
    routes = service_routes(snapshot, lambda: verdict, lambda: {"scheduler": 2})
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        HttpServer(routes, "127.0.0.1", 0).serve(lambda h, p: bound.set_result(p))
    )
    try:
        yield await asyncio.wait_for(bound, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get(port: int, path: str, accept: str = "") -> tuple[int, dict[str, str], str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Accept: {accept}\r\n" if accept else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode()


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


async def test_scrape_shows_each_zone_and_nothing_of_removed_ones() -> None:
    """A scrape shows each zone's samples; after keep_only, a removed zone has none left."""
    snapshot = Snapshot(version=__version__, webhooks=("ops",))
    snapshot.checked(zone("a.test.", severity="warning"))
    snapshot.checked(zone("b.test.", deadlines=False, severity="unknown"))
    async with listener(snapshot, Verdict(True)) as port:
        status, headers, body = await get(port, "/metrics")
        snapshot.keep_only(["b.test."])
        _, _, after = await get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    got = samples(body)
    strict = got["dnssec_watchdog_zone_strict_fail_timestamp_seconds"]
    assert strict == {(("zone", "a.test."),): T + 200}  # b.test. has no deadline: no sample
    severity = got["dnssec_watchdog_zone_severity"]
    assert severity[(("severity", "warning"), ("zone", "a.test."))] == 1.0
    assert sum(v for k, v in severity.items() if ("zone", "a.test.") in k) == 1.0
    assert len([k for k in severity if ("zone", "a.test.") in k]) == len(Severity)
    up = got["dnssec_watchdog_server_up"]
    assert up[(("server", "127.0.0.1:53"), ("zone", "a.test."))] == 1.0
    assert up[(("server", "[::1]:53"), ("zone", "a.test."))] == 0.0
    serial = got["dnssec_watchdog_server_serial"]
    assert serial == {
        (("server", "127.0.0.1:53"), ("zone", z)): 2026120301.0 for z in ("a.test.", "b.test.")
    }
    findings = got["dnssec_watchdog_findings"]
    assert findings[(("code", "timeout"), ("severity", "unreachable"), ("zone", "a.test."))] == 2
    assert got["dnssec_watchdog_build_info"] == {(("version", __version__),): 1.0}
    assert got["dnssec_watchdog_task_restarts_total"] == {(("task", "scheduler"),): 2.0}
    assert got["dnssec_watchdog_checks_total"][(("result", "success"),)] == 2.0
    gone = samples(after)
    for name in ("dnssec_watchdog_zone_severity", "dnssec_watchdog_server_up"):
        assert all(("zone", "a.test.") not in k for k in gone[name]), name
    assert "dnssec_watchdog_zone_strict_fail_timestamp_seconds" not in gone


async def test_service_counters_outbox_and_histogram() -> None:
    """Checks, deliveries, outbox and the duration histogram show what the service counted."""
    snapshot = Snapshot(version="1.2.3", webhooks=("ops", "slack"))
    snapshot.failed(3)
    for seconds in (0.05, 0.3, 700.0):
        snapshot.observe_duration(seconds)
    snapshot.deliveries["ops", "sent"] += 4
    snapshot.deliveries["ops", "gave_up"] += 1
    snapshot.outbox["ops"] = OutboxState(2, 1000.0)
    async with listener(snapshot, Verdict(True)) as port:
        _, _, body = await get(port, "/metrics")
    got = samples(body)
    assert got["dnssec_watchdog_checks_total"] == {
        (("result", "success"),): 0.0,
        (("result", "failure"),): 3.0,
    }
    deliveries = got["dnssec_watchdog_deliveries_total"]
    assert deliveries[(("result", "sent"), ("webhook", "ops"))] == 4
    assert deliveries[(("result", "gave_up"), ("webhook", "ops"))] == 1
    assert deliveries[(("result", "failed"), ("webhook", "slack"))] == 0  # known, never used
    assert got["dnssec_watchdog_outbox_pending"] == {
        (("webhook", "ops"),): 2.0,
        (("webhook", "slack"),): 0.0,
    }
    (age,) = got["dnssec_watchdog_outbox_oldest_age_seconds"].items()
    assert age[0] == (("webhook", "ops"),)  # slack has nothing pending: no age sample
    assert age[1] > 1_700_000_000  # now - 1000
    buckets = got["dnssec_watchdog_check_duration_seconds_bucket"]
    assert buckets[(("le", "0.1"),)] == 1
    assert buckets[(("le", "0.5"),)] == 2
    assert buckets[(("le", "600.0"),)] == 2
    assert buckets[(("le", "+Inf"),)] == 3
    assert got["dnssec_watchdog_check_duration_seconds_count"] == {(): 3.0}
    assert got["dnssec_watchdog_check_duration_seconds_sum"] == {(): 700.35}


async def test_openmetrics_when_asked() -> None:
    """A scraper asking for OpenMetrics gets it, parseable by the OpenMetrics parser."""
    snapshot = Snapshot(version="1.2.3")
    snapshot.checked(zone("a.test."))
    async with listener(snapshot, Verdict(True)) as port:
        status, headers, body = await get(
            port, "/metrics", accept="application/openmetrics-text; version=1.0.0"
        )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    names = {s.name for f in openmetrics_families(body) for s in f.samples}
    assert "dnssec_watchdog_zone_strict_fail_timestamp_seconds" in names
    assert "dnssec_watchdog_checks_total" in names
    assert body.count("# EOF") == 1 and body.endswith("# EOF\n")


async def test_a_zone_checked_after_a_scrape_shows_in_the_next() -> None:
    """The rendered zone part is reused only while no zone changed."""
    snapshot = Snapshot(version="x")
    snapshot.checked(zone("a.test."))
    async with listener(snapshot, Verdict(True)) as port:
        first = samples((await get(port, "/metrics"))[2])
        again = samples((await get(port, "/metrics"))[2])
        snapshot.checked(zone("b.test.", severity="bogus"))
        after = samples((await get(port, "/metrics"))[2])
    name = "dnssec_watchdog_zone_last_check_timestamp_seconds"
    assert first[name] == again[name] == {(("zone", "a.test."),): T}
    assert set(after[name]) == {(("zone", "a.test."),), (("zone", "b.test."),)}
    assert after["dnssec_watchdog_checks_total"][(("result", "success"),)] == 2


async def test_healthz_follows_the_health_verdict() -> None:
    """/healthz is 200 "ok" while healthy and 503 with one reason a line when not."""
    verdict = Verdict(True)
    async with listener(Snapshot(version="x"), verdict) as port:
        healthy = await get(port, "/healthz")
        verdict.healthy = False
        verdict.reasons = ("scheduler: no progress for 75 s (allowed 60 s)", "zones: late")
        sick = await get(port, "/healthz")
        verdict.healthy, verdict.reasons = True, ()
        again = await get(port, "/healthz")
    assert healthy[0] == 200 and healthy[2] == "ok\n"
    assert sick[0] == 503
    assert sick[2] == "scheduler: no progress for 75 s (allowed 60 s)\nzones: late\n"
    assert again[0] == 200


async def test_a_large_scrape_is_rendered_and_parsed() -> None:
    """10,000 zones render in one scrape that parses whole (the loop serves others meanwhile)."""
    snapshot = Snapshot(version="x")
    for i in range(10_000):
        snapshot.checked(zone(f"z{i}.test."))
    async with listener(snapshot, Verdict(True)) as port:
        scrape = asyncio.create_task(get(port, "/metrics"))
        health = await get(port, "/healthz")
        status, _, body = await scrape
    assert health[0] == 200
    assert status == 200
    strict = samples(body)["dnssec_watchdog_zone_strict_fail_timestamp_seconds"]
    assert len(strict) == 10_000


def test_readme_lists_exactly_the_exported_metrics() -> None:
    """The README's metrics table names each metric with its labels, as METRICS does."""
    text = README.read_text()
    section = text[text.index("## Metrics") :]
    section = section[: section.index("\n## ", 4)]
    rows = re.findall(r"^\| `(dnssec_watchdog_\w+)(?:\{([\w,]*)\})?` \|", section, re.MULTILINE)
    documented = {name: tuple(labels.split(",")) if labels else () for name, labels in rows}
    assert documented == METRICS
