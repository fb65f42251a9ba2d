"""structlog configuration for the service: JSON lines for journald, a readable console on a TTY.

Events are named with fields (``zone_checked``, ``alert_fired``, ``delivery_failed``); never a
formatted sentence. A last processor redacts every configured secret (webhook URLs, HMAC keys)
wherever it might appear, as a second line of defence behind never logging them at all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["Redactor", "configure_logging"]

REDACTED = "[redacted]"


class Redactor:
    """A structlog processor that replaces known secret strings in every string value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a URL is replaced whole before a secret inside it; ignore tiny
        # values that would redact ordinary words.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        for key, value in list(event.items()):
            event[key] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        # Lists and mappings keep their shape (a reload's "problems" stays a JSON array);
        # anything else that is not a plain scalar is scrubbed as its text.
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        if isinstance(value, list | tuple):
            return [self._clean(item) for item in value]
        if isinstance(value, dict):
            return {self.scrub(str(k)): self._clean(v) for k, v in value.items()}
        return self.scrub(str(value))


def configure_logging(
    log_format: str = "auto",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
    level: int = logging.INFO,
) -> None:
    """Set up structlog once for the process. ``auto``: console on a TTY, JSON otherwise."""
    out = stream or sys.stderr
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if redactor is not None:
        processors.append(redactor)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
