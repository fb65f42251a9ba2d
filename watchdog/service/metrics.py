"""Prometheus metrics: one collector, for the service's ``/metrics`` and ``--check --format
prometheus`` alike.

prometheus_client does the exposition (text format 0.0.4, or OpenMetrics when the scraper asks
for it), so escaping and format details are the ecosystem's, not ours. The collector yields
families built from a ``Frozen`` snapshot at each scrape instead of keeping a registry of live
gauges: 10,000 zones cost nothing between scrapes, and a zone removed from the config has no
sample left behind.

A deadline that does not exist (a zone with no verifying signature, not signed, unreachable)
has no sample: never 0, which an alert on ``time() > deadline`` would read as long past
(the same rule as chrj/prometheus-dnssec-exporter: "with no RRSIG, report nothing rather than a
value derived from the zero time").

The names are a contract (issue 17, README "Metrics"); ``METRICS`` lists them with their
labels, and a test keeps the README table in step with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from watchdog.engine.findings import Severity
from watchdog.service.snapshot import DURATION_BUCKETS, CheckResult, Frozen, ZoneState

__all__ = [
    "METRICS",
    "PREFIX",
    "Encoder",
    "ServiceCollector",
    "WatchdogCollector",
    "ZoneCollector",
    "encoder_for",
    "exposition",
    "join",
    "textfile",
]

PREFIX = "dnssec_watchdog_"
_SEVERITIES = tuple(s.value for s in Severity)
_DELIVERY_RESULTS = ("sent", "failed", "gave_up")
_EOF = b"# EOF\n"

# name (as scraped) -> labels. Zone metrics first: they are all --check --format prometheus prints.
ZONE_METRICS: dict[str, tuple[str, ...]] = {
    "dnssec_watchdog_zone_warning_timestamp_seconds": ("zone",),
    "dnssec_watchdog_zone_strict_fail_timestamp_seconds": ("zone",),
    "dnssec_watchdog_zone_skew_exhausted_timestamp_seconds": ("zone",),
    "dnssec_watchdog_zone_severity": ("zone", "severity"),
    "dnssec_watchdog_zone_last_check_timestamp_seconds": ("zone",),
    "dnssec_watchdog_server_up": ("zone", "server"),
    "dnssec_watchdog_server_serial": ("zone", "server"),
    "dnssec_watchdog_findings": ("zone", "code", "severity"),
}
SERVICE_METRICS: dict[str, tuple[str, ...]] = {
    "dnssec_watchdog_checks_total": ("result",),
    "dnssec_watchdog_check_duration_seconds": (),
    "dnssec_watchdog_deliveries_total": ("webhook", "result"),
    "dnssec_watchdog_outbox_pending": ("webhook",),
    "dnssec_watchdog_outbox_oldest_age_seconds": ("webhook",),
    "dnssec_watchdog_task_restarts_total": ("task",),
    "dnssec_watchdog_build_info": ("version",),
}
METRICS = {**ZONE_METRICS, **SERVICE_METRICS}


def _gauge(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=ZONE_METRICS[name])


def zone_families(zones: Sequence[ZoneState]) -> Iterator[Metric]:
    """The per-zone families of ``zones``' last verdicts."""
    warning = _gauge(
        f"{PREFIX}zone_warning_timestamp_seconds",
        "When the zone's warning threshold is crossed (Unix time)",
    )
    strict = _gauge(
        f"{PREFIX}zone_strict_fail_timestamp_seconds",
        "First second strict validators (BIND, Knot Resolver, Google) fail (Unix time)",
    )
    skew = _gauge(
        f"{PREFIX}zone_skew_exhausted_timestamp_seconds",
        "First second even Unbound, with its clock-skew allowance, fails (Unix time)",
    )
    severity = _gauge(f"{PREFIX}zone_severity", "1 for the zone's current severity, 0 otherwise")
    checked = _gauge(f"{PREFIX}zone_last_check_timestamp_seconds", "When the zone was checked")
    up = _gauge(f"{PREFIX}server_up", "1 if the server answered at the zone's last check")
    serial = _gauge(f"{PREFIX}server_serial", "The SOA serial the server served")
    findings = _gauge(f"{PREFIX}findings", "Findings of the zone's last check, by code")
    for z in zones:
        for family, at in (
            (warning, z.warning_at),
            (strict, z.strict_fail_at),
            (skew, z.skew_exhausted_at),
        ):
            if at is not None:
                family.add_metric([z.zone], at)
        for s in _SEVERITIES:
            severity.add_metric([z.zone, s], 1.0 if s == z.severity else 0.0)
        checked.add_metric([z.zone], z.checked_at)
        for server in z.servers:
            up.add_metric([z.zone, server.address], 1.0 if server.up else 0.0)
            if server.serial is not None:
                serial.add_metric([z.zone, server.address], server.serial)
        counts: dict[tuple[str, str], int] = {}
        for f in z.findings:
            key = (f.code, f.severity.value)
            counts[key] = counts.get(key, 0) + 1
        for (code, sev), count in sorted(counts.items()):
            findings.add_metric([z.zone, code, sev], count)
    yield from (warning, strict, skew, severity, checked, up, serial, findings)


