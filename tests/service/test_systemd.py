"""systemd integration: the notify protocol, the watchdog pings, and exit statuses at startup.

The service runs as a real subprocess (``dnssec-watchdog --serve``) against signed zones on
127.0.0.1; a real AF_UNIX datagram socket (a path, or an abstract "@name") stands in for
systemd's notify socket, as sd_notify(3) and systemd.service(5) Type=notify describe it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_harness import (
    DAY,
    HOUR,
    SERVICE_BIN,
    NotifyMessage,
    NotifySocket,
    ServiceProcess,
    SignedZone,
    ZoneServer,
    service_env,
    signed,
    write_config,
)

from watchdog.service.systemd import SystemdNotifier, watchdog_interval

# "412 zones: 409 ok, 2 warning, 1 strict_fail; next check 14:23:08Z" (issue 6)
_STATUS = re.compile(r"^(\d+) zones?: (.+); next check (\d\d:\d\d:\d\d)Z$")


def _status_counts(status: str) -> tuple[int, dict[str, int]]:
    match = _STATUS.match(status)
    assert match, f"STATUS {status!r} is not '<n> zones: <count> <severity>, ...; next check'"
    counts = {}
    for part in match[2].split(", "):
        number, severity = part.split(" ", 1)
        counts[severity] = int(number)
    return int(match[1]), counts


def _next_check(status: str) -> str:
    match = _STATUS.match(status)
    assert match, f"STATUS {status!r} names no next check"
    return match[3]


def _is_ready(m: NotifyMessage) -> bool:
    return m.fields.get("READY") == "1"


@pytest.fixture(scope="module")
def zones() -> list[SignedZone]:
    """One zone of each kind: ok, warning (12 h left of 10 days) and strict_fail (expired)."""
    return [
        signed("ok.test.", expires_in=5 * DAY),
        signed("warn.test.", expires_in=12 * HOUR),
        signed("fail.test.", expires_in=-60),
    ]


@pytest.fixture
def dns_server(zones: list[SignedZone]) -> Iterator[ZoneServer]:
    """The pure-Python authoritative server with every zone, on 127.0.0.1."""
    with ZoneServer(zones) as server:
        yield server


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_status_and_stopping_over_the_notify_socket(
    kind: str, tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """READY=1 comes first, once the zones are planned; STATUS follows the checks; SIGTERM
    sends STOPPING=1 and exits 0, on a path socket and an abstract one alike."""
    config = write_config(tmp_path, dns_server.port, zones)
    with NotifySocket(tmp_path / "n.sock" if kind == "path" else None) as sd:
        with ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service:
            ready = sd.wait_for(_is_ready)
            assert sd.received()[0] is ready, "nothing may reach systemd before READY=1"
            assert (tmp_path / "state.sqlite3").is_file()  # the state was opened before
            total, counts = _status_counts(ready["STATUS"])
            assert (total, counts) == (3, {"pending": 3})

            checked = sd.wait_for(
                lambda m: "STATUS" in m and "pending" not in m["STATUS"] and not _is_ready(m)
            )
            assert _status_counts(checked["STATUS"]) == (
                3,
                {"ok": 1, "warning": 1, "strict_fail": 1},
            )
            # interval is 2 s: a later check plans a later next check, and STATUS says so.
            first_next = _next_check(checked["STATUS"])
            position = sd.received().index(checked) + 1
            sd.wait_for(
                lambda m: "STATUS" in m and _next_check(m["STATUS"]) != first_next,
                after=position,
            )

            assert service.stop() == 0
        stopping = sd.wait_for(lambda m: m.fields.get("STOPPING") == "1")
        sd.sync()
    assert sd.received()[-1] is stopping, "STOPPING=1 is the last word"
    assert service.events("sd_notify_failed") == []


def test_watchdog_pings_at_half_of_watchdog_usec(
    tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """With WATCHDOG_USEC=1 s, WATCHDOG=1 comes about every 0.5 s (sd_watchdog_enabled(3)),
    from the running loop."""
    config = write_config(tmp_path, dns_server.port, zones[:1])
    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "1000000"}
    window = 6.0
    with NotifySocket(tmp_path / "n.sock") as sd, ServiceProcess(config, env=env) as service:
        start = sd.wait_for(_is_ready).received_at
        # Wait until a ping arrives after the window ends (every wait has a timeout).
        sd.wait_for(
            lambda m: "WATCHDOG" in m and m.received_at > start + window, timeout=window + 10
        )
        pings = [
            m
            for m in sd.received()
            if m.fields.get("WATCHDOG") == "1" and start <= m.received_at <= start + window
        ]
        assert service.stop() == 0
    # Half the interval gives 12 pings in 6 s, the full interval 6: the range tells them apart
    # and leaves room for a busy machine.
    assert 8 <= len(pings) <= 20, f"{len(pings)} pings in {window} s"


def test_no_watchdog_pings_without_watchdog_usec(
    tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """Without WATCHDOG_USEC the service sends READY and STATUS, never WATCHDOG=1."""
    config = write_config(tmp_path, dns_server.port, zones[:1])
    with (
        NotifySocket(tmp_path / "n.sock") as sd,
        ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service,
    ):
        sd.wait_for(_is_ready)
        service.wait_for_log("zone_checked", zone="ok.test.")
        position = service.mark()
        service.wait_for_log("zone_checked", zone="ok.test.", after=position)
        assert service.stop() == 0
        sd.sync()
    assert [m for m in sd.received() if "WATCHDOG" in m] == []


def test_reload_sends_reloading_then_ready(
    tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 with a STATUS of the new zones."""
    config = write_config(tmp_path, dns_server.port, zones[:1])
    with (
        NotifySocket(tmp_path / "n.sock") as sd,
        ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service,
    ):
        sd.wait_for(_is_ready)
        write_config(tmp_path, dns_server.port, zones)
        position = len(sd.received())
        service.send(signal.SIGHUP)
        reloading = sd.wait_for(lambda m: "RELOADING" in m, after=position)
        assert reloading["MONOTONIC_USEC"].isdigit()
        ready = sd.wait_for(_is_ready, after=sd.received().index(reloading))
        assert _status_counts(ready["STATUS"])[0] == 3
        assert service.stop() == 0


