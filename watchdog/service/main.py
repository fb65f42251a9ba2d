"""The service's entry point: ``--serve`` (watchdog.cli calls it; ``--validate-config`` is the
CLI's own, which loads the config and nothing of the service).

Startup failures are exit statuses of sysexits.h, which the systemd unit knows
(deploy/README.md): 78 for a bad config (RestartPreventExitStatus), 73 for a state file that
cannot be opened or is in use by another watchdog (one per state file).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import structlog

from watchdog.config.parse import load_config
from watchdog.errors import ConfigError, StateError
from watchdog.probe.pool import tune_gc
from watchdog.service.instance import StateLock
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.loop import Service
from watchdog.service.notifications import secrets
from watchdog.service.store import Store

__all__ = ["EX_CANTCREAT", "EX_CONFIG", "run_service"]

log = structlog.get_logger("watchdog.service.main")

EX_CONFIG = 78  # sysexits.h: configuration error (the unit's RestartPreventExitStatus)
EX_CANTCREAT = 73  # sysexits.h: cannot create/open the state file


def run_service(path: Path) -> int:
    """``--serve``: load, open, run until SIGTERM. Exit 0, or 78 / 73 for startup failures."""
    tune_gc()
    redactor = Redactor()
    configure_logging("auto", redactor)
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("config_invalid", source=exc.source, problems=exc.problems)
        return EX_CONFIG
    redactor.update(secrets(config))
    level = logging.getLevelNamesMapping()[config.service.log_level.upper()]
    configure_logging(config.service.log_format, redactor, level=level)
    try:
        store = Store(config.service.state_path)
    except StateError as exc:
        log.error("state_unusable", error=str(exc))
        return EX_CANTCREAT
    try:
        # Held until the process ends: a second service on this file would send every alert
        # again (watchdog.service.instance).
        lock = StateLock(config.service.state_path)
    except StateError as exc:
        store.close()
        log.error("state_in_use", state=str(config.service.state_path), error=str(exc))
        return EX_CANTCREAT
    try:
        return asyncio.run(Service(config, store, redactor=redactor).run())
    finally:
        store.close()
        lock.release()
