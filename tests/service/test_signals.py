"""Signals to the running service: SIGHUP reloads the config, SIGTERM/SIGINT stop it cleanly.

The service runs as a real subprocess (``dnssec-watchdog --serve``) against signed zones on
127.0.0.1, with its JSON log on stderr and a real HTTP receiver on loopback for its webhooks.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from receivers import Receiver, Reply, free_port
from service_harness import (
    DAY,
    HOUR,
    ServiceProcess,
    SignedZone,
    ZoneServer,
    signed,
    write_config,
)

from watchdog.service.store import DeliveryStatus, Store

_WARN = "warn.test."
_OK = "ok.test."
_FAIL = "fail.test."


@pytest.fixture(scope="module")
def zones() -> dict[str, SignedZone]:
    """A warning zone (12 h left of 10 days), an ok one, and an expired (strict_fail) one."""
    return {
        _WARN: signed(_WARN, expires_in=12 * HOUR),
        _OK: signed(_OK, expires_in=5 * DAY),
        _FAIL: signed(_FAIL, expires_in=-60),
    }


@pytest.fixture
def dns_server(zones: dict[str, SignedZone]) -> Iterator[ZoneServer]:
    """The pure-Python authoritative server with every zone, on 127.0.0.1."""
    with ZoneServer(list(zones.values())) as server:
        yield server


def _bodies(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.requests]


# -- SIGHUP -----------------------------------------------------------------------------------


def test_reload_adds_and_removes_zones_and_keeps_alert_state(
    tmp_path: Path, zones: dict[str, SignedZone], dns_server: ZoneServer
) -> None:
    """After SIGHUP the added zone is checked, the removed one no longer is, and the zone that
    stays keeps its alert state: its warning is not announced a second time."""
    with Receiver() as receiver:
        url = receiver.url()
        config = write_config(
            tmp_path, dns_server.port, [zones[_WARN], zones[_OK]], webhook_url=url
        )
        with ServiceProcess(config) as service:
            service.wait_for_log("alert_fired", zone=_WARN, new="warning")
            receiver.wait_for(1, timeout=15)
            service.wait_for_log("zone_checked", zone=_OK)

            write_config(tmp_path, dns_server.port, [zones[_WARN], zones[_FAIL]], webhook_url=url)
            service.send(signal.SIGHUP)
            reloaded = service.wait_for_log("config_reloaded")
            assert (reloaded["zones"], reloaded["added"], reloaded["removed"]) == (2, 1, 1)
            after = service.mark()
            service.wait_for_log("zone_checked", zone=_FAIL, severity="strict_fail", after=after)
            # Two more rounds of the zone that stayed (interval 2 s), still a warning.
            first = service.wait_for_log("zone_checked", zone=_WARN, after=after)
            service.wait_for_log("zone_checked", zone=_WARN, after=service.logs.index(first) + 1)
            receiver.wait_for(2, timeout=15)  # the added zone's own alert
            assert service.events("zone_checked", zone=_OK, after=after) == []
            assert service.events("alert_fired", zone=_WARN, after=after) == []
            assert service.stop() == 0
    sent = [(b["zone"], b["new_severity"]) for b in _bodies(receiver)]
    assert sent == [(_WARN, "warning"), (_FAIL, "strict_fail")]


def test_zone_removed_then_added_back_keeps_its_alert_state(
    tmp_path: Path, zones: dict[str, SignedZone], dns_server: ZoneServer
) -> None:
    """A zone taken out by one reload and put back by the next is not announced again: its
    alert state survives in the state file."""
    with Receiver() as receiver:
        url = receiver.url()
        both = [zones[_WARN], zones[_OK]]
        config = write_config(tmp_path, dns_server.port, both, webhook_url=url)
        with ServiceProcess(config) as service:
            receiver.wait_for(1, timeout=15)
            write_config(tmp_path, dns_server.port, [zones[_OK]], webhook_url=url)
            service.send(signal.SIGHUP)
            service.wait_for_log("zone_removed", zone=_WARN)
            write_config(tmp_path, dns_server.port, both, webhook_url=url)
            after = service.mark()
            service.send(signal.SIGHUP)
            service.wait_for_log("config_reloaded", added=1, after=after)
            service.wait_for_log("zone_checked", zone=_WARN, severity="warning", after=after)
            assert service.events("alert_fired", zone=_WARN, after=after) == []
            assert service.stop() == 0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[watchdog]\ninterval = "soon"\n[[zone]]\nname = "a..b"\nwarn_before = "10d%"\n',
            ["watchdog.interval", "zone[0].name", "zone[0].warn_before"],
        ),
        ('[[zone]]\nname = "example.com\n', ["not valid TOML", "line 2"]),
    ],
    ids=["values", "toml-syntax"],
)
def test_bad_config_on_reload_is_logged_and_the_old_one_stays(
    tmp_path: Path,
    zones: dict[str, SignedZone],
    dns_server: ZoneServer,
    text: str,
    expected: list[str],
) -> None:
    """SIGHUP with a broken config: one JSON log line lists every problem with its key path,
    and the zones of the old config go on being checked."""
    config = write_config(tmp_path, dns_server.port, [zones[_OK]])
    with ServiceProcess(config) as service:
        service.wait_for_log("zone_checked", zone=_OK)
        config.write_text(text)
        service.send(signal.SIGHUP)
        failed = service.wait_for_log("config_reload_failed")
        assert failed["level"] == "error"
        assert failed["source"] == str(config)
        problems = "\n".join(failed["problems"])
        for item in expected:
            assert item in problems
        after = service.mark()
        service.wait_for_log("zone_checked", zone=_OK, severity="ok", after=after)
        assert service.events("config_reloaded") == []
        assert service.stop() == 0
    # Not a traceback, and every line of the log is JSON (stderr is not a TTY).
    assert all(line.startswith("{") for line in service.raw)


# -- SIGTERM / SIGINT -------------------------------------------------------------------------


def test_sigterm_keeps_an_undelivered_event_for_the_next_start(
    tmp_path: Path, zones: dict[str, SignedZone], dns_server: ZoneServer
) -> None:
    """With the receiver down, SIGTERM exits 0 and leaves the event pending in the outbox;
    the next start delivers it, with the same event id, once the receiver is up."""
    port = free_port()  # nothing listens there yet: connection refused
    url = f"http://127.0.0.1:{port}/hook"
    state = tmp_path / "state.sqlite3"
    config = write_config(tmp_path, dns_server.port, [zones[_WARN]], webhook_url=url)
    with ServiceProcess(config) as service:
        fired = service.wait_for_log("alert_fired", zone=_WARN)
        service.wait_for_log("delivery_failed", event_id=fired["event_id"])
        assert service.stop() == 0
    service.wait_for_log("service_stopped")
    assert not Path(f"{state}-wal").exists(), "the state file was closed cleanly"
    with Store(state) as store:
        pending = store.entries(status=DeliveryStatus.PENDING)
    assert [e.event_id for e in pending] == [fired["event_id"]]
    assert pending[0].attempts >= 1

    with Receiver(port=port) as receiver, ServiceProcess(config) as service:
        delivered = service.wait_for_log("delivery_sent", event_id=fired["event_id"])
        service.wait_for_log("zone_checked", zone=_WARN)
        assert service.stop() == 0
    assert delivered["status"] == 200
    assert [b["id"] for b in _bodies(receiver)] == [fired["event_id"]]
    assert service.events("alert_fired") == [], "the restart announced nothing new"
    with Store(state) as store:
        assert store.entries(status=DeliveryStatus.PENDING) == []


@pytest.mark.slow
def test_sigterm_cuts_a_slow_delivery_off_within_the_bound(
    tmp_path: Path, zones: dict[str, SignedZone], dns_server: ZoneServer
) -> None:
    """A receiver that never answers cannot hold the shutdown past its 10 s bound (the unit's
    TimeoutStopSec is 30 s): the process exits 0 and the event stays pending."""
    state = tmp_path / "state.sqlite3"
    with Receiver(default=Reply(hold=True)) as receiver:
        config = write_config(
            tmp_path,
            dns_server.port,
            [zones[_WARN]],
            webhook_url=receiver.url(),
            settings={"delivery_timeout": "2m"},
        )
        with ServiceProcess(config) as service:
            receiver.wait_for(1, timeout=15)
            # 10 s of bound plus room for a busy machine; well short of the 2 min a
            # shutdown that waited for the receiver would take.
            assert service.stop(timeout=25) == 0
    service.wait_for_log("deliveries_left_pending", count=1)
    with Store(state) as store:
        pending = store.entries(status=DeliveryStatus.PENDING)
    assert [e.event_id for e in pending] == [json.loads(receiver.requests[0].body)["id"]]


def test_sigint_stops_like_sigterm(
    tmp_path: Path, zones: dict[str, SignedZone], dns_server: ZoneServer
) -> None:
    """SIGINT (Ctrl-C in a terminal) stops the service cleanly with exit 0 as well."""
    config = write_config(tmp_path, dns_server.port, [zones[_OK]])
    with ServiceProcess(config) as service:
        service.wait_for_log("zone_checked", zone=_OK)
        assert service.stop(signum=signal.SIGINT) == 0
    service.wait_for_log("service_stopped")
    assert not any("Traceback" in line for line in service.raw)
