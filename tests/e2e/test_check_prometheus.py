"""``--check --format prometheus`` against real NSD zones: the textfile agrees with ``--json``.

One NSD on 127.0.0.1 serves zones signed by ldns-signzone in several states, one unsigned zone,
and every zone is also asked on a closed port (a server that never answers). Both formats come
from the same run arguments (``--at`` fixes the moment); the metrics are parsed with
prometheus_client's own parser, and every deadline sample must equal the RFC 3339 second of the
JSON report, parsed independently here. A zone with no deadline must have no sample at all.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from lab import NsdServer, make_signed_zone, make_unsigned_zone, missing_binaries
from prometheus_client.parser import text_string_to_metric_families

from watchdog.cli import main

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
AT = "2030-01-01T00:00:00Z"
HOUR, DAY = 3600, 86400
CLOSED = "127.0.0.1:9"  # the discard port: nothing answers
LAB_TOOLS = ("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds")
DATES = {
    "ok.test.": (NOW - DAY, NOW + 13 * DAY),
    "warning.test.": (NOW - 13 * DAY, NOW + DAY),
    "strict.test.": (NOW - 14 * DAY, NOW - HOUR),
}
DEADLINES = ("warning", "strict_fail", "skew_exhausted")


def _require_lab() -> None:
    missing = missing_binaries(LAB_TOOLS)
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI: not installed: {', '.join(missing)}")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (sh tests/install-debian-deps.sh)")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config watching the signed zones (anchored by their DS) and an unsigned one on NSD."""
    _require_lab()
    work = tmp_path_factory.mktemp("prom-lab")
    zones = {n: make_signed_zone(work, n, inception=i, expiration=e) for n, (i, e) in DATES.items()}
    unsigned = make_unsigned_zone(work, "unsigned.test.")
    with NsdServer(work / "nsd", [*zones.values(), unsigned]) as nsd:
        server = f"{nsd.address}:{nsd.port}"
        parts = [f'[watchdog]\nresolver = "{CLOSED}"\nquery_timeout = 1\nretries = 0\n']
        for name, zone in zones.items():
            parts.append(
                f'[[zone]]\nname = "{name}"\nservers = ["{server}", "{CLOSED}"]\n'
                f"trust_anchor = '''\n{zone.ds[0]}\n'''\n"
            )
        parts.append(f'[[zone]]\nname = "unsigned.test."\nservers = ["{server}"]\n')
        path = work / "config.toml"
        path.write_text("\n".join(parts))
        yield path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, as prometheus_client's parser reads the text."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[key] = sample.value
    return found


def test_prometheus_format_matches_the_json_report(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deadline samples equal --json's seconds; no deadline, no sample; severity is one-hot."""
    argv = ["--check", "--config", str(config), "--at", AT]
    json_code, json_out = _run(capsys, *argv, "--json")
    prom_code, prom_out = _run(capsys, *argv, "--format", "prometheus")
    report = json.loads(json_out)
    metrics = _samples(prom_out)
    assert prom_code == json_code == 2  # strict.test. is CRITICAL in both
    for zone in report["zones"]:
        name = zone["name"]
        for kind in DEADLINES:
            samples = metrics.get(f"dnssec_watchdog_zone_{kind}_timestamp_seconds", {})
            expected = zone["deadlines"][f"{kind}_at"]
            if expected is None:
                assert (("zone", name),) not in samples, f"{name} {kind}: a sample without one"
            else:
                assert samples[(("zone", name),)] == _seconds(expected), f"{name} {kind}"
        severities = {
            dict(labels)["severity"]: value
            for labels, value in metrics["dnssec_watchdog_zone_severity"].items()
            if dict(labels)["zone"] == name
        }
        assert severities[zone["severity"]] == 1.0
        assert sum(severities.values()) == 1.0
        assert metrics["dnssec_watchdog_zone_last_check_timestamp_seconds"][
            (("zone", name),)
        ] == _seconds(report["checked_at"])
        for server in zone["servers"]:
            labels = (("server", server["address"]), ("zone", name))
            assert metrics["dnssec_watchdog_server_up"][labels] == float(server["reachable"])
            serials = metrics.get("dnssec_watchdog_server_serial", {})
            if server["serial"] is None:
                assert labels not in serials
            else:
                assert serials[labels] == server["serial"]
    # The hand-derived deadlines of one zone, as a check on both: E + 1 for strict validators.
    strict = metrics["dnssec_watchdog_zone_strict_fail_timestamp_seconds"]
    assert strict[(("zone", "warning.test."),)] == DATES["warning.test."][1] + 1
    assert (("zone", "unsigned.test."),) not in strict


def test_prometheus_findings_count_the_json_findings(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dnssec_watchdog_findings counts each zone's distinct findings by code and severity."""
    argv = ["--check", "--config", str(config), "--at", AT]
    report = json.loads(_run(capsys, *argv, "--format", "json")[1])
    metrics = _samples(_run(capsys, *argv, "--format", "prometheus")[1])
    for zone in report["zones"]:
        listed = [*zone["findings"], *(f for s in zone["servers"] for f in s["findings"])]
        unique = {json.dumps(f, sort_keys=True): f for f in listed}.values()
        expected: dict[tuple[str, str], int] = {}
        for f in unique:
            expected[f["code"], f["severity"]] = expected.get((f["code"], f["severity"]), 0) + 1
        got = {
            (dict(k)["code"], dict(k)["severity"]): int(v)
            for k, v in metrics.get("dnssec_watchdog_findings", {}).items()
            if dict(k)["zone"] == zone["name"]
        }
        assert got == expected, zone["name"]
    assert any(dict(k)["code"] for k in metrics["dnssec_watchdog_findings"])


def test_json_and_nagios_stay_aliases_of_format(config: Path) -> None:
    """--json is --format json and --nagios is --format nagios, as a subprocess prints them."""
    script = [str(Path(os.sys.executable).with_name("dnssec-watchdog"))]
    argv = [*script, "--check", "--config", str(config), "--at", AT]

    def out(*extra: str) -> str:
        done = subprocess.run(
            [*argv, *extra], capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout

    assert out("--nagios") == out("--format", "nagios")
    assert out("--nagios").startswith("DNSSEC CRITICAL - ")
    assert json.loads(out("--json"))["zones"] == json.loads(out("--format", "JSON"))["zones"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "xml"], '"xml" is not one of: text, json, nagios, prometheus'),
        (["--format", "j\u0455on"], "is not one of: text, json, nagios, prometheus"),
        (["--format", ""], '"" is not one of'),
        (["--format", "json", "--nagios"], "not allowed with argument"),
        (["--json", "--format", "prometheus"], "not allowed with argument"),
    ],
)
def test_bad_format_is_exit_3_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown, non-ASCII or conflicting --format exits 3 naming the option."""
    code = main(["--check", "example.test", *argv])
    err = capsys.readouterr().err
    assert code == 3
    assert message in err
    assert "Traceback" not in err
