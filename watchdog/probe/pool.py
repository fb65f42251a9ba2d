"""Probe worker processes: the prober's work spread over several cores.

One asyncio process checks zones at ~3 ms of CPU each (sockets, decoding, verification;
BENCHMARKS.md), so a 10,000-zone cycle is bound to one core. With ``probe_workers = N`` the
zones are shared among N probers: the service process's own and N - 1 child processes
(``python -m watchdog.probe.worker``), each with its own event loop and ``Prober``. The service
process keeps what must stay in one place: judging, alert states, the SQLite store, webhooks
and the schedule.

- Each zone goes to the prober chosen by a stable hash of its name, so every prober sees the
  same zones each cycle and its caches (verified signatures, trust anchors) keep hitting. The
  service process takes a smaller share (LOCAL_WEIGHT): it judges and stores every zone too.
- Only plain data crosses: ``ZoneTarget`` out, ``ZoneObservation`` back, pickled in frames of a
  4-byte length and the pickle, over the child's stdin and stdout. The child's log lines go to
  the stderr it shares with the service (the journal under systemd), in the service's format.
- A worker takes the zones of smaller batches first: a zone checked at its predicted crossing
  is not queued behind a 10,000-zone cycle.
- A worker that dies fails the zones it still had (``ProbeWorkerError``, and the service checks
  them again after its retry delay) and is started again for the next batch. Closing the pool
  closes the workers' stdin, which ends them; one that does not end in time is killed. A worker
  whose service dies sees its stdin close and ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import pickle
import struct
import sys
import zlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

from watchdog.config.targets import ProbeSettings, ZoneTarget
from watchdog.engine.observations import ZoneObservation
from watchdog.errors import WatchdogError
from watchdog.probe import dnsio
from watchdog.probe.prober import Prober
from watchdog.service.supervisor import Spawn, spawn_plain

__all__ = [
    "LOCAL_WEIGHT",
    "ProbePool",
    "ProbeWorkerError",
    "counts",
    "encode_frame",
    "read_frame",
    "share",
    "tune_gc",
]

# The cyclic garbage collector's thresholds for long-running processes, the service and its
# workers (gc.set_threshold). With CPython's defaults (700, 10, 10) a 10,000-zone cycle spent
# 8-13 s in the collector (14-16 full collections), and still 5-6 s once batches were stored in
# chunks (bench/, BENCHMARKS.md): a check allocates millions of short-lived containers that
# refcounting frees anyway, and every full collection walks the ~300,000 long-lived objects
# (config, alert states, verification caches). A young generation of 50,000 lets them die
# before the collector looks; full collections stay gated by CPython's rule of 25 % new
# long-lived objects, and become rare. Measured: 0.1-0.5 s a cycle, no full collection in three.
_GC_THRESHOLDS = (50_000, 20, 100)

# The service process's share of the zones, against a worker's 1: besides probing it judges,
# stores and logs every zone and reads the workers' answers. Measured at 10,000 zones with two
# probers (steady cycles): 1.0 gave 20.4-22.0 s, 0.6 18.2-18.6 s, 0.4 19.7-20.0 s.
LOCAL_WEIGHT = 0.6

_LENGTH = struct.Struct("!I")
_STOP_GRACE = 5.0  # seconds a worker has to end after its stdin closes, then it is killed
_START_TIMEOUT = 30.0  # seconds for a new worker to say it is ready


class ProbeWorkerError(WatchdogError):
    """A probe worker process could not be started, or died with zones still to check."""


def tune_gc() -> None:
    """The collector's thresholds for a long-running process (see _GC_THRESHOLDS)."""
    gc.set_threshold(*_GC_THRESHOLDS)


def counts(prober: Prober) -> dict[str, int]:
    """This process's counters: questions sent (UDP, TCP) and ``prober``'s public-key
    operations, for benchmarks (a pool sums them over its processes)."""
    return {"udp": dnsio.sent.udp, "tcp": dnsio.sent.tcp, "verified": prober.verifier.verified}


def share(zone: str, probers: int, local_weight: float = LOCAL_WEIGHT) -> int:
    """The prober that checks ``zone`` (0: the service process): the same one every cycle, by
    the CRC-32 of the name, with the service process's share ``local_weight`` of a worker's."""
    point = zlib.crc32(zone.encode()) / 2**32 * (probers - 1 + local_weight)
    return 0 if point < local_weight else min(probers - 1, 1 + int(point - local_weight))


# -- the service's side ------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    number: int
    process: asyncio.subprocess.Process
    reader: asyncio.Task[None] | None = None
    stats: asyncio.Future[dict[str, int]] | None = None
    alive: bool = True


