"""The SQLite state file itself: opening and validating it, its schema and migrations, and
the quarantine of a damaged file. watchdog.service.store reads and writes through what
``connect`` returns; every failure here is a ``StateError`` naming the path and the fix.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from watchdog.errors import StateError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "connect", "quarantine", "state_error"]

log = structlog.get_logger("watchdog.service.store")

SCHEMA_VERSION = 2
# PRAGMA application_id (SQLite file header offset 68) marks the file as ours: "DNSW".
APPLICATION_ID = 0x444E5357

# Schema 2: each zone's signature history (engine/stall), one bounded JSON object per zone.
_HISTORY = """
CREATE TABLE zone_history (
    zone TEXT PRIMARY KEY, history TEXT NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
"""
_SCHEMA = (
    """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE alert_state (
    zone TEXT NOT NULL, condition TEXT NOT NULL, state TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (zone, condition)) WITHOUT ROWID;
CREATE TABLE zone_summary (
    zone TEXT PRIMARY KEY, summary TEXT NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    webhook TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    last_status INTEGER,
    last_error TEXT,
    finished_at REAL,
    held INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, webhook));
CREATE INDEX outbox_due ON outbox (webhook, next_attempt_at, id) WHERE status = 'pending';
"""
    + _HISTORY
)
_CREATE = (
    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA application_id = {APPLICATION_ID};"  # noqa: S608
    f" INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;"
)
# Upgrade steps: _MIGRATIONS[v] turns schema v into v + 1.
_MIGRATIONS: dict[int, str] = {1: _HISTORY}


def quarantine(path: str | os.PathLike[str], *, now: float | None = None) -> Path:
    """Move a damaged state file (and its -wal/-shm) aside to ``<path>.corrupt-<timestamp>``.

    The documented recovery for a ``StateError`` about a damaged file: stop the watchdog, call
    this, start again with an empty state. Returns the new path; logs ``state_quarantined``.
    """
    source = Path(path)
    if not source.exists():
        raise StateError(f"state file {source}: cannot quarantine it: it does not exist")
    stamp = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    base = f"{source.name}.corrupt-{stamp:%Y%m%dT%H%M%SZ}"
    target = source.with_name(base)
    counter = 1
    while any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-shm")):
        counter += 1
        target = source.with_name(f"{base}.{counter}")
    try:
        # The -wal may hold committed transactions not yet in the main file: it moves with it,
        # under the name SQLite pairs with the new main file.
        for suffix in ("-wal", "-shm", ""):
            companion = Path(f"{source}{suffix}")
            if companion.exists():
                companion.rename(f"{target}{suffix}")
    except OSError as exc:
        raise StateError(
            f"state file {source}: cannot move it aside to {target}: {exc.strerror}; "
            "move it by hand (with any -wal and -shm files next to it)"
        ) from exc
    log.warning("state_quarantined", path=str(source), moved_to=str(target))
    return target


# -- opening and validation ---------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or upgrading) the state file at ``path``, checked to be ours and sound."""
    _check_location(path)
    was_empty = path.exists() and path.stat().st_size == 0
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise state_error(path, "open it", exc) from exc
    try:
        _prepare(conn, path, was_empty)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_location(path: Path) -> None:
    directory = path.absolute().parent
    if not directory.is_dir():
        raise StateError(
            f"state file {path}: directory {directory} does not exist; create it or set the "
            "state file to a path in an existing directory"
        )
    if path.exists() and not path.is_file():
        raise StateError(f"state file {path} is not a regular file; point the state file elsewhere")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateError(
            f"state file {path}: directory {directory} is not writable by this user, and SQLite "
            f"must create {path.name}-wal and {path.name}-shm next to the file; make the "
            "directory writable for the watchdog's user or move the state file elsewhere"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StateError(
            f"state file {path} is not readable and writable by this user; fix its owner or "
            "mode (chown/chmod) or move the state file elsewhere"
        )


def _prepare(conn: sqlite3.Connection, path: Path, was_empty: bool) -> None:
    try:
        # Identify the file before changing anything: another application's database must be
        # left byte for byte as it was (switching to WAL rewrites the header).
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        new = app_id == 0 and not tables
        if not new and app_id != APPLICATION_ID:
            raise StateError(
                f"state file {path} is a SQLite database of another application, not a "
                "dnssec-watchdog state file; point the state file elsewhere"
            )
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            raise StateError(_damaged(path, problems[0]))
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StateError(f"state file {path}: SQLite refused WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        if new:
            conn.executescript(_CREATE)
            log.info("state_created", path=str(path), replaced_empty_file=was_empty)
            return
        _check_version(conn, path)
        # A write probe: a file or directory that turned read-only fails here, not mid-cycle.
        conn.executescript("BEGIN IMMEDIATE; UPDATE schema_version SET version = version; COMMIT;")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise state_error(path, "open it", exc) from exc


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    try:
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
    except sqlite3.OperationalError:
        rows = []
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise StateError(_damaged(path, "the schema_version table is missing or not one row"))
    version = rows[0][0]
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state file {path} has schema version {version}, written by a newer "
            f"dnssec-watchdog; this version understands up to {SCHEMA_VERSION}. Upgrade "
            "dnssec-watchdog, or point the state file elsewhere"
        )
    if version < SCHEMA_VERSION:
        if any(v not in _MIGRATIONS for v in range(version, SCHEMA_VERSION)):
            raise StateError(
                f"state file {path} has schema version {version}, which this version cannot "
                f"upgrade to {SCHEMA_VERSION}; point the state file elsewhere"
            )
        steps = " ".join(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
        conn.executescript(
            f"BEGIN IMMEDIATE; {steps} UPDATE schema_version SET version = {SCHEMA_VERSION};"  # noqa: S608
            " COMMIT;"
        )
        log.info("state_migrated", path=str(path), from_version=version, to=SCHEMA_VERSION)


def _damaged(path: Path, detail: str) -> str:
    return (
        f"state file {path} is damaged or not a SQLite database ({detail}). Stop the watchdog "
        "and move it aside with watchdog.service.store.quarantine(), which renames it and its "
        "-wal/-shm "
        f"files to {path.name}.corrupt-<timestamp> and keeps any undelivered webhook events in "
        "it for inspection; the next start creates an empty state"
    )


def state_error(path: Path, what: str, exc: sqlite3.Error) -> StateError:
    """A SQLite failure to ``what`` as a StateError that says how to fix it."""
    message = str(exc)
    lowered = message.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StateError(_damaged(path, message))
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return StateError(
            f"state file {path}: cannot {what}: {message}; make the file and its directory "
            "writable for the watchdog's user or move the state file elsewhere"
        )
    if "locked" in lowered or "busy" in lowered:
        return StateError(
            f"state file {path}: cannot {what}: {message}; another process holds it (is a "
            "second dnssec-watchdog using the same state file?)"
        )
    return StateError(f"state file {path}: cannot {what}: SQLite error: {message}")
