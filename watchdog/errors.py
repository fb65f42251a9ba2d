"""The one exception tree of dnssec-watchdog.

    WatchdogError                  base of everything this package raises on purpose
    ├── InvalidValueError          a single bad value (duration, percent, profile name, ...)
    ├── ConfigError                a configuration with one or more problems, all listed
    ├── ProbeError                 a DNS exchange that could not be completed (becomes a finding)
    ├── StateError                 the SQLite state file cannot be opened or is not ours
    └── DeliveryError              a webhook delivery attempt failed (becomes a retry)

Third-party exceptions (dnspython, httpx, sqlite3, tomllib) are translated into these at the
module that calls the library, with ``raise X(...) from exc``; callers never see them. Messages
never contain a secret (webhook URL, HMAC key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.engine.codes import Code

__all__ = [
    "ConfigError",
    "DeliveryError",
    "InvalidValueError",
    "ProbeError",
    "StateError",
    "WatchdogError",
]


class WatchdogError(Exception):
    """Base class of every error raised on purpose by dnssec-watchdog."""


class InvalidValueError(WatchdogError, ValueError):
    """One value is not acceptable; the message names the value and what was expected."""


class ConfigError(WatchdogError):
    """A configuration has problems; ``problems`` lists each one with its key path."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}{self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{where}{len(self.problems)} problems:\n{lines}"
        super().__init__(message)


class ProbeError(WatchdogError):
    """A DNS exchange with one server failed; ``code`` is the finding code it becomes."""

    def __init__(self, code: Code, message: str) -> None:
        self.code = code
        super().__init__(message)


class StateError(WatchdogError):
    """The state database cannot be used (unreadable, not ours, wrong schema version)."""


class DeliveryError(WatchdogError):
    """A webhook delivery attempt failed; ``retry_after`` is the receiver's wish, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
