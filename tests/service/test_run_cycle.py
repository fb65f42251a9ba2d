"""``Service.run_cycle`` with an injected clock: a real server and state file, no real seconds."""

from __future__ import annotations

import json
from pathlib import Path

from watchdog.config.parse import load_config
from watchdog.demo.authserver import AuthServer
from watchdog.demo.signer import DEMO_RECORDS, ds_records, make_keys, sign_zone
from watchdog.engine.schedule import Reason
from watchdog.engine.timeutil import rfc3339
from watchdog.service.clock import Clock
from watchdog.service.logsetup import Redactor
from watchdog.service.loop import Service
from watchdog.service.store import Store

ZONE = "cycle.test."
DAY = 86400
# Far from the real clock on purpose: everything the service decides must follow this one.
T0 = 2_000_000_000  # 2033-05-18T03:33:20Z
EXPIRES = T0 + 300  # strict validators fail five minutes after T0


class ManualClock:
    """Wall and monotonic time that move only when the test says so."""

    def __init__(self, wall: int) -> None:
        self.wall, self.mono = float(wall), 1000.0

    def clock(self) -> Clock:
        return Clock(wall=lambda: self.wall, monotonic=lambda: self.mono)

    def advance(self, seconds: int) -> None:
        self.wall += seconds
        self.mono += seconds


def _config(path: Path, port: int, anchor: str) -> Path:
    path.write_text(
        f"[watchdog]\nstate_path = {json.dumps(str(path.parent / 'state.sqlite3'))}\n"
        f'interval = "15m"\njitter = "0s"\nresolver = "127.0.0.1:{port}"\n'
        f'query_timeout = "2s"\n\n'
        f'[[zone]]\nname = "{ZONE}"\nservers = ["127.0.0.1:{port}"]\n'
        f"trust_anchor = '''\n{anchor}\n'''\n\n"
        '[[webhook]]\nname = "ops"\nkind = "generic"\nurl = "http://127.0.0.1:9/hook"\n'
    )
    return path


async def test_run_cycle_judges_plans_and_stores_at_the_clock_it_is_given(tmp_path: Path) -> None:
    """Every time the service stores or plans comes from its clock: the warning at T0, the
    crossing planned one second after the strict-fail second, the failure when moved there."""
    keys = make_keys()
    zone = sign_zone(ZONE, DEMO_RECORDS, keys, EXPIRES - 14 * DAY, EXPIRES, "nsec")
    anchor = "\n".join(f"{ZONE} IN DS {ds}" for ds in ds_records(keys, ZONE))
    manual = ManualClock(T0)
    async with AuthServer(zone) as server:
        config = load_config(_config(tmp_path / "config.toml", server.port, anchor))
        with Store(config.service.state_path) as store:
            service = Service(config, store, redactor=Redactor(), clock=manual.clock())
            async with service.probing():
                assert service.schedule.next_due() == T0  # a new zone is planned at once
                await service.run_cycle()
                first = store.zone_summaries()[ZONE]
                assert (first["checked_at"], first["severity"]) == (T0, "warning")
                assert first["next_reason"] == Reason.CROSSING.value
                assert first["next_check"] == first["strict_fail_at"] + 1 == EXPIRES + 2
                assert service.schedule.next_due() == first["next_check"]
                assert service.zones.severities() == {"warning": 1}

                manual.advance(first["next_check"] - T0)
                await service.run_cycle([ZONE])
                second = store.zone_summaries()[ZONE]
                assert (second["checked_at"], second["severity"]) == (EXPIRES + 2, "strict_fail")
                assert service.zones.severities() == {"strict_fail": 1}
                outbox = [json.loads(e.body) for e in store.entries()]
    assert [(e["new_severity"], e["at"]) for e in outbox] == [
        ("warning", rfc3339(T0)),
        ("strict_fail", rfc3339(EXPIRES + 2)),
    ]
