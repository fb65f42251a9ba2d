"""The SQLite state file: cycles, the idempotent outbox, resume after a crash, damaged files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from watchdog.errors import InvalidValueError, StateError
from watchdog.service.store import (
    AlertStateRecord,
    Delivery,
    DeliveryStatus,
    HistoryRecord,
    OutboxCounts,
    Store,
    ZoneSummaryRecord,
    quarantine,
)

NOW = 1_800_000_000.0


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    """Where a test's state file lives."""
    return tmp_path / "state.db"


@pytest.fixture
def store(state_file: Path) -> Iterator[Store]:
    """A fresh store, closed after the test."""
    with Store(state_file) as opened:
        yield opened


def delivery(event_id: str, webhook: str = "ops", body: bytes = b'{"event":1}') -> Delivery:
    """A delivery with a JSON body and a content type."""
    return Delivery(event_id, webhook, body, {"Content-Type": "application/json"})


def run_python(code: str, *, drop_dac_override: bool = False) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter that imports this checkout's ``watchdog``.

    With ``drop_dac_override`` the child first drops CAP_DAC_OVERRIDE (and friends) from its
    effective and permitted sets, so file modes bind it even when the tests run as root.
    """
    prelude = textwrap.dedent(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]
        header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
        assert libc.capget(ctypes.byref(header), data) == 0
        # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        mask = ~((1 << 1) | (1 << 2) | (1 << 3)) & 0xFFFFFFFF
        data[0].effective &= mask
        data[0].permitted &= mask
        assert libc.capset(ctypes.byref(header), data) == 0
        """
    )
    script = (prelude if drop_dac_override else "") + textwrap.dedent(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )


def test_new_file_round_trips_states_summaries_and_outbox(state_file: Path) -> None:
    """What one cycle wrote is there, unchanged, after the file is closed and reopened."""
    with Store(state_file) as store:
        result = store.commit_cycle(
            [AlertStateRecord("example.org.", "expiry", {"severity": "warning", "since": 17})],
            [delivery("ev-1")],
            [ZoneSummaryRecord("example.org.", {"checked_at": 5, "failures": 0})],
            now=NOW,
        )
    assert (result.states, result.summaries, result.enqueued, result.duplicates) == (1, 1, 1, 0)
    with Store(state_file) as store:
        assert store.alert_states() == {
            ("example.org.", "expiry"): {"severity": "warning", "since": 17}
        }
        assert store.zone_summaries() == {"example.org.": {"checked_at": 5, "failures": 0}}
        [entry] = store.entries()
    assert (entry.event_id, entry.webhook, entry.body) == ("ev-1", "ops", b'{"event":1}')
    assert entry.headers == {"Content-Type": "application/json"}
    assert (entry.status, entry.attempts, entry.created_at) == (DeliveryStatus.PENDING, 0, NOW)


def test_new_file_is_marked_as_ours_with_a_schema_version(state_file: Path) -> None:
    """A created file carries the application id and one schema version row."""
    Store(state_file).close()
    conn = sqlite3.connect(state_file)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x444E5357
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_histories_are_written_with_the_cycle_and_read_back(store: Store) -> None:
    """A zone's history is stored in the cycle's transaction, replaced, and deleted by None."""
    first = {"format": 1, "servers": {"192.0.2.1:53": [[1, 2, 3, 4, 5]]}}
    second = {"format": 1, "servers": {"192.0.2.1:53": [[1, 9, 3, 4, 5]]}}
    store.commit_cycle(histories=[HistoryRecord("a.", first), HistoryRecord("b.", first)], now=NOW)
    store.commit_cycle(histories=[HistoryRecord("a.", second), HistoryRecord("b.", None)], now=NOW)
    assert store.zone_histories() == {"a.": second}
    with pytest.raises(InvalidValueError):
        store.commit_cycle(
            histories=[HistoryRecord("a.", first), HistoryRecord("c.", {"x": float("nan")})]
        )
    assert store.zone_histories() == {"a.": second}


def test_a_schema_1_file_is_upgraded_keeping_its_state(state_file: Path) -> None:
    """A state file of the previous schema gains the history table and keeps its outbox."""
    with Store(state_file) as store:
        store.enqueue([delivery("ev-1")], now=NOW)
    conn = sqlite3.connect(state_file)
    with conn:
        conn.execute("DROP TABLE zone_history")
        conn.execute("UPDATE schema_version SET version = 1")
    conn.close()
    with Store(state_file) as store:
        assert [e.event_id for e in store.entries()] == ["ev-1"]
        assert store.zone_histories() == {}
        store.commit_cycle(histories=[HistoryRecord("a.", {"format": 1, "servers": {}})])
        assert list(store.zone_histories()) == ["a."]


