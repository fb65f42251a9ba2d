"""The supervisor: crashed tasks are logged, counted and restarted; health sees wedged parts."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from watchdog.service.supervisor import Health, Supervisor


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_crashed_task_is_logged_counted_and_restarted() -> None:
    """A task that raises is logged as task_crashed (name, type, message), counted, restarted."""
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise KeyError("lost")
        done.set()

    supervisor = Supervisor(backoff_base=0.01, backoff_cap=0.02)
    with structlog.testing.capture_logs() as logs:
        task = supervisor.spawn("lane", flaky)
        async with asyncio.timeout(10):
            await task
    assert done.is_set() and len(runs) == 3
    assert supervisor.restarts == {"lane": 2}
    crashes = [e for e in logs if e["event"] == "task_crashed"]
    assert [(e["task"], e["error_type"], e["error"]) for e in crashes] == [
        ("lane", "KeyError", "'lost'"),
        ("lane", "KeyError", "'lost'"),
    ]
    assert [e["restart_in"] for e in crashes] == [0.01, 0.02]


async def test_backoff_doubles_to_the_cap() -> None:
    """Consecutive crashes wait base, 2 base, 4 base ... but never longer than the cap."""
    runs = 0

    async def always() -> None:
        nonlocal runs
        runs += 1
        if runs < 6:
            raise RuntimeError("again")

    supervisor = Supervisor(backoff_base=0.001, backoff_cap=0.004)
    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(10):
            await supervisor.spawn("t", always)
    delays = [e["restart_in"] for e in logs if e["event"] == "task_crashed"]
    assert delays == [0.001, 0.002, 0.004, 0.004, 0.004]


async def test_a_task_that_returns_is_not_restarted_and_close_cancels_the_rest() -> None:
    """Returning ends a task for good; close() cancels what still runs."""
    forever = asyncio.Event()

    async def quick() -> None:
        return None

    async def blocked() -> None:
        await forever.wait()

    supervisor = Supervisor()
    await supervisor.spawn("quick", quick)
    slow = supervisor.spawn("blocked", blocked)
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await supervisor.close()
    assert slow.cancelled()
    assert supervisor.restarts == {}


def test_health_names_a_component_without_recent_progress() -> None:
    """A watched component silent for longer than allowed makes the service unhealthy."""
    clock = _Clock()
    supervisor = Supervisor(clock=clock)
    supervisor.watch("scheduler", 30)
    supervisor.watch("webhook:ops", 120)
    clock.now += 31
    supervisor.progress("webhook:ops")
    health = supervisor.health()
    assert not health.healthy
    assert health.reasons == ("scheduler: no progress for 31 s (allowed 30 s)",)
    supervisor.progress("scheduler")
    assert supervisor.health() == Health(True, ())
    supervisor.unwatch("scheduler")
    assert supervisor.health(clock.now + 121).reasons == (
        "webhook:ops: no progress for 121 s (allowed 120 s)",
    )


def test_health_checks_add_reasons_and_a_broken_check_is_a_reason() -> None:
    """Extra health rules add their reason; one that raises counts as failing, named."""
    clock = _Clock()
    supervisor = Supervisor(clock=clock)
    supervisor.add_check("zones", lambda now: "2 zones overdue" if now > 1005 else None)

    def broken(now: float) -> str | None:
        raise ZeroDivisionError

    assert supervisor.health().healthy
    clock.now = 1006
    assert supervisor.health().reasons == ("zones: 2 zones overdue",)
    supervisor.add_check("broken", broken)
    assert supervisor.health().reasons == (
        "broken: health check failed (ZeroDivisionError)",
        "zones: 2 zones overdue",
    )
    supervisor.remove_check("broken")
    supervisor.remove_check("zones")
    assert supervisor.health().healthy


async def test_a_spawned_watch_ends_with_its_task() -> None:
    """progress_within watches a task while it runs; its end removes the watch."""
    clock = _Clock()
    release = asyncio.Event()

    async def lane() -> None:
        await release.wait()

    supervisor = Supervisor(clock=clock)
    task = supervisor.spawn("lane", lane, progress_within=5)
    await asyncio.sleep(0)
    assert not supervisor.health(clock.now + 6).healthy
    release.set()
    await task
    assert supervisor.health(clock.now + 6).healthy


@pytest.mark.parametrize("crash", [ValueError("x"), OSError(5, "io")])
async def test_a_crash_message_is_bounded(crash: Exception) -> None:
    """The logged message is cut to 300 characters whatever the exception says."""
    big = type(crash)("y" * 5000)
    first = True

    async def once() -> None:
        nonlocal first
        if first:
            first = False
            raise big

    supervisor = Supervisor(backoff_base=0.001)
    with structlog.testing.capture_logs() as logs:
        await supervisor.spawn("t", once)
    (crashed,) = [e for e in logs if e["event"] == "task_crashed"]
    assert len(crashed["error"]) <= 300
