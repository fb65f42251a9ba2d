"""Issue 17: a crash in any long-lived task of the service (scheduler, webhook lane, probe reader,
systemd pinger, metrics listener, heartbeat, outbox summary, status board) is logged, counted
and restarted,
and the next event still reaches a real receiver on loopback.

The service runs in this process (``Service.run``) so that a fault can be injected into one task
with monkeypatch: it raises once, where a bug would. Everything else is real: the zones come
from an authoritative server on 127.0.0.1, a probe worker process checks half of them, the
webhook is a real HTTP receiver, systemd's notify socket a real AF_UNIX socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from notify_socket import NotifySocket
from receivers import Receiver, Reply
from service_harness import DAY, HOUR, ZoneServer, signed, write_config
from structlog.testing import capture_logs

from watchdog.alerting import delivery
from watchdog.config.parse import load_config
from watchdog.engine.schedule import Schedule
from watchdog.probe.pool import ProbePool, share
from watchdog.service.clock import Clock
from watchdog.service.heartbeat import Heartbeat
from watchdog.service.http import HttpServer
from watchdog.service.logsetup import Redactor
from watchdog.service.loop import Service
from watchdog.service.statusboard import StatusBoard
from watchdog.service.store import Store
from watchdog.service.systemd import SystemdNotifier

# Two zones in warning, one checked in the service process (share 0), one in the worker.
ZONES = ("alpha.test.", "delta.test.")


def _crash_once(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = 0

    def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected fault")
        return real(*args, **kwargs)

    return crashing


def _crash_async_once(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = 0

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected fault")
        return await real(*args, **kwargs)

    return crashing


def _inject(task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if task == "scheduler":
        monkeypatch.setattr(Schedule, "pop_due", _crash_once(Schedule.pop_due))
    elif task == "webhook:ops":
        monkeypatch.setattr(delivery, "classify", _crash_once(delivery.classify))
    elif task == "probe-reader:1":
        monkeypatch.setattr(ProbePool, "_read_frames", _crash_async_once(ProbePool._read_frames))
    elif task == "http":
        monkeypatch.setattr(HttpServer, "serve", _crash_async_once(HttpServer.serve))
    elif task == "heartbeat":
        monkeypatch.setattr(Heartbeat, "_ping", _crash_async_once(Heartbeat._ping))
    elif task == "outbox-summary":
        monkeypatch.setattr(Store, "pending_summary", _crash_once(Store.pending_summary))
    elif task == "status-board":
        refresh = StatusBoard.refresh_deliveries
        monkeypatch.setattr(StatusBoard, "refresh_deliveries", _crash_once(refresh))
    else:
        monkeypatch.setattr(SystemdNotifier, "ping", _crash_once(SystemdNotifier.ping))


TASKS = [
    "scheduler",
    "webhook:ops",
    "probe-reader:1",
    "systemd-watchdog",
    "http",
    "heartbeat",
    "outbox-summary",
    "status-board",
]


@pytest.mark.parametrize("task", TASKS)
async def test_a_crash_in_each_task_is_restarted_and_the_next_event_arrives(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One injected crash: task_crashed names the task, one restart is counted, both warnings
    reach the receiver, and (for the pinger) WATCHDOG=1 comes again."""
    assert sorted(share(z, 2) for z in ZONES) == [0, 1]
    zones = [signed(name, expires_in=12 * HOUR) for name in ZONES]
    with (
        ZoneServer(zones) as dns,
        Receiver(default=Reply(200)) as receiver,
        NotifySocket(tmp_path / "notify.sock") as sd,
    ):
        config = write_config(
            tmp_path,
            dns.port,
            zones,
            webhook_url=receiver.url(),
            settings={"probe_workers": 2, "interval": "1h", "metrics_listen": "127.0.0.1:0"},
        )
        # Every long-lived task runs: the listener, and a heartbeat to the same receiver.
        with config.open("a") as extra:
            extra.write(f'\n[heartbeat]\nurl = "{receiver.url("/heartbeat")}"\ninterval = "1s"\n')
        _inject(task, monkeypatch)
        systemd = SystemdNotifier({"NOTIFY_SOCKET": sd.address, "WATCHDOG_USEC": "1000000"})
        with Store(tmp_path / "state.sqlite3") as store, capture_logs() as logs:
            service = Service(load_config(config), store, redactor=Redactor(), systemd=systemd)
            running = asyncio.create_task(service.run())
            try:
                zones_heard = await _zones_heard(receiver, len(ZONES))
                pings = await asyncio.to_thread(_pings_after_crash, sd, logs)
            finally:
                service.stop()
                assert await asyncio.wait_for(running, timeout=30) == 0
    # At least once: a lane that crashed after the receiver answered sends that event again.
    assert zones_heard == set(ZONES)
    assert service.supervisor.restarts == {task: 1}
    crashed = [e for e in logs if e["event"] == "task_crashed"]
    assert [(e["task"], e["error_type"], e["error"]) for e in crashed] == [
        (task, "RuntimeError", "injected fault")
    ]
    assert pings >= 1