def test_service_runs_without_notify_socket(
    tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """With NOTIFY_SOCKET unset (not under systemd) the service checks zones and stops as usual,
    without complaining about systemd."""
    config = write_config(tmp_path, dns_server.port, zones)
    with ServiceProcess(config, env={"WATCHDOG_USEC": "1000000"}) as service:
        service.wait_for_log("zone_checked", zone="warn.test.", severity="warning")
        assert service.stop() == 0
    service.wait_for_log("service_stopped")
    assert service.events("sd_notify_failed") == []


def test_service_survives_a_notify_socket_nobody_listens_on(
    tmp_path: Path, zones: list[SignedZone], dns_server: ZoneServer
) -> None:
    """A NOTIFY_SOCKET that does not exist is logged, and the service keeps working."""
    config = write_config(tmp_path, dns_server.port, zones[:1])
    env = {"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}
    with ServiceProcess(config, env=env) as service:
        service.wait_for_log("sd_notify_failed")
        position = service.mark()
        service.wait_for_log("zone_checked", zone="ok.test.", after=position)
        assert service.stop() == 0


# -- exit statuses at startup (sysexits.h; the unit's RestartPreventExitStatus=78) -----------


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVICE_BIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=service_env(env),
        check=False,
    )


def test_bad_config_at_startup_exits_78_without_ready(tmp_path: Path) -> None:
    """A bad config: exit 78 (EX_CONFIG), every problem in one JSON log line, no READY=1."""
    config = tmp_path / "config.toml"
    config.write_text('[watchdog]\ninterval = "soon"\nintervall = "1m"\n')
    with NotifySocket(tmp_path / "n.sock") as sd:
        result = _run("--serve", "--config", str(config), env={"NOTIFY_SOCKET": sd.address})
        sd.sync()
        messages = sd.received()
    assert result.returncode == 78
    assert messages == []
    entry = next(e for e in map(_json_or_none, result.stderr.splitlines()) if e)
    assert entry["event"] == "config_invalid"
    assert entry["source"] == str(config)
    problems = "\n".join(entry["problems"])
    for key in ("watchdog.interval", "watchdog.intervall", "zone"):
        assert f"{key}:" in problems


def test_unusable_state_path_exits_73_without_ready(tmp_path: Path) -> None:
    """A state file in a directory that does not exist: exit 73 (EX_CANTCREAT), no READY=1."""
    zone = signed("ok.test.", expires_in=5 * DAY)
    config = write_config(tmp_path, 53, [zone], state=tmp_path / "no" / "state.sqlite3")
    with NotifySocket(tmp_path / "n.sock") as sd:
        result = _run("--serve", "--config", str(config), env={"NOTIFY_SOCKET": sd.address})
        sd.sync()
        messages = sd.received()
    assert result.returncode == 73
    assert messages == []
    assert '"state_unusable"' in result.stderr
    assert str(tmp_path / "no") in result.stderr


def test_validate_config_exits_0_for_a_good_config(tmp_path: Path) -> None:
    """``--validate-config`` on a good config exits 0 and says how much it holds."""
    config = write_config(tmp_path, 53, [signed("ok.test.", expires_in=5 * DAY)])
    result = _run("--validate-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "1 zones" in result.stdout
    assert not (tmp_path / "state.sqlite3").exists(), "validating opens no state file"


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        (
            '[watchdog]\nretries = -1\n[[zone]]\nname = "a..b"\n',
            ["watchdog.retries", "zone[0].name"],
        ),
        ("[watchdog\n", ["line 1"]),
    ],
    ids=["values", "toml-syntax"],
)
def test_validate_config_exits_78_listing_problems(
    tmp_path: Path, text: str, keys: list[str]
) -> None:
    """``--validate-config`` on a bad config exits 78 and names every problem on stderr."""
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = _run("--validate-config", "--config", str(config))
    assert result.returncode == 78
    assert str(config) in result.stderr
    for key in keys:
        assert key in result.stderr


