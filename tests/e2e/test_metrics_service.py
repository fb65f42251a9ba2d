"""Issue 17 acceptance: metrics, /healthz and the heartbeat of a real running service.

``dnssec-watchdog --serve`` runs as a subprocess against zones signed here and served by the
pure-Python authoritative server on 127.0.0.1 (tests/service_harness.py), with
``metrics_listen = "127.0.0.1:0"`` (the port it got is in its ``http_listening`` log line) and a
heartbeat to a real HTTP receiver on loopback.

- The scrape is parsed with prometheus_client's parser; its deadline samples must equal the
  seconds of ``dnssec-watchdog --check --json`` run on the same config, and a zone without a
  deadline (its only server never answers) has no sample.
- A wedge: with ``probe_workers = 2`` the worker process that holds some zones is stopped
  (SIGSTOP), as a worker stuck in the kernel or swapped out would be. Its zones, and the batch
  they are in, are never checked: /healthz turns 503 naming the late zones, the heartbeat
  receiver hears nothing but the /fail ping, and after SIGCONT both come back.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from receivers import Receiver
from service_harness import (
    DAY,
    HOUR,
    SERVICE_BIN,
    ServiceProcess,
    SignedZone,
    ZoneServer,
    config_text,
    signed,
    wait_until,
)

from watchdog import __version__
from watchdog.probe.pool import share

pytestmark = pytest.mark.slow

TOKEN = "hb-9f3e-secret-token"  # in the heartbeat URL: must never reach the log
DEADLINES = ("warning", "strict_fail", "skew_exhausted")


def get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path within 10 s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def seconds(text: str) -> int:
    """An RFC 3339 UTC time of the JSON report as POSIX seconds, parsed here independently."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def listening_port(service: ServiceProcess) -> int:
    return int(service.wait_for_log("http_listening")["port"])


@pytest.fixture(scope="module")
def zones() -> dict[str, SignedZone]:
    """An ok zone, a warning one and a strict-fail one, signed for this module."""
    return {
        "ok.test.": signed("ok.test.", expires_in=5 * DAY),
        "warn.test.": signed("warn.test.", expires_in=12 * HOUR),
        "fail.test.": signed("fail.test.", expires_in=-60),
    }


@pytest.fixture
def dns(zones: dict[str, SignedZone]) -> Iterator[ZoneServer]:
    with ZoneServer(list(zones.values())) as server:
        yield server