async def _zones_heard(receiver: Receiver, count: int) -> set[str]:
    """The zones of the events received, once ``count`` different ones came (60 s at most)."""
    for _ in range(6000):
        heard = {json.loads(r.body)["zone"] for r in receiver.requests if r.path != "/heartbeat"}
        if len(heard) >= count:
            return heard
        await asyncio.sleep(0.01)
    raise AssertionError(f"events of {count} zones not received within 60 s: {heard}")


def _pings_after_crash(sd: NotifySocket, logs: list[dict[str, Any]]) -> int:
    """WATCHDOG=1 messages after the crash was logged (waits for one)."""
    crashed_at = len(sd.received())
    if not any(e["event"] == "task_crashed" for e in logs):
        raise AssertionError("no task_crashed yet")
    sd.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", after=crashed_at, timeout=30)
    return sum(m.fields.get("WATCHDOG") == "1" for m in sd.received()[crashed_at:])


async def test_a_wedged_scheduler_withholds_watchdog_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler stuck (a reload that never returns) past its allowance: WATCHDOG=1 stops
    and watchdog_ping_withheld names the scheduler; unstuck, the pings come again."""
    monotonic = [1000.0]  # the service's monotonic clock, moved by hand past the allowance
    clock = Clock(wall=time.time, monotonic=lambda: monotonic[0])
    release, wedged = asyncio.Event(), asyncio.Event()
    real_reload = Service._reload

    async def wedged_reload(self: Service) -> None:
        wedged.set()
        await release.wait()
        await real_reload(self)

    monkeypatch.setattr(Service, "_reload", wedged_reload)
    zone = signed("ok.test.", expires_in=5 * DAY)
    with ZoneServer([zone]) as dns, NotifySocket(tmp_path / "notify.sock") as sd:
        config = load_config(write_config(tmp_path, dns.port, [zone]))
        systemd = SystemdNotifier({"NOTIFY_SOCKET": sd.address, "WATCHDOG_USEC": "200000"})
        with Store(tmp_path / "state.sqlite3") as store, capture_logs() as logs:
            service = Service(config, store, redactor=Redactor(), systemd=systemd, clock=clock)
            running = asyncio.create_task(service.run())
            try:
                await asyncio.to_thread(sd.wait_for, _is_ping, timeout=30)
                service.request_reload()
                await asyncio.wait_for(wedged.wait(), timeout=30)
                monotonic[0] += 61
                withheld = await _logged(logs, "watchdog_ping_withheld")
                await asyncio.to_thread(sd.sync)
                mark = len(sd.received())
                await asyncio.sleep(1.0)  # five ping intervals
                await asyncio.to_thread(sd.sync)
                assert not [m for m in sd.received()[mark:] if _is_ping(m)]
                release.set()
                await asyncio.to_thread(sd.wait_for, _is_ping, after=mark, timeout=30)
            finally:
                release.set()
                service.stop()
                assert await asyncio.wait_for(running, timeout=30) == 0
    assert withheld["reasons"] == ["scheduler: no progress for 61 s (allowed 60 s)"]
    assert service.supervisor.restarts == {}


def _is_ping(message: Any) -> bool:
    return bool(message.fields.get("WATCHDOG") == "1")


async def _logged(logs: list[dict[str, Any]], event: str) -> dict[str, Any]:
    """The first captured log entry named ``event``, once it came (30 s at most)."""
    for _ in range(3000):
        found = [e for e in logs if e["event"] == event]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {event} within 30 s")
