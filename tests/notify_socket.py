"""A stand-in for systemd's notify socket: a real AF_UNIX datagram socket a test reads.

    with NotifySocket(tmp_path / "n.sock") as sd:       # or NotifySocket() for "@name"
        ...  # start the service with NOTIFY_SOCKET=sd.address
        ready = sd.wait_for(lambda m: m.fields.get("READY") == "1")

Each datagram becomes a ``NotifyMessage`` of KEY=value fields, as sd_notify(3) sends them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

__all__ = ["NotifyMessage", "NotifySocket"]

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
