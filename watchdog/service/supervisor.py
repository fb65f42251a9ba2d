"""Supervision of the service's long-lived tasks, and the service's health.

A long-lived asyncio task that raises ends quietly: the exception waits in the task object, and
the process looks alive while part of it is gone (issue 17: one receiver's bad Retry-After
stopped every webhook, and systemd kept hearing WATCHDOG=1). Every long-lived task (the
scheduler loop, each webhook lane, each probe worker's reader, the systemd pinger, the metrics
server) therefore runs under one ``Supervisor``:

- an unexpected exception is logged as ``task_crashed`` (the task's name, the exception's type
  and message; the log's redactor scrubs configured secrets), counted per task
  (``restarts``), and the task is started again after a backoff: ``backoff_base`` seconds
  doubling to ``backoff_cap``, back to the base once a run lasted ``stable_after`` seconds;
- a task that returns is done (its owner stopped it); cancelling it cancels it.

Health: a component registered with ``watch(name, within)`` (or spawned with
``progress_within``) must call ``progress(name)`` at least every ``within`` seconds; one that did
not is wedged. ``health()`` is healthy only while no component is wedged and every extra check
(``add_check``) passes; its reasons say which and why. The systemd pinger sends WATCHDOG=1 only
while healthy, so systemd restarts a wedged service (sd_watchdog_enabled(3)); /healthz and the
heartbeat ask the same question.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["Factory", "Health", "HealthCheck", "Spawn", "Supervisor", "spawn_plain"]

log = structlog.get_logger(__name__)

Factory = Callable[[], Coroutine[Any, Any, None]]
"""Makes a fresh coroutine of the task: called again for each restart."""

Spawn = Callable[[str, Factory], "asyncio.Task[None]"]
"""``spawn(name, factory)``: how a module that must not depend on the service (the probe pool,
webhook delivery) starts its long-lived tasks. ``Supervisor.spawn`` is one; ``spawn_plain``
(no supervision) serves one-shot runs such as ``--check``."""

HealthCheck = Callable[[float], str | None]
"""An extra health rule: given the monotonic now, a reason the service is unhealthy, or None."""

_MESSAGE_LIMIT = 300


def spawn_plain(name: str, factory: Factory) -> asyncio.Task[None]:
    """A task without supervision: a crash ends it (for runs that end anyway)."""
    return asyncio.create_task(factory(), name=name)


@dataclass(frozen=True, slots=True)
class Health:
    """Whether every component made progress recently; ``reasons`` say what is wrong."""

    healthy: bool
    reasons: tuple[str, ...] = ()


@dataclass(slots=True)
class _Watch:
    within: float
    last: float


class Supervisor:
    """Runs named long-lived coroutines, restarts them after a crash, and judges health.

    ``clock`` is monotonic seconds (health and backoff reset); sleeping uses the event loop.
    """

    def __init__(
        self,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        stable_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = backoff_base
        self._cap = backoff_cap
        self._stable_after = stable_after
        self._clock = clock
        self._restarts: dict[str, int] = {}
        self._watches: dict[str, _Watch] = {}
        self._checks: dict[str, HealthCheck] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- tasks ----------------------------------------------------------------------------------

    def spawn(
        self, name: str, factory: Factory, *, progress_within: float | None = None
    ) -> asyncio.Task[None]:
        """Start ``factory()`` as task ``name``, restarted after each crash.

        With ``progress_within`` the task is also watched: it must call ``progress(name)`` at
        least that often while it runs (the watch ends with the task).
        """
        if progress_within is not None:
            self.watch(name, progress_within)
        task = asyncio.create_task(self._keep(name, factory, progress_within), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _keep(self, name: str, factory: Factory, watched: float | None) -> None:
        crashes = 0
        try:
            while True:
                started = self._clock()
                try:
                    await factory()
                    return
                except Exception as exc:  # the point of a supervisor
                    crashes = 1 if self._clock() - started >= self._stable_after else crashes + 1
                    delay = min(self._cap, self._base * 2.0 ** min(crashes - 1, 30))
                    self._restarts[name] = self._restarts.get(name, 0) + 1
                    log.error(
                        "task_crashed",
                        task=name,
                        error_type=type(exc).__name__,
                        error=str(exc)[:_MESSAGE_LIMIT],
                        restarts=self._restarts[name],
                        restart_in=delay,
                        exc_info=exc,
                    )
                    del exc  # no reference cycle through the traceback while sleeping
                await asyncio.sleep(delay)
                log.info("task_restarted", task=name, restarts=self._restarts[name])
        finally:
            if watched is not None:
                self.unwatch(name)

    @property
    def restarts(self) -> Mapping[str, int]:
        """Crashes (each followed by a restart) per task name, since the supervisor started."""
        return dict(self._restarts)

    async def close(self) -> None:
        """Cancel every task still running and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- health ---------------------------------------------------------------------------------

    def watch(self, name: str, within: float) -> None:
        """Expect ``progress(name)`` at least every ``within`` seconds from now on."""
        self._watches[name] = _Watch(within, self._clock())

    def unwatch(self, name: str) -> None:
        self._watches.pop(name, None)

    def progress(self, name: str) -> None:
        """Component ``name`` made progress now (ignored for a name not watched)."""
        watch = self._watches.get(name)
        if watch is not None:
            watch.last = self._clock()

    def add_check(self, name: str, check: HealthCheck) -> None:
        """An extra rule of health (a zone overdue, a lane stuck past its budget)."""
        self._checks[name] = check

    def remove_check(self, name: str) -> None:
        self._checks.pop(name, None)

    def health(self, now: float | None = None) -> Health:
        """Healthy while every watched component made progress within its interval and every
        extra check passes; ``now`` is monotonic seconds (the supervisor's clock by default)."""
        at = self._clock() if now is None else now
        reasons = [
            f"{name}: no progress for {at - w.last:.0f} s (allowed {w.within:g} s)"
            for name, w in sorted(self._watches.items())
            if at - w.last > w.within
        ]
        for name, check in sorted(self._checks.items()):
            try:
                reason = check(at)
            except Exception as exc:  # a broken rule must not stop the pinger
                reason = f"health check failed ({type(exc).__name__})"
            if reason is not None:
                reasons.append(f"{name}: {reason}")
        return Health(not reasons, tuple(reasons))
