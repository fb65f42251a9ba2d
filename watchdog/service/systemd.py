"""systemd's notify protocol (sd_notify(3)) and watchdog interval, without libsystemd.

The protocol is one datagram per message on the AF_UNIX socket named by $NOTIFY_SOCKET: a path,
or an abstract-namespace name written with a leading "@". With the variable unset (not under
systemd, or Type=simple) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

from watchdog.engine.digits import is_ascii_digits

__all__ = ["SystemdNotifier", "watchdog_interval"]

log = structlog.get_logger(__name__)


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """How often to send WATCHDOG=1: half of $WATCHDOG_USEC (sd_watchdog_enabled(3)), or None
    when the watchdog is off or meant for another process ($WATCHDOG_PID)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    # ASCII digits only: int() of a stray "³" would raise at startup (watchdog.engine.digits).
    if not is_ascii_digits(usec) or len(usec) > 19 or int(usec) == 0:
        return None
    if pid and (not is_ascii_digits(pid) or len(pid) > 19 or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


class SystemdNotifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1, RELOADING=1 and STOPPING=1 to systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        raw = environ.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()
        elif raw.startswith("/"):
            self._address = raw
        self._socket: socket.socket | None = None
        self.watchdog_interval = watchdog_interval(environ)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send one message of KEY=value lines; True when it was handed to the socket."""
        if self._address is None:
            return False
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self._address)
        except OSError as exc:
            # systemd gone or the socket unreadable: the service keeps working without it.
            log.warning("sd_notify_failed", error=exc.strerror or str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready=1, status=status)

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def ping(self) -> bool:
        return self.send(watchdog=1)

    def reloading(self, monotonic_usec: int) -> bool:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload).
        return self.send(reloading=1, monotonic_usec=monotonic_usec)

    def stopping(self) -> bool:
        return self.send(stopping=1)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
