"""One watchdog per state file: a second service on the same file exits 73 naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_harness import DAY, ServiceProcess, ZoneServer, signed, write_config

from watchdog.errors import StateError
from watchdog.service.instance import StateLock
from watchdog.service.store import Store


def test_a_second_service_on_the_same_state_file_exits_73(tmp_path: Path) -> None:
    """Two real services, one state file: the second exits 73 with state_in_use naming the file;
    the first keeps running; once it stopped, the file is free for the next one."""
    zone = signed("ok.test.", expires_in=5 * DAY)
    with ZoneServer([zone]) as dns:
        config = write_config(tmp_path, dns.port, [zone])
        state = tmp_path / "state.sqlite3"
        with ServiceProcess(config) as first:
            first.wait_for_log("zone_checked", timeout=60)
            with ServiceProcess(config) as second:
                assert second.wait(timeout=60) == 73
            (refused,) = second.events("state_in_use")
            assert refused["state"] == str(state)
            assert str(state) in refused["error"] and "another dnssec-watchdog" in refused["error"]
            assert not second.events("service_started")
            assert first.died() is None
            assert first.stop() == 0
        with ServiceProcess(config) as third:
            third.wait_for_log("service_started", timeout=60)
            assert third.stop() == 0


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    """StateLock: a second lock on the same file fails with StateError; release frees it."""
    path = tmp_path / "state.sqlite3"
    Store(path).close()
    held = StateLock(path)
    with pytest.raises(StateError, match="in use by another dnssec-watchdog"):
        StateLock(path)
    held.release()
    held.release()  # idempotent
    StateLock(path).release()
