"""deploy/ monitoring files: the Prometheus rules pass promtool (syntax and rule unit tests),
and the rules and the Grafana dashboard name only metrics the code exports.

The exported names come from a real exposition of the collector, parsed back with
prometheus_client's parser, so a renamed metric breaks this test, not an operator's alert.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from watchdog.engine.findings import Finding, Severity
from watchdog.service.metrics import METRICS, exposition
from watchdog.service.snapshot import OutboxState, ServerState, Snapshot, ZoneState

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "dnssec-watchdog.rules.yml"
RULE_TESTS = Path(__file__).resolve().parent / "rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dnssec-watchdog.json"
# What the issue asks the rules to cover, by alert name.
REQUIRED_ALERTS = {
    "DNSSECSignaturesExpiring",  # warning
    "DNSSECStrictFailWithin24h",  # strict fail within 24 h
    "DNSSECWatchdogDown",  # watchdog down
    "DNSSECWatchdogOutboxStuck",  # outbox stuck
    "DNSSECWatchdogChecksFailing",  # checks failing
}
PROMETHEUS_OWN = {"up"}  # metrics Prometheus itself makes for every target


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None and os.environ.get("CI"):
        pytest.fail("CI: promtool is not installed (Debian package prometheus)")
    if found is None:
        pytest.skip("promtool is not installed (sh tests/install-debian-deps.sh)")
    return found


def exported_names() -> set[str]:
    """Every sample name a full scrape shows, from a snapshot where every family has data."""
    snapshot = Snapshot(version="0.0.0", webhooks=("ops",))
    snapshot.checked(
        ZoneState(
            zone="example.test.",
            severity="warning",
            checked_at=1_900_000_000,
            warning_at=1_900_000_000,
            strict_fail_at=1_900_086_401,
            skew_exhausted_at=1_900_172_801,
            servers=(ServerState("127.0.0.1:53", None, True, 7, "warning"),),
            findings=(Finding("signature_expiring", Severity.WARNING, "soon"),),
        )
    )
    snapshot.failed(1)
    snapshot.observe_duration(0.3)
    snapshot.deliveries["ops", "sent"] += 1
    snapshot.outbox["ops"] = OutboxState(1, 1_899_999_000.0)
    snapshot.restarts = {"scheduler": 1}
    body, _ = exposition(snapshot.freeze())
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers outside quotes, label sets,
    grouping clauses and function calls, minus the language's keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    words = set(re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", text))
    keywords = {"and", "or", "unless", "bool", "offset", "by", "without", "le", "inf", "nan"}
    return {w for w in words if w.lower() not in keywords and not w.isdigit()}


def rules() -> Iterator[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        yield from group["rules"]


def dashboard_exprs() -> Iterator[str]:
    document = json.loads(DASHBOARD.read_text())
    for panel in document["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def test_metric_name_extraction_reads_promql() -> None:
    """The PromQL reader finds the selected metrics and nothing else."""
    expr = (
        'sum by (zone, le) (rate(dnssec_watchdog_x_bucket{zone=~"a|up"}[5m])) / '
        'on(zone) group_left(code) up{job="x"} > bool 3 or absent(foo_total)'
    )
    assert metric_names(expr) == {"dnssec_watchdog_x_bucket", "up", "foo_total"}


def test_every_documented_metric_is_exported() -> None:
    """Each family of METRICS shows in a full scrape (histograms by their _bucket samples)."""
    names = exported_names()
    for name in METRICS:
        assert name in names or f"{name}_bucket" in names, name


def test_promtool_checks_the_rules() -> None:
    """promtool check rules accepts deploy/prometheus/dnssec-watchdog.rules.yml."""
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    """Each alert fires (and stays quiet) at the moments tests/deploy/rules.test.yml gives."""
    done = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == {rule["alert"] for rule in rules()}, "every alert has a unit test"


def test_rules_cover_the_required_alerts_and_name_exported_metrics() -> None:
    """The five alerts of the issue exist; every expression names exported metrics only."""
    exported = exported_names() | PROMETHEUS_OWN
    found = list(rules())
    assert {rule["alert"] for rule in found} >= REQUIRED_ALERTS
    for rule in found:
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']}: {sorted(unknown)}"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_dashboard_names_exported_metrics_and_its_own_datasource() -> None:
    """Every panel query names exported metrics and uses the dashboard's data source variable."""
    document = json.loads(DASHBOARD.read_text())
    exported = exported_names() | PROMETHEUS_OWN
    variables = {v["name"] for v in document["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            unknown = metric_names(target["expr"]) - exported
            assert not unknown, f"{panel['title']}: {sorted(unknown)}"
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    # Every zone deadline and the watchdog's own health show somewhere.
    assert {
        "dnssec_watchdog_zone_strict_fail_timestamp_seconds",
        "dnssec_watchdog_zone_warning_timestamp_seconds",
        "dnssec_watchdog_checks_total",
        "dnssec_watchdog_outbox_oldest_age_seconds",
    } <= used
