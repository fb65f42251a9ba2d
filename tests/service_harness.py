"""Run the real ``dnssec-watchdog --serve`` as a subprocess against signed zones on 127.0.0.1.

    zones = [signed("ok.test.", expires_in=5 * DAY), signed("warn.test.", expires_in=12 * HOUR)]
    with ZoneServer(zones) as dns, NotifySocket(tmp_path / "n.sock") as sd:
        config = write_config(tmp_path, dns.port, zones)
        with ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service:
            service.wait_for_log("zone_checked", zone="warn.test.")
            sd.wait_for(lambda m: "STATUS" in m)

The authoritative server is the pure-Python ``watchdog.demo.authserver.AuthServer`` running in
its own thread and event loop; ``NotifySocket`` is a real AF_UNIX datagram socket standing in
for systemd's; the service's stderr (JSON lines, since it is not a TTY) is parsed as it comes.
Every wait has a timeout, and leaving a ``with`` block stops what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import dns.zone

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
    "ZoneServer",
    "config_text",
    "service_env",
    "signed",
    "write_config",
]

HOUR = 3600
DAY = 86400
# The console script of the venv running the tests: the same entry point systemd starts.
SERVICE_BIN = Path(sys.executable).with_name("dnssec-watchdog")
# Variables systemd sets that must not leak from the developer's shell into a test.
_SYSTEMD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")


@dataclass(frozen=True)
class SignedZone:
    """A signed demo zone and the DS records that anchor it."""

    name: str
    zone: dns.zone.Zone
    ds: tuple[str, ...]


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


def config_text(
    state: Path,
    resolver_port: int,
    zones: Sequence[SignedZone],
    *,
    webhook_url: str | None = None,
    interval: str = "2s",
    watchdog_extra: str = "",
) -> str:
    """A service config watching ``zones`` on 127.0.0.1:``resolver_port`` with pinned anchors."""
    parts = [
        f"""\
[watchdog]
state_path = "{state}"
interval = "{interval}"
jitter = "0s"
resolver = "127.0.0.1:{resolver_port}"
query_timeout = "1s"
retries = 1
delivery_backoff_base = "1s"
delivery_backoff_cap = "2s"
{watchdog_extra}
"""
    ]
    for z in zones:
        anchor = "\n".join(f"{z.name} IN DS {d}" for d in z.ds)
        parts.append(
            f"""
[[zone]]
name = "{z.name}"
servers = ["127.0.0.1:{resolver_port}"]
trust_anchor = '''
{anchor}
'''
"""
        )
    if webhook_url is not None:
        parts.append(
            f"""
[[webhook]]
name = "ops"
kind = "generic"
url = "{webhook_url}"
min_severity = "warning"
"""
        )
    return "".join(parts)


def write_config(
    directory: Path,
    resolver_port: int,
    zones: Sequence[SignedZone],
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


class ServiceProcess:
    """``dnssec-watchdog --serve --config PATH`` as a child; its JSON log lines as dicts."""

    def __init__(self, config: Path, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._env = service_env(env)
        self._changed = threading.Condition()
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [str(SERVICE_BIN), "--serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._require()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if proc.stderr is not None:
            proc.stderr.close()

    def _require(self) -> subprocess.Popen[str]:
        if self.proc is None:
            raise RuntimeError("use 'with ServiceProcess(...) as service'")
        return self.proc

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
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
                if remaining <= 0 or ended:  # ended: stderr closed, no more lines will come
                    raise AssertionError(
                        f"no {event} {fields} in the service log after {timeout} s "
                        f"(exit code {self._require().poll()}); log:\n{''.join(self.raw)}"
                    )
                self._changed.wait(min(remaining, 0.2))

    def send(self, signum: signal.Signals) -> None:
        self._require().send_signal(signum)

    def stop(self, timeout: float = 20.0, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send ``signum`` and wait (at most ``timeout`` s) for the exit code."""
        proc = self._require()
        proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 20.0) -> int:
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


def _matches(entry: Mapping[str, Any], event: str, fields: Mapping[str, Any]) -> bool:
    return entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items())


_SYNC = "X_TEST_SYNC"  # a field of our own marker datagrams (see NotifySocket.sync)


@dataclass(frozen=True)
class NotifyMessage:
    """One datagram sent to the notify socket: its fields and when it arrived (monotonic)."""

    fields: Mapping[str, str]
    received_at: float

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def __getitem__(self, key: str) -> str:
        return self.fields[key]


class NotifySocket:
    """A datagram socket where systemd's would be: a path, or "@name" (abstract namespace)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            self.address = f"@dnssec-watchdog-test-{uuid.uuid4().hex}"
            bind_to: str | bytes = b"\0" + self.address[1:].encode()
        else:
            self.address = str(path)
            bind_to = self.address
        self._bound_to = bind_to
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(bind_to)
        self._synced: set[str] = set()
        self._sock.settimeout(0.1)
        self._changed = threading.Condition()
        self.messages: list[NotifyMessage] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._sock.close()
        if not self.address.startswith("@"):
            with contextlib.suppress(FileNotFoundError):
                Path(self.address).unlink()

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._changed:
                if _SYNC in fields:
                    self._synced.add(fields[_SYNC])
                else:
                    self.messages.append(NotifyMessage(fields, time.monotonic()))
                self._changed.notify_all()

    def sync(self, timeout: float = 10.0) -> None:
        """Return once every datagram sent before this call has been read: datagrams on one
        AF_UNIX socket arrive in order, so when a marker sent now is read, so is all before."""
        token = uuid.uuid4().hex
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(f"{_SYNC}={token}".encode(), self._bound_to)
        with self._changed:
            if not self._changed.wait_for(lambda: token in self._synced, timeout):
                raise AssertionError(f"the notify socket did not catch up within {timeout} s")

    def received(self) -> list[NotifyMessage]:
        with self._changed:
            return list(self.messages)

    def wait_for(
        self, predicate: Callable[[NotifyMessage], bool], *, after: int = 0, timeout: float = 15.0
    ) -> NotifyMessage:
        """The first message from position ``after`` on that satisfies ``predicate``."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: any(predicate(m) for m in self.messages[after:]), timeout
            ):
                got = [dict(m.fields) for m in self.messages]
                raise AssertionError(f"no such notify message after {timeout} s; got {got}")
            return next(m for m in self.messages[after:] if predicate(m))
