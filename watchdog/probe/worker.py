"""One probe worker process: ``python -m watchdog.probe.worker``, started by the service's
``ProbePool`` (workers.py) when ``probe_workers`` > 1, never by hand.

It reads frames from stdin: first ("start", settings, (log format, level)), then ("probe",
batch, batch size, [(index, ZoneTarget), ...]), ("cancel", batch) and ("stats",). It probes with
one ``Prober`` in its own event loop, zones of smaller batches first, and writes ("ready",),
("results", {batch: [(index, ZoneObservation), ...]}), ("failed", batch, text) and ("stats",
counts) to stdout. Its log lines go to the stderr it shares with the service. It ends when
stdin closes; SIGINT and SIGTERM are the service's to act on, not its.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from watchdog.config.targets import ZoneTarget
from watchdog.engine.observations import ZoneObservation
from watchdog.probe.pool import counts, encode_frame, read_frame, tune_gc
from watchdog.probe.prober import Prober
from watchdog.service.supervisor import Supervisor

__all__ = ["main"]


class _Serve:
    """One worker: take zones from stdin, probe them, write observations to stdout."""

    def __init__(self, prober: Prober, out: asyncio.StreamWriter) -> None:
        self.prober = prober
        self.out = out
        # (batch size, batch id, index, target): the zones of smaller batches first.
        self.work: asyncio.PriorityQueue[tuple[int, int, int, ZoneTarget]] = asyncio.PriorityQueue()
        self.cancelled: set[int] = set()
        self.done: dict[int, list[tuple[int, ZoneObservation]]] = {}
        self.flush_scheduled = False

    async def lane(self) -> None:
        while True:
            _, batch_id, index, target = await self.work.get()
            if batch_id in self.cancelled:
                continue
            try:
                observation = await self.prober.probe(target)
            except Exception as exc:  # a bug in the prober: the service retries the batch
                _log().exception("probe_failed", zone=target.zone)
                self.write(("failed", batch_id, f"{target.zone}: {exc!r}"))
                continue
            self.done.setdefault(batch_id, []).append((index, observation))
            if not self.flush_scheduled:  # one frame for all that finish in this loop pass
                self.flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        done, self.done = self.done, {}
        if done:
            self.write(("results", done))

    def take(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "probe":
            _, batch_id, size, part = message
            for index, target in part:
                self.work.put_nowait((size, batch_id, index, target))
        elif kind == "cancel":
            self.cancelled.add(message[1])
        elif kind == "stats":
            self.write(("stats", counts(self.prober)))

    def write(self, message: tuple[Any, ...]) -> None:
        self.out.write(encode_frame(message))


def _log() -> Any:
    import structlog

    return structlog.get_logger(__name__)


async def _serve() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    out = asyncio.StreamWriter(transport, protocol, None, loop)

    async def frame() -> tuple[Any, ...] | None:
        try:
            return await read_frame(reader)
        except asyncio.IncompleteReadError:
            return None  # stdin closed: the service is done with us

    start = await frame()
    if start is None or start[0] != "start":
        return 0
    settings, (log_format, log_level) = start[1], start[2]
    from watchdog.service.logsetup import configure_logging

    configure_logging(log_format, level=logging.getLevelNamesMapping()[log_level.upper()])
    # Lanes run under a supervisor: one ended by a bug would leave its zones unanswered and
    # the service's batch waiting; restarted, it takes the next zone (task_crashed on stderr).
    supervisor = Supervisor()
    async with Prober(settings) as prober:
        serve = _Serve(prober, out)
        for number in range(settings.max_concurrency):
            supervisor.spawn(f"probe-lane:{number}", serve.lane)
        serve.write(("ready",))
        try:
            while (message := await frame()) is not None:
                serve.take(message)
                await out.drain()
        finally:
            await supervisor.close()
    return 0


def main() -> int:
    """One probe worker, driven by its service over stdio."""
    # Ctrl-C in a terminal and systemd's stop reach the whole process group: the service
    # decides when its workers end (by closing their stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_gc()
    return asyncio.run(_serve())


if __name__ == "__main__":
    sys.exit(main())