def test_validate_config_exits_78_for_a_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is a configuration error, not a crash."""
    result = _run("--validate-config", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 78
    assert "Traceback" not in result.stderr
    assert "absent.toml" in result.stderr


# -- the protocol itself ----------------------------------------------------------------------


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_notifier_sends_one_datagram_of_key_value_lines(kind: str, tmp_path: Path) -> None:
    """Each call is one datagram of newline-separated KEY=value fields (sd_notify(3))."""
    with NotifySocket(tmp_path / "n.sock" if kind == "path" else None) as sd:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": sd.address})
        try:
            assert notifier.enabled
            assert notifier.ready("1 zones: 1 pending")
            assert notifier.ping()
            assert notifier.stopping()
            sd.wait_for(lambda m: "STOPPING" in m)
        finally:
            notifier.close()
    assert [dict(m.fields) for m in sd.received()] == [
        {"READY": "1", "STATUS": "1 zones: 1 pending"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1"},
    ]


@pytest.mark.parametrize("value", ["", "relative/path.sock", "vsock:2:1234"])
def test_notifier_does_nothing_for_unusable_notify_socket_values(value: str) -> None:
    """Unset, relative or unsupported NOTIFY_SOCKET values disable the protocol quietly."""
    notifier = SystemdNotifier({"NOTIFY_SOCKET": value} if value else {})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    notifier.close()


def test_notifier_reports_a_vanished_socket_without_raising(tmp_path: Path) -> None:
    """When systemd's socket is gone the call returns False instead of breaking the service."""
    path = tmp_path / "gone.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
    path.unlink()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    try:
        assert notifier.status("still here") is False
    finally:
        notifier.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "sixty"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    """Half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names (when it is set)."""
    assert watchdog_interval(env) == expected