def service_families(view: Frozen) -> Iterator[Metric]:
    """The service's own families: checks, deliveries, outbox, restarts, build."""
    checks = CounterMetricFamily(
        f"{PREFIX}checks", "Zone checks, by whether a verdict was stored", labels=["result"]
    )
    for result in (CheckResult.SUCCESS, CheckResult.FAILURE):
        checks.add_metric([result], view.checks.get(result, 0))
    yield checks
    buckets = [(str(float(b)), view.duration_buckets[i]) for i, b in enumerate(DURATION_BUCKETS)]
    buckets.append(("+Inf", view.duration_buckets[-1]))
    yield HistogramMetricFamily(
        f"{PREFIX}check_duration_seconds",
        "Seconds one check of the zones due together took (probe, judge, store)",
        buckets=buckets,
        sum_value=view.duration_sum,
    )
    deliveries = CounterMetricFamily(
        f"{PREFIX}deliveries", "Webhook delivery attempts, by outcome", labels=["webhook", "result"]
    )
    pending = GaugeMetricFamily(
        f"{PREFIX}outbox_pending", "Events not yet delivered", labels=["webhook"]
    )
    oldest = GaugeMetricFamily(
        f"{PREFIX}outbox_oldest_age_seconds",
        "Age of the oldest undelivered event",
        labels=["webhook"],
    )
    names = sorted({*view.webhooks, *view.outbox, *(w for w, _ in view.deliveries)})
    for webhook in names:
        for result in _DELIVERY_RESULTS:
            deliveries.add_metric([webhook, result], view.deliveries.get((webhook, result), 0))
        state = view.outbox.get(webhook)
        pending.add_metric([webhook], state.pending if state else 0)
        if state is not None and state.oldest_created_at is not None:
            oldest.add_metric([webhook], max(0.0, view.at - state.oldest_created_at))
    yield from (deliveries, pending, oldest)
    restarts = CounterMetricFamily(
        f"{PREFIX}task_restarts", "Restarts of a supervised task after a crash", labels=["task"]
    )
    for task, count in sorted(view.restarts.items()):
        restarts.add_metric([task], count)
    yield restarts
    yield InfoMetricFamily(f"{PREFIX}build", "The running version", value={"version": view.version})


class ZoneCollector(Collector):
    """The zone families of a fixed list of zone states (``--check --format prometheus``)."""

    def __init__(self, zones: Iterable[ZoneState]) -> None:
        self.zones = tuple(zones)

    def collect(self) -> Iterator[Metric]:
        return zone_families(self.zones)


class ServiceCollector(Collector):
    """The service's own families of a frozen snapshot."""

    def __init__(self, view: Frozen) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        return service_families(self.view)


class WatchdogCollector(Collector):
    """Every family of a frozen service snapshot (``/metrics``)."""

    def __init__(self, view: Frozen) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        yield from zone_families(self.view.zones)
        yield from service_families(self.view)


Encoder = Callable[[Collector], bytes]


def encoder_for(accept: str) -> tuple[Encoder, str]:
    """prometheus_client's encoder and content type for a scraper's ``Accept`` header."""
    return choose_encoder(accept)


def join(zones: bytes, service: bytes, content_type: str) -> bytes:
    """One body from the zone part and the service part, each rendered by the same encoder:
    OpenMetrics ends a body with "# EOF", which must appear once, at the end."""
    if content_type.startswith("application/openmetrics-text"):
        zones = zones.removesuffix(_EOF)
    return zones + service


def exposition(view: Frozen, accept: str = "") -> tuple[bytes, str]:
    """The body and content type of a scrape, in the format the ``Accept`` header asks for."""
    encoder, content_type = encoder_for(accept)
    return encoder(WatchdogCollector(view)), content_type


def textfile(zones: Iterable[ZoneState]) -> str:
    """The zone metrics in the text format, for node_exporter's textfile collector."""
    return generate_latest(ZoneCollector(zones)).decode("utf-8")