@dataclass(eq=False)
class _Batch:
    results: asyncio.Queue[list[tuple[int, ZoneObservation]] | BaseException] = field(
        default_factory=asyncio.Queue
    )
    pending: dict[int, int] = field(default_factory=dict)  # worker number -> zones not back


class ProbePool:
    """``probe_each`` over ``workers`` probers: this process's own and ``workers - 1`` child
    processes; the contract of ``Prober.probe_each``.

    Use as ``async with ProbePool(settings, 2, log_format="json") as pool``. This process
    probes a share too (it has the judging and storing of every zone besides, a tenth of the
    work of probing them), which spares a child's memory. The settings' concurrency limits are
    divided among the probers, so a server sees no more questions at once than with one.
    """

    def __init__(
        self,
        settings: ProbeSettings,
        workers: int,
        *,
        log_format: str = "auto",
        log_level: str = "info",
        spawn: Spawn = spawn_plain,
        local_weight: float = LOCAL_WEIGHT,
    ) -> None:
        if workers < 2:
            raise ValueError(f"a pool has at least 2 probers, got {workers}")
        self.settings = replace(
            settings,
            max_concurrency=max(1, settings.max_concurrency // workers),
            per_server_concurrency=max(1, settings.per_server_concurrency // workers),
        )
        self.size = workers
        self.local_weight = local_weight  # this process's share against a worker's 1
        self._logging = (log_format, log_level)
        self._spawn = spawn
        self._local = Prober(self.settings)  # share 0
        self._workers: dict[int, _Worker] = {}  # shares 1 .. size - 1
        self._batches: dict[int, _Batch] = {}
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Self:
        await self._local.__aenter__()
        try:
            for number in range(1, self.size):
                await self._worker(number)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End every worker (close its stdin, wait a little, kill what is left), then the
        local prober."""
        workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(_stop(w) for w in workers))
        await self._local.__aexit__(None, None, None)

    @property
    def pids(self) -> list[int]:
        """The process ids of the running worker processes (for tests and benchmarks)."""
        return [w.process.pid for w in self._workers.values() if w.alive]

    async def probe_each(
        self, targets: Sequence[ZoneTarget]
    ) -> AsyncGenerator[tuple[int, ZoneObservation], None]:
        """Probe all ``targets``, each in its share's prober; yield (index, observation) as
        each is done.

        A worker that dies or fails meanwhile raises ``ProbeWorkerError`` here once the
        results that did arrive are yielded; leaving early tells the workers to drop the rest.
        """
        parts: dict[int, list[tuple[int, ZoneTarget]]] = {}
        for index, target in enumerate(targets):
            prober = share(target.zone, self.size, self.local_weight)
            parts.setdefault(prober, []).append((index, target))
        batch_id = next(self._ids)
        batch = _Batch()
        self._batches[batch_id] = batch
        remaining = len(targets)
        here: asyncio.Task[None] | None = None
        try:
            for number, part in sorted(parts.items()):
                if number == 0:
                    here = asyncio.create_task(self._probe_here(batch, part))
                    continue
                worker = await self._worker(number)
                batch.pending[number] = len(part)
                _send(worker, ("probe", batch_id, len(targets), part))
            while remaining:
                item = await batch.results.get()
                if isinstance(item, BaseException):
                    raise item
                for pair in item:
                    remaining -= 1
                    yield pair
        finally:
            del self._batches[batch_id]
            if here is not None:
                here.cancel()
                await asyncio.gather(here, return_exceptions=True)
            if remaining:
                for number in batch.pending:
                    holder = self._workers.get(number)
                    if holder is not None and holder.alive:
                        _send(holder, ("cancel", batch_id))

    async def _probe_here(self, batch: _Batch, part: list[tuple[int, ZoneTarget]]) -> None:
        """Share 0, probed in this process; a failure goes to the batch as a worker's does."""
        try:
            targets = [target for _, target in part]
            async with contextlib.aclosing(self._local.probe_each(targets)) as done:
                async for i, observation in done:
                    batch.results.put_nowait([(part[i][0], observation)])
        except Exception as exc:
            batch.results.put_nowait(exc)

    async def stats(self) -> dict[str, int]:
        """Counters summed over the probers: questions sent (UDP, TCP), public-key operations.

        For benchmarks: a worker started again begins from zero.
        """
        total = counts(self._local)
        for worker in list(self._workers.values()):
            if not worker.alive:
                continue
            worker.stats = asyncio.get_running_loop().create_future()
            _send(worker, ("stats",))
            async with asyncio.timeout(_START_TIMEOUT):
                theirs = await worker.stats
            for key, value in theirs.items():
                total[key] += value
        return total

    async def _worker(self, number: int) -> _Worker:
        """The running worker ``number``, started (again) if need be."""
        worker = self._workers.get(number)
        if worker is not None and worker.alive:
            return worker
        if worker is not None:
            _log().warning(
                "probe_worker_restarting", worker=number, exit_code=worker.process.returncode
            )
        try:
            process = await asyncio.create_subprocess_exec(
                # -P: not the working directory first on sys.path (the unit's is /).
                sys.executable,
                "-P",
                "-m",
                "watchdog.probe.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ProbeWorkerError(f"probe worker {number} could not start: {exc}") from exc
        worker = _Worker(number, process)
        _send(worker, ("start", self.settings, self._logging))
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                hello = await read_frame(_stdout(process))
        except (TimeoutError, EOFError, asyncio.IncompleteReadError) as exc:
            await _stop(worker)
            raise ProbeWorkerError(
                f"probe worker {number} did not start (exit code {process.returncode})"
            ) from exc
        if hello != ("ready",):
            await _stop(worker)
            raise ProbeWorkerError(f"probe worker {number} did not start: {hello!r:.200}")
        worker.reader = self._spawn(f"probe-reader:{number}", functools.partial(self._read, worker))
        self._workers[number] = worker
        return worker

    async def _read(self, worker: _Worker) -> None:
        """Hand each frame from ``worker`` to its batch, until the worker ends.

        A crash here (a bug handling a frame) ends the worker too, which fails the zones it
        still had (checked again later) and starts it anew for the next batch; the crash goes
        on to the supervisor, whose restart of this reader finds the worker ended.
        """
        if not worker.alive:
            return
        try:
            await self._read_frames(worker)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await self._ended(worker)
            raise
        await self._ended(worker)

    async def _read_frames(self, worker: _Worker) -> None:
        while True:
            try:
                message = await read_frame(_stdout(worker.process))
            except (EOFError, asyncio.IncompleteReadError, ConnectionError):
                return
            except Exception as exc:  # a frame we cannot read: the worker is not to be trusted
                _log().error("probe_worker_unreadable", worker=worker.number, error=repr(exc))
                worker.process.kill()
                return
            kind = message[0]
            if kind == "results":
                for batch_id, results in message[1].items():
                    batch = self._batches.get(batch_id)
                    if batch is not None:  # else: a batch its caller left early
                        batch.pending[worker.number] -= len(results)
                        batch.results.put_nowait(results)
            elif kind == "failed":
                batch = self._batches.get(message[1])
                if batch is not None:
                    batch.results.put_nowait(
                        ProbeWorkerError(f"probe worker {worker.number}: {message[2]}")
                    )
            elif kind == "stats" and worker.stats is not None and not worker.stats.done():
                worker.stats.set_result(message[1])

    async def _ended(self, worker: _Worker) -> None:
        worker.alive = False
        code = await worker.process.wait()
        died = ProbeWorkerError(f"probe worker {worker.number} ended (exit code {code})")
        for batch in self._batches.values():
            if batch.pending.get(worker.number):
                batch.results.put_nowait(died)
        if worker.stats is not None and not worker.stats.done():
            worker.stats.set_exception(died)


def _send(worker: _Worker, message: tuple[Any, ...]) -> None:
    stdin = worker.process.stdin
    assert stdin is not None
    if not stdin.is_closing():  # else the worker is ending; its reader fails what it had
        stdin.write(encode_frame(message))


def encode_frame(message: tuple[Any, ...]) -> bytes:
    """One message as a frame: its pickle's length (4 bytes, big-endian), then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def read_frame(stream: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next message; IncompleteReadError at the end of the stream."""
    (length,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    # Only this service and its own workers write to these pipes (the child's stdin and
    # stdout), so what is unpickled here was pickled by this same code.
    message = pickle.loads(await stream.readexactly(length))  # noqa: S301
    if not isinstance(message, tuple) or not message:
        raise ValueError(f"not a message: {message!r:.200}")
    return message


def _stdout(process: asyncio.subprocess.Process) -> asyncio.StreamReader:
    assert process.stdout is not None
    return process.stdout


async def _stop(worker: _Worker) -> None:
    worker.alive = False
    stdin = worker.process.stdin
    if stdin is not None and not stdin.is_closing():
        stdin.close()
    try:
        async with asyncio.timeout(_STOP_GRACE):
            await worker.process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        await worker.process.wait()
    if worker.reader is not None:
        await asyncio.gather(worker.reader, return_exceptions=True)


def _log() -> Any:
    import structlog

    return structlog.get_logger(__name__)
