"""One watchdog per state file: an exclusive flock(2) on the SQLite file, held for the process.

Two services on one state file would both check every zone and both send every alert (each
reads the same outbox). The second one to start finds the lock taken and exits 73 naming the
file. flock, not fcntl: SQLite's own locks are fcntl(2) record locks, and on Linux the two kinds
never conflict; the descriptor stays open until the process ends (closing another descriptor
of the file would drop SQLite's fcntl locks, fcntl(2) "NOTES"), and the kernel releases the
lock however the process ends, SIGKILL included: no stale lock file to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from watchdog.errors import StateError

__all__ = ["StateLock"]


class StateLock:
    """The exclusive lock on one state file; ``release()`` (or process exit) gives it up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateError(f"{path}: cannot open to lock it ({exc.strerror})") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:  # EWOULDBLOCK: another process holds it
            self.release()
            raise StateError(
                f"{path} is in use by another dnssec-watchdog (one watchdog per state file: "
                "stop the other one, or give this one its own watchdog.state_path)"
            ) from exc
        except OSError as exc:
            self.release()
            raise StateError(f"{path}: cannot lock ({exc.strerror})") from exc

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
