"""Run the real ``dnssec-watchdog --serve`` as a subprocess against signed zones on 127.0.0.1.

    zones = [signed("ok.test.", expires_in=5 * DAY), signed("warn.test.", expires_in=12 * HOUR)]
    with ZoneServer(zones) as dns, NotifySocket(tmp_path / "n.sock") as sd:
        config = write_config(tmp_path, dns.port, zones)
        with ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service:
            service.wait_for_log("zone_checked", zone="warn.test.")
            sd.wait_for(lambda m: "STATUS" in m)

The authoritative server is the pure-Python ``watchdog.demo.authserver.AuthServer`` running in
its own thread and event loop (or any server named in ``servers=``, such as the lab's NSD);
``NotifySocket`` is a real AF_UNIX datagram socket standing in for systemd's; ``UdpSink`` is a
resolver port that answers nothing and counts what it hears. The service's output (JSON lines,
since it is not a TTY) goes to a log file per run and is parsed as it comes. Every wait has a
timeout, leaving a ``with`` block stops what it started, and the service dies with the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import dns.zone
import pytest
from lab.process import die_with_parent
from notify_socket import NotifyMessage, NotifySocket

from watchdog.demo.authserver import AuthServer
from watchdog.demo.signer import DEMO_RECORDS, ds_records, make_keys, sign_zone

__all__ = [
    "DAY",
    "HOUR",
    "SERVICE_BIN",
    "NotifyMessage",
    "NotifySocket",
    "ServiceProcess",
    "SignedZone",
    "UdpSink",
    "WatchedZone",
    "ZoneServer",
    "config_text",
    "count_rows",
    "service_env",
    "signed",
    "wait_until",
    "write_config",
]

HOUR = 3600
DAY = 86400
# The console script of the venv running the tests: the same entry point systemd starts.
SERVICE_BIN = Path(sys.executable).with_name("dnssec-watchdog")
# Variables systemd sets that must not leak from the developer's shell into a test.
_SYSTEMD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")


# -- zones and the server that serves them --------------------------------------------------------


@dataclass(frozen=True)
class SignedZone:
    """A signed demo zone and the DS records (rdata) that anchor it."""

    name: str
    zone: dns.zone.Zone
    ds: tuple[str, ...]

    @property
    def anchor(self) -> tuple[str, ...]:
        """The DS records as a trust anchor: "name IN DS rdata" lines."""
        return tuple(f"{self.name} IN DS {d}" for d in self.ds)


@dataclass(frozen=True)
class WatchedZone:
    """A zone signed elsewhere (the lab's ldns-signzone), by name and trust anchor lines."""

    name: str
    anchor: tuple[str, ...]


def signed(name: str, *, expires_in: int, lifetime: int = 10 * DAY) -> SignedZone:
    """The demo records under ``name``, signed to expire ``expires_in`` seconds from now.

    With the default warn_before of 10 % of the lifetime, a 10-day signature warns 1 day
    before it expires: ``expires_in=12 * HOUR`` is a warning, ``5 * DAY`` is ok, and a
    negative value is strict_fail (Unbound's skew is then 1 day: not yet skew_exhausted).
    """
    keys = make_keys()
    expiration = int(time.time()) + expires_in
    zone = sign_zone(name, DEMO_RECORDS, keys, expiration - lifetime, expiration, "nsec")
    return SignedZone(name, zone, tuple(ds_records(keys, name)))


class ZoneServer:
    """An AuthServer on 127.0.0.1 serving ``zones``, in a thread with its own event loop."""

    def __init__(self, zones: Sequence[SignedZone]) -> None:
        self._server = AuthServer([z.zone for z in zones])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.port

    def __enter__(self) -> Self:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(10)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(10)
        self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class UdpSink:
    """A UDP port on 127.0.0.1 that answers nothing and counts what it is sent: the resolver of
    a test config, so a query to a resolver is seen, and never leaves loopback."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()

    def received(self) -> int:
        """How many datagrams arrived so far."""
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self._socket.recv(4096)
                count += 1
        return count


# -- the config -----------------------------------------------------------------------------------


def config_text(
    state: Path,
    resolver_port: int,
    zones: Sequence[SignedZone | WatchedZone],
    *,
    servers: Sequence[str] | None = None,
    settings: Mapping[str, str | int] | None = None,
    defaults: Mapping[str, str | int] | None = None,
    webhook_url: str | None = None,
    webhooks: Sequence[Mapping[str, str]] = (),
    watchdog_extra: str = "",
) -> str:
    """A service config watching ``zones`` with pinned anchors, asking only loopback.

    Every zone is asked on ``servers`` (default: 127.0.0.1:``resolver_port``, a ZoneServer
    that is also the resolver); ``settings`` adds or overrides ``[watchdog]`` keys and
    ``watchdog_extra`` appends raw TOML lines to it; ``defaults`` becomes a ``[defaults]``
    table; ``webhook_url`` is short for one generic webhook "ops" from warning on.
    """
    watchdog: dict[str, str | int] = {
        "state_path": str(state),
        "interval": "2s",
        "jitter": "0s",
        "resolver": f"127.0.0.1:{resolver_port}",
        "query_timeout": "1s",
        "retries": 1,
        "delivery_backoff_base": "1s",
        "delivery_backoff_cap": "2s",
        **(settings or {}),
    }
    extra = f"{watchdog_extra.rstrip()}\n" if watchdog_extra else ""
    parts = [_table("[watchdog]", watchdog) + extra]
    if defaults:
        parts.append(_table("[defaults]", defaults))
    servers = servers or [f"127.0.0.1:{resolver_port}"]
    for z in zones:
        anchor = "\n".join(z.anchor)
        parts.append(
            f"[[zone]]\nname = {json.dumps(z.name)}\nservers = {json.dumps(list(servers))}\n"
            f"trust_anchor = '''\n{anchor}\n'''\n"
        )
    if webhook_url is not None:
        ops = {"name": "ops", "kind": "generic", "url": webhook_url, "min_severity": "warning"}
        webhooks = [*webhooks, ops]
    parts.extend(_table("[[webhook]]", hook) for hook in webhooks)
    return "\n".join(parts)


def _table(header: str, keys: Mapping[str, str | int]) -> str:
    # JSON strings and integers are valid TOML values.
    return header + "\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def write_config(
    directory: Path,
    resolver_port: int,
    zones: Sequence[SignedZone | WatchedZone],
    *,
    name: str = "config.toml",
    state: Path | None = None,
    **options: Any,
) -> Path:
    """Write ``config_text`` to ``directory/name`` (state file next to it); return its path."""
    path = directory / name
    state = directory / "state.sqlite3" if state is None else state
    path.write_text(config_text(state, resolver_port, zones, **options))
    return path


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without systemd's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_VARS}
    env.update(extra or {})
    return env


# -- the service ----------------------------------------------------------------------------------


class ServiceProcess:
    """``dnssec-watchdog --serve --config PATH`` as a child that dies with the test process.

    Its stdout and stderr go, line by line, to ``raw``, to ``logs`` (the JSON ones, as dicts)
    and to the file ``log`` (by default a new ``service-N.log`` beside the config: one per
    run). Leaving the ``with`` block kills it if the test did not stop it.
    """

    def __init__(
        self, config: Path, *, env: Mapping[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.config = config
        self.log = _new_log(config.parent) if log is None else log
        self.env = service_env(env)
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        assert SERVICE_BIN.exists(), f"{SERVICE_BIN} is missing: install the package into the venv"
        out = self.log.open("a", encoding="utf-8")
        try:
            self._proc = subprocess.Popen(
                [str(SERVICE_BIN), "--serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                encoding="utf-8",
                errors="replace",
                env=self.env,
                preexec_fn=die_with_parent,
            )
        except BaseException:
            out.close()
            raise
        self._reader = threading.Thread(target=self._read, args=(self._proc, out), daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._require()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()

    def _require(self) -> subprocess.Popen[str]:
        if self._proc is None:
            raise RuntimeError("use 'with ServiceProcess(...) as service'")
        return self._proc

    def _read(self, proc: subprocess.Popen[str], out: IO[str]) -> None:
        assert proc.stdout is not None
        with out:
            for line in proc.stdout:
                out.write(line)
                out.flush()  # readable while it runs, and complete if the tests die
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                with self._changed:
                    self.raw.append(line)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def mark(self) -> int:
        """A position in the log: pass it as ``after`` to look only at later lines."""
        with self._changed:
            return len(self.logs)

    def events(self, event: str, after: int = 0, **fields: Any) -> list[dict[str, Any]]:
        """Log entries named ``event`` with these field values, from position ``after`` on."""
        with self._changed:
            return [e for e in self.logs[after:] if _matches(e, event, fields)]

    def wait_for_log(
        self, event: str, *, after: int = 0, timeout: float = 15.0, **fields: Any
    ) -> dict[str, Any]:
        """The first entry named ``event`` with these fields from ``after`` on, once it came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self.logs[after:] if _matches(e, event, fields)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                ended = self._reader is not None and not self._reader.is_alive()
                if remaining <= 0 or ended:  # ended: output closed, no more lines will come
                    raise AssertionError(
                        f"no {event} {fields} in the service log after {timeout} s "
                        f"(exit code {self._require().poll()}); log:\n{''.join(self.raw)}"
                    )
                self._changed.wait(min(remaining, 0.2))

    def died(self) -> str | None:
        """None while it runs; else how it ended, with the end of its log."""
        code = self._require().poll()
        if code is None:
            return None
        with self._changed:
            tail = "".join(self.raw[-15:])
        return f"the service exited with {code}:\n{tail}"

    def send(self, signum: signal.Signals) -> None:
        self._require().send_signal(signum)

    def children(self) -> list[int]:
        """The process ids of the service's child processes (its probe workers), from /proc."""
        pid = self._require().pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]

    def stop(self, timeout: float = 20.0, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send ``signum`` (SIGTERM: as systemd stops it) and wait for the exit code."""
        self.send(signum)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: no flush, no cleanup, as in a crash or an OOM kill; the exit code."""
        return self.stop(10.0, signal.SIGKILL)

    def wait(self, timeout: float = 20.0) -> int:
        """The exit code, once it exits (at most ``timeout`` s) and its output is read."""
        proc = self._require()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the service did not exit within {timeout} s; log:\n{''.join(self.raw)}"
            ) from None
        if self._reader is not None:
            self._reader.join(10)
        return code


def _new_log(directory: Path) -> Path:
    """A log file of its own for this run: the first service-N.log not there yet."""
    for n in range(1, 1000):
        path = directory / f"service-{n}.log"
        with contextlib.suppress(FileExistsError):
            path.open("x").close()
            return path
    raise RuntimeError(f"{directory} holds 999 service logs already")


def _matches(entry: Mapping[str, Any], event: str, fields: Mapping[str, Any]) -> bool:
    return entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items())


# -- waiting and looking --------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool],
    *,
    deadline: float,
    what: str,
    alive: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll ``condition`` until wall-clock ``deadline``; fail early if ``alive`` reports death
    (pass ``service.died``)."""
    while not condition():
        problem = alive()
        if problem is not None:
            pytest.fail(f"while waiting for {what}: {problem}")
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def count_rows(state: Path, table: str) -> int:
    """Rows in a table of the service's state file, read-only (WAL lets a reader in while it
    runs); 0 before the file or the table exists."""
    if not state.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