def test_enqueue_is_idempotent_per_event_and_webhook(store: Store) -> None:
    """A replayed (event id, webhook) never makes a second outbox entry; another webhook does."""
    first = store.commit_cycle(deliveries=[delivery("ev-1"), delivery("ev-1")], now=NOW)
    again = store.commit_cycle(deliveries=[delivery("ev-1", body=b"changed")], now=NOW + 60)
    other = store.enqueue([delivery("ev-1", webhook="chat")], now=NOW + 60)
    assert (first.enqueued, first.duplicates) == (1, 1)
    assert (again.enqueued, again.duplicates) == (0, 1)
    assert other == 1
    entries = store.entries()
    assert sorted((e.event_id, e.webhook) for e in entries) == [("ev-1", "chat"), ("ev-1", "ops")]
    assert next(e for e in entries if e.webhook == "ops").body == b'{"event":1}'


def test_replay_after_delivery_does_not_deliver_again(store: Store) -> None:
    """Enqueueing an event that was already delivered leaves it delivered, with nothing pending."""
    store.enqueue([delivery("ev-1")], now=NOW)
    [entry] = store.entries()
    assert store.mark_delivered(entry.id, status=204, at=NOW + 1)
    assert store.enqueue([delivery("ev-1")], now=NOW + 2) == 0
    assert store.next_pending("ops") is None
    assert store.outbox_counts() == {"ops": OutboxCounts(pending=0, delivered=1, failed=0)}


def test_a_failing_cycle_writes_nothing(store: Store) -> None:
    """State changes and their deliveries are one transaction: an error stores neither."""
    store.commit_cycle([AlertStateRecord("a.example.", "expiry", {"v": 1})], now=NOW)
    broken = AlertStateRecord(None, "expiry", {"v": 9})  # type: ignore[arg-type]
    with pytest.raises(StateError, match="NOT NULL"):
        store.commit_cycle(
            [AlertStateRecord("a.example.", "expiry", {"v": 2}), broken],
            [delivery("ev-2")],
            now=NOW + 1,
        )
    assert store.alert_states() == {("a.example.", "expiry"): {"v": 1}}
    assert store.entries() == []


def test_unstorable_state_is_rejected_naming_the_zone(store: Store) -> None:
    """A state that is not JSON fails before writing, naming the zone and condition."""
    with pytest.raises(InvalidValueError, match=r"a\.example\. / expiry"):
        store.commit_cycle(
            [AlertStateRecord("a.example.", "expiry", {"at": object()})], [delivery("ev-1")]
        )
    assert store.entries() == []


def test_none_deletes_a_state_and_a_summary(store: Store) -> None:
    """A record with None removes what was stored for that key, and only that."""
    store.commit_cycle(
        [AlertStateRecord("a.", "expiry", {"v": 1}), AlertStateRecord("a.", "bogus", {"v": 2})],
        summaries=[ZoneSummaryRecord("a.", {"s": 1}), ZoneSummaryRecord("b.", {"s": 2})],
    )
    store.commit_cycle(
        [AlertStateRecord("a.", "expiry", None)], summaries=[ZoneSummaryRecord("a.", None)]
    )
    assert store.alert_states() == {("a.", "bogus"): {"v": 2}}
    assert store.zone_summaries() == {"b.": {"s": 2}}


def test_attempt_outcomes_are_persisted_and_only_on_pending_entries(store: Store) -> None:
    """Retry, failure and delivery records land on the row; a finished entry is never changed."""
    store.enqueue([delivery("ev-1"), delivery("ev-2")], now=NOW)
    first, second = store.entries()
    assert store.mark_retry(
        first.id, status=503, error="HTTP 503", at=NOW + 1, next_attempt_at=NOW + 9
    )
    # The receiver failed (503): the lane keeps its order, ev-1 stays first.
    assert store.next_pending("ops", now=NOW + 2) == store.entries()[0]
    assert store.mark_delivered(first.id, status=200, at=NOW + 10)
    assert not store.mark_failed(first.id, status=None, error="late", at=NOW + 11)
    assert store.mark_failed(second.id, status=None, error="gone", at=NOW + 12, attempted=False)
    first, second = store.entries()
    assert (first.status, first.attempts, first.last_status, first.last_error) == (
        DeliveryStatus.DELIVERED,
        2,
        200,
        "HTTP 503",
    )
    assert (first.last_attempt_at, first.finished_at) == (NOW + 10, NOW + 10)
    assert (second.status, second.attempts, second.last_error) == (DeliveryStatus.FAILED, 0, "gone")


