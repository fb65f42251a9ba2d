"""The heartbeat against a real loopback receiver: pings while healthy, silence (and /fail)
while not, never a URL in the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from receivers import Receiver, RecordedRequest, Reply, free_port
from structlog.testing import capture_logs

from watchdog.config.parse import HeartbeatConfig
from watchdog.service.heartbeat import Heartbeat

TOKEN = "hb-5a1e-t0ken"  # the secret part of the ping URL


@dataclass
class Switch:
    """A health verdict the test flips."""

    healthy: bool = True
    reasons: tuple[str, ...] = ()

    def __call__(self) -> Switch:
        return self

    def fail(self, reason: str) -> None:
        self.healthy, self.reasons = False, (reason,)

    def heal(self) -> None:
        self.healthy, self.reasons = True, ()


@contextlib.asynccontextmanager
async def beating(config: HeartbeatConfig, health: Switch) -> AsyncIterator[Heartbeat]:
    heartbeat = Heartbeat(config, health)
    task = asyncio.create_task(heartbeat.run())
    try:
        yield heartbeat
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def pings(receiver: Receiver, path: str) -> list[RecordedRequest]:
    return [r for r in receiver.requests if r.path == path]


async def wait_pings(receiver: Receiver, path: str, count: int, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(pings(receiver, path)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(pings(receiver, path))} pings of {path}, not {count}")
        await asyncio.sleep(0.02)


async def wait_logged(logs: list[dict[str, object]], event: str, count: int = 1) -> None:
    deadline = asyncio.get_running_loop().time() + 10.0
    while sum(e["event"] == event for e in logs) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} {event} in 10 s: {logs}")
        await asyncio.sleep(0.02)


async def test_pings_while_healthy_stops_when_not_and_resumes() -> None:
    """Healthy: GET the URL each interval. Unhealthy: no ping, the fail URL instead. Then back."""
    health = Switch()
    with Receiver() as receiver, capture_logs() as logs:
        ok, fail = f"/{TOKEN}", f"/{TOKEN}/fail"
        config = HeartbeatConfig(receiver.url(ok), 1, "GET", receiver.url(fail))
        async with beating(config, health) as heartbeat:
            await wait_pings(receiver, ok, 2)
            health.fail("scheduler: no progress for 99 s (allowed 60 s)")
            await wait_pings(receiver, fail, 1)  # a tick saw it unhealthy
            before = len(pings(receiver, ok))
            await wait_pings(receiver, fail, 3)  # two more ticks
            assert len(pings(receiver, ok)) == before
            health.heal()
            await wait_pings(receiver, ok, before + 2)
            assert heartbeat.sent >= before + 1  # the last may still be on its way back
    assert all(r.method == "GET" and r.body == b"" for r in pings(receiver, ok))
    assert all(r.method == "GET" for r in pings(receiver, fail))
    events = [e["event"] for e in logs]
    assert "heartbeat_withheld" in events
    assert "heartbeat_resumed" in events
    withheld = next(e for e in logs if e["event"] == "heartbeat_withheld")
    assert withheld["reasons"] == ["scheduler: no progress for 99 s (allowed 60 s)"]
    assert TOKEN not in repr(logs)


async def test_post_sends_the_reasons_to_the_fail_url() -> None:
    """method = POST: the ping carries "ok", the fail ping the reasons, one a line."""
    health = Switch()
    with Receiver() as receiver:
        config = HeartbeatConfig(receiver.url("/up"), 1, "POST", receiver.url("/up/fail"))
        async with beating(config, health):
            await wait_pings(receiver, "/up", 1)
            health.fail("zones: 2 zones not checked for 40 s")
            await wait_pings(receiver, "/up/fail", 1)
    assert pings(receiver, "/up")[0].method == "POST"
    assert pings(receiver, "/up")[0].body == b"ok\n"
    assert pings(receiver, "/up/fail")[0].body == b"zones: 2 zones not checked for 40 s\n"


async def test_without_fail_url_unhealthy_is_silence() -> None:
    """With no fail_url, an unhealthy watchdog sends nothing at all."""
    health = Switch()
    health.fail("webhook ops: stuck")
    with Receiver() as receiver, capture_logs() as logs:
        async with beating(HeartbeatConfig(receiver.url(f"/{TOKEN}"), 1), health):
            await wait_logged(logs, "heartbeat_withheld")
            await asyncio.sleep(2.5)  # room for two more ticks to misbehave
            silent = receiver.requests
            health.heal()
            await wait_pings(receiver, f"/{TOKEN}", 1)
    assert silent == []
    withheld_logged = [e for e in logs if e["event"] == "heartbeat_withheld"]
    assert len(withheld_logged) == 1  # logged once per change, not every tick


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(500), {"status": 500}),
        (Reply(302, {"Location": f"http://127.0.0.1:9/{TOKEN}"}), {"status": 302}),
        (Reply(404), {"status": 404}),
    ],
)
async def test_a_refused_ping_is_logged_without_the_url_and_retried(
    reply: Reply, expected: dict[str, int]
) -> None:
    """A non-2xx answer (redirects are not followed) is heartbeat_failed with its status only."""
    with Receiver(default=reply) as receiver, capture_logs() as logs:
        async with beating(HeartbeatConfig(receiver.url(f"/{TOKEN}"), 1), Switch()) as heartbeat:
            await wait_pings(receiver, f"/{TOKEN}", 2)  # tried again next interval
    failed = [e for e in logs if e["event"] == "heartbeat_failed"]
    assert failed
    assert failed[0]["status"] == expected["status"]
    assert failed[0]["ping"] == "heartbeat"
    assert heartbeat.sent == 0
    assert TOKEN not in repr(logs)
    assert len(pings(receiver, f"/{TOKEN}")) == len(receiver.requests)  # no redirect followed


async def test_an_unreachable_monitor_is_logged_and_the_beat_goes_on() -> None:
    """Connection refused is heartbeat_failed naming the error type; the loop keeps going."""
    url = f"http://127.0.0.1:{free_port()}/{TOKEN}"
    with capture_logs() as logs:
        async with beating(HeartbeatConfig(url, 1), Switch()):
            await wait_logged(logs, "heartbeat_failed", 2)
    failed = [e for e in logs if e["event"] == "heartbeat_failed"]
    assert failed[0]["error"] == "ConnectError"
    assert TOKEN not in repr(logs)