def test_scraped_deadlines_equal_check_json(
    tmp_path: Path, zones: dict[str, SignedZone], dns: ZoneServer
) -> None:
    """/metrics deadline samples are --check --json's seconds; an unanswered zone has none."""
    silent = signed("silent.test.", expires_in=5 * DAY)  # configured, served by nobody
    text = config_text(
        tmp_path / "state.sqlite3",
        dns.port,
        list(zones.values()),
        settings={"metrics_listen": "127.0.0.1:0", "interval": "1h"},
    )
    text += (
        f'\n[[zone]]\nname = "silent.test."\nservers = ["127.0.0.1:9"]\n'
        f"trust_anchor = '''\n{silent.anchor[0]}\n'''\n"
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    with ServiceProcess(config) as service:
        port = listening_port(service)
        for name in [*zones, "silent.test."]:
            service.wait_for_log("zone_checked", zone=name)
        status, body = get(port, "/metrics")
        health = get(port, "/healthz")
        assert service.stop() == 0
    done = subprocess.run(
        [str(SERVICE_BIN), "--check", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout)
    assert status == 200
    assert health == (200, "ok\n")
    scraped = samples(body)
    for zone in report["zones"]:
        key = (("zone", zone["name"]),)
        for kind in DEADLINES:
            found = scraped.get(f"dnssec_watchdog_zone_{kind}_timestamp_seconds", {})
            expected = zone["deadlines"][f"{kind}_at"]
            if expected is None:
                assert key not in found, f"{zone['name']} {kind}: a sample without a deadline"
            else:
                assert found[key] == seconds(expected), f"{zone['name']} {kind}"
        severity = scraped["dnssec_watchdog_zone_severity"]
        assert severity[(("severity", zone["severity"]), *key)] == 1.0, zone["name"]
    silent_key = (("zone", "silent.test."),)
    assert silent_key not in scraped["dnssec_watchdog_zone_strict_fail_timestamp_seconds"]
    up = scraped["dnssec_watchdog_server_up"]
    assert up[(("server", "127.0.0.1:9"), ("zone", "silent.test."))] == 0.0
    assert up[(("server", f"127.0.0.1:{dns.port}"), ("zone", "ok.test."))] == 1.0
    assert scraped["dnssec_watchdog_checks_total"][(("result", "success"),)] >= 4
    assert scraped["dnssec_watchdog_build_info"] == {(("version", __version__),): 1.0}


def _zones_with_a_worker_share() -> list[SignedZone]:
    """Four zones, at least one of them probed by worker 1 of 2 (watchdog.probe.pool.share)."""
    names = [f"w{i}.test." for i in range(12)]
    chosen = [*names[:3], next(n for n in names[3:] if share(n, 2) == 1)]
    return [signed(n, expires_in=5 * DAY) for n in chosen]


def test_a_wedged_worker_turns_healthz_503_and_silences_the_heartbeat(tmp_path: Path) -> None:
    """SIGSTOP a probe worker: /healthz 503 with the late zones, the heartbeat stops (only
    /fail pings); SIGCONT: /healthz 200 and the heartbeat pings again. No URL is logged."""
    zones = _zones_with_a_worker_share()
    with ZoneServer(zones) as dns, Receiver() as monitor:
        ok, fail = f"/{TOKEN}", f"/{TOKEN}/fail"
        text = config_text(
            tmp_path / "state.sqlite3",
            dns.port,
            zones,
            settings={"metrics_listen": "127.0.0.1:0", "probe_workers": 2},
        )
        text += (
            f'\n[heartbeat]\nurl_env = "HEARTBEAT_URL"\nfail_url = "{monitor.url(fail)}"\n'
            'interval = "1s"\n'
        )
        config = tmp_path / "config.toml"
        config.write_text(text)
        env = {"HEARTBEAT_URL": monitor.url(ok)}
        with ServiceProcess(config, env=env) as service:
            port = listening_port(service)
            for z in zones:
                service.wait_for_log("zone_checked", zone=z.name)

            def pings(path: str) -> int:
                return sum(1 for r in monitor.requests if r.path == path)

            deadline = time.time() + 30
            wait_until(lambda: pings(ok) >= 2, deadline=deadline, what="heartbeat pings")
            assert get(port, "/healthz") == (200, "ok\n")
            (worker,) = service.children()
            os.kill(worker, signal.SIGSTOP)
            try:
                deadline = time.time() + 60
                wait_until(
                    lambda: get(port, "/healthz")[0] == 503,
                    deadline=deadline,
                    what="/healthz 503",
                    alive=service.died,
                )
                reason = get(port, "/healthz")[1]
                wait_until(lambda: pings(fail) >= 1, deadline=deadline, what="a /fail ping")
                heard = pings(ok)
                wait_until(lambda: pings(fail) >= 4, deadline=deadline, what="more /fail pings")
                assert pings(ok) == heard, "the heartbeat went on while wedged"
            finally:
                os.kill(worker, signal.SIGCONT)
            deadline = time.time() + 60
            wait_until(
                lambda: get(port, "/healthz") == (200, "ok\n"),
                deadline=deadline,
                what="/healthz 200 again",
                alive=service.died,
            )
            wait_until(lambda: pings(ok) > heard, deadline=deadline, what="the heartbeat again")
            assert service.stop() == 0
    assert reason.startswith("zones: "), reason
    assert "not checked for" in reason
    withheld = service.events("heartbeat_withheld")
    assert withheld and withheld[0]["reasons"][0].startswith("zones: ")
    assert service.events("heartbeat_resumed")
    assert TOKEN not in "".join(service.raw)