def test_prune_removes_old_delivered_entries_only(store: Store) -> None:
    """Pruning keeps pending and failed entries, and recent deliveries."""
    store.enqueue([delivery(f"ev-{i}") for i in range(4)], now=NOW)
    e0, e1, e2, _ = store.entries()
    store.mark_delivered(e0.id, status=200, at=NOW + 10)
    store.mark_delivered(e1.id, status=200, at=NOW + 100)
    store.mark_failed(e2.id, status=500, error="HTTP 500", at=NOW + 10)
    assert store.prune_delivered(NOW + 50) == 1
    assert [e.event_id for e in store.entries()] == ["ev-1", "ev-2", "ev-3"]


def test_pending_entries_survive_a_crash_without_close(state_file: Path) -> None:
    """A process that dies right after a commit leaves its cycle in the file (WAL replayed)."""
    crashed = run_python(
        f"""
        import os
        from watchdog.service.store import AlertStateRecord, Delivery, Store
        store = Store({str(state_file)!r})
        store.commit_cycle(
            [AlertStateRecord("a.example.", "expiry", {{"severity": "strict_fail"}})],
            [Delivery("ev-crash", "ops", b"body")],
        )
        os._exit(0)  # no close, no checkpoint
        """
    )
    assert crashed.returncode == 0, crashed.stderr
    assert Path(f"{state_file}-wal").exists()
    with Store(state_file) as store:
        assert [e.event_id for e in store.entries(status=DeliveryStatus.PENDING)] == ["ev-crash"]
        assert store.alert_states() == {("a.example.", "expiry"): {"severity": "strict_fail"}}


def test_garbage_file_is_refused_and_quarantine_moves_it_aside(state_file: Path) -> None:
    """A file that is not SQLite raises StateError naming it; quarantine renames it loudly."""
    garbage = b"this is not a database, it is a shopping list\n" * 200
    state_file.write_bytes(garbage)
    with pytest.raises(StateError) as raised:
        Store(state_file)
    assert str(state_file) in str(raised.value)
    assert "quarantine" in str(raised.value)
    with capture_logs() as logs:
        moved = quarantine(state_file, now=NOW)
    assert moved.name == "state.db.corrupt-20270115T080000Z"
    assert moved.read_bytes() == garbage
    assert not state_file.exists()
    assert [e["event"] for e in logs] == ["state_quarantined"]
    assert logs[0]["moved_to"] == str(moved)
    with Store(state_file) as fresh:
        assert fresh.entries() == []


def test_truncated_file_is_refused(state_file: Path) -> None:
    """A state file cut short (disk full, bad copy) raises StateError instead of losing rows."""
    with Store(state_file) as store:
        store.enqueue([delivery(f"ev-{i}", body=b"x" * 500) for i in range(2000)])
    size = state_file.stat().st_size
    with state_file.open("r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(StateError, match="damaged"):
        Store(state_file)


def test_quarantine_keeps_the_wal_with_its_file(state_file: Path) -> None:
    """The -wal moves along under the paired name, so the quarantined outbox is recoverable."""
    crashed = run_python(
        f"""
        import os
        from watchdog.service.store import Delivery, Store
        Store({str(state_file)!r}).enqueue([Delivery("ev-kept", "ops", b"body")])
        os._exit(0)
        """
    )
    assert crashed.returncode == 0, crashed.stderr
    moved = quarantine(state_file, now=NOW)
    assert Path(f"{moved}-wal").exists()
    assert not Path(f"{state_file}-wal").exists()
    with Store(moved) as recovered:
        assert [e.event_id for e in recovered.entries()] == ["ev-kept"]


def test_quarantine_never_overwrites_an_earlier_one(state_file: Path) -> None:
    """Two quarantines in the same second get distinct names."""
    state_file.write_bytes(b"first")
    first = quarantine(state_file, now=NOW)
    state_file.write_bytes(b"second")
    second = quarantine(state_file, now=NOW)
    assert first != second
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")


def test_quarantine_of_a_missing_file_is_an_error(state_file: Path) -> None:
    """Nothing to move aside is reported, not ignored."""
    with pytest.raises(StateError, match="does not exist"):
        quarantine(state_file)


@pytest.mark.parametrize(("version", "words"), [(3, "newer"), (0, "cannot upgrade")])
def test_wrong_schema_version_is_refused(state_file: Path, version: int, words: str) -> None:
    """A file of another schema version raises StateError saying which and what to do."""
    Store(state_file).close()
    conn = sqlite3.connect(state_file)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.close()
    with pytest.raises(StateError) as raised:
        Store(state_file)
    message = str(raised.value)
    assert str(state_file) in message
    assert f"schema version {version}" in message
    assert words in message


def test_another_applications_database_is_refused(state_file: Path) -> None:
    """A valid SQLite file that is not ours is not adopted, and not modified."""
    conn = sqlite3.connect(state_file)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    before = state_file.read_bytes()
    with pytest.raises(StateError, match="another application"):
        Store(state_file)
    assert state_file.read_bytes() == before


def test_empty_file_becomes_a_new_state(state_file: Path) -> None:
    """A zero-byte file (touch) is initialised, and the log says it was empty."""
    state_file.touch()
    with capture_logs() as logs, Store(state_file) as store:
        assert store.entries() == []
    assert logs[0]["event"] == "state_created"
    assert logs[0]["replaced_empty_file"] is True


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    """A state file in a directory that does not exist is an error naming the directory."""
    with pytest.raises(StateError, match="does not exist"):
        Store(tmp_path / "nowhere" / "state.db")


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_directory_is_refused(tmp_path: Path, existing: bool) -> None:
    """A directory the watchdog cannot write (SQLite needs -wal/-shm there) is a StateError."""
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "state.db"
    if existing:
        with Store(path) as store:
            store.enqueue([delivery("ev-1")])
    directory.chmod(0o555)
    try:
        child = run_python(
            f"""
            from watchdog.errors import StateError
            from watchdog.service.store import Store
            try:
                Store({str(path)!r})
            except StateError as exc:
                print(exc)
            else:
                print("opened")
            """,
            drop_dac_override=True,
        )
    finally:
        directory.chmod(0o755)
    assert child.returncode == 0, child.stderr
    assert "is not writable" in child.stdout
    assert str(directory) in child.stdout
    if existing:
        with Store(path) as store:
            assert [e.event_id for e in store.entries()] == ["ev-1"]


def test_read_only_file_is_refused(state_file: Path) -> None:
    """A state file without write permission is a StateError naming it."""
    Store(state_file).close()
    state_file.chmod(0o444)
    child = run_python(
        f"""
        from watchdog.errors import StateError
        from watchdog.service.store import Store
        try:
            Store({str(state_file)!r})
        except StateError as exc:
            print(exc)
        """,
        drop_dac_override=True,
    )
    assert child.returncode == 0, child.stderr
    assert f"state file {state_file} is not readable and writable" in child.stdout


def test_closed_store_refuses_use(state_file: Path) -> None:
    """After close, calls raise StateError instead of touching a closed connection."""
    store = Store(state_file)
    store.close()
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.entries()
    with pytest.raises(StateError, match="closed"):
        store.enqueue([delivery("ev-1")])


def test_a_ten_thousand_zone_cycle_is_one_transaction(store: Store) -> None:
    """A full cycle of 10,000 zones commits in one go and reads back completely."""
    states = [AlertStateRecord(f"z{i}.example.", "expiry", {"n": i}) for i in range(10_000)]
    summaries = [ZoneSummaryRecord(f"z{i}.example.", {"n": i}) for i in range(10_000)]
    deliveries = [delivery(f"ev-{i}") for i in range(1000)]
    result = store.commit_cycle(states, deliveries, summaries, now=time.time())
    assert (result.states, result.summaries, result.enqueued) == (10_000, 10_000, 1000)
    assert len(store.alert_states()) == 10_000
    assert store.zone_summaries()["z9999.example."] == {"n": 9999}
    assert store.outbox_counts()["ops"].pending == 1000


def test_an_entry_held_for_its_own_fault_steps_aside_until_due(store: Store) -> None:
    """A rejected body (held) lets later entries pass until its own retry is due."""
    store.enqueue([delivery("ev-1"), delivery("ev-2")], now=NOW)
    first, _ = store.entries()
    store.mark_retry(
        first.id, status=400, error="HTTP 400", at=NOW + 1, next_attempt_at=NOW + 9, held=True
    )
    pending = store.next_pending("ops", now=NOW + 2)
    assert pending is not None and pending.event_id == "ev-2"
    pending = store.next_pending("ops", now=NOW + 9)
    assert pending is not None and pending.event_id == "ev-1"
