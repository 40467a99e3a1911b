"""The PostgreSQL user-state store on a real server (:mod:`tests.postgres_server`): durability
settings, clear :class:`StoreUnavailableError` on connection loss, an unreachable or read-only
server and a held lock (and recovery after), writers serialised, the switch from SQLite moving the
state, and selection through the settings. The behaviour shared with SQLite is tested on both
backends in ``tests/serving/test_feedback_log.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.feedback import (
    STORE_FILE,
    FeedbackLogError,
    FeedbackRecord,
    StoreUnavailableError,
    append_feedback,
    bind_database,
    configure_state,
    erase_user_data,
    load_profile_payload,
    read_erasures,
    read_feedback,
    read_feedback_records,
    save_profile_payload,
    store_changes,
    user_store,
)
from core.postgres_db import WRITE_LOCK_KEY, PostgresDatabase, redact
from core.settings import ConfigError, load_settings
from tests.postgres_server import drop_schema, new_schema_url


@pytest.fixture
def url() -> Iterator[str]:
    u = new_schema_url()
    yield u
    drop_schema(u)


@pytest.fixture
def folder(tmp_path: Path, url: str) -> Iterator[Path]:
    bind_database(tmp_path / "fb", url)
    yield tmp_path / "fb"
    bind_database(tmp_path / "fb", None)


def _rec(user: str = "u", title: str = "t:1") -> FeedbackRecord:
    return FeedbackRecord(user_id=user, title_id=title, watched=True)


def test_session_commits_synchronously_whatever_the_server_default(tmp_path: Path, url: str):
    # the server (here: this session's options) says synchronous_commit=off; the store overrides
    lax = url + "%20-csynchronous_commit%3Doff"
    with psycopg.connect(lax) as raw:
        assert raw.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    bind_database(tmp_path, lax)
    append_feedback(tmp_path, _rec())
    conn = user_store(tmp_path).connection()
    assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
    assert conn.execute("SHOW lock_timeout").fetchone()[0] == "10s"
    assert not (tmp_path / STORE_FILE).exists()


def test_lost_connection_is_unavailable_then_recovers(folder: Path, url: str) -> None:
    append_feedback(folder, _rec(title="t:1"))
    pid = user_store(folder).connection().raw.info.backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    with pytest.raises(StoreUnavailableError, match="terminat|closed|lost|server"):
        append_feedback(folder, _rec(title="t:2"))
    # the broken connection was dropped: the next call reconnects; nothing of t:2 was stored
    append_feedback(folder, _rec(title="t:3"))
    assert [r.title_id for r in read_feedback_records(folder)] == ["t:1", "t:3"]


def test_unreachable_server_is_unavailable_and_the_password_stays_secret(tmp_path: Path) -> None:
    gone = tmp_path / "no-server"
    gone.mkdir()
    url = f"postgresql://mg:hunter2@/state?host={gone}"
    bind_database(tmp_path, url)
    with pytest.raises(StoreUnavailableError) as info:
        append_feedback(tmp_path, _rec())
    assert "hunter2" not in str(info.value) and "mg:***@" in str(info.value)
    with pytest.raises(StoreUnavailableError):
        read_feedback(tmp_path)  # reads too: there is nothing to read from
    assert not (tmp_path / STORE_FILE).exists()  # no silent fallback to a local SQLite file
    assert redact("postgresql://a:b@h:5/d?x=1") == "postgresql://a:***@h:5/d?x=1"


def test_read_only_server_is_unavailable(tmp_path: Path, url: str) -> None:
    bind_database(tmp_path, url)
    append_feedback(tmp_path, _rec(title="t:1"))  # creates the tables
    bind_database(tmp_path, url + "%20-cdefault_transaction_read_only%3Don")  # like a standby
    with pytest.raises(StoreUnavailableError, match="read-only"):
        append_feedback(tmp_path, _rec(title="t:2"))
    assert [r.title_id for r in read_feedback_records(tmp_path)] == ["t:1"]


def test_writers_are_serialised_and_a_held_lock_times_out(url: str) -> None:
    db = PostgresDatabase(url, "CREATE TABLE IF NOT EXISTS x (v INTEGER)", lock_timeout_ms=300)
    with psycopg.connect(url) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        with pytest.raises(StoreUnavailableError, match="lock timeout"), db.write() as conn:
            conn.execute("INSERT INTO x VALUES (?)", (1,))
    with db.write() as conn:  # released with the other transaction: writes go on
        conn.execute("INSERT INTO x VALUES (?)", (2,))
    with db.read() as conn:
        assert conn.execute("SELECT v FROM x").fetchall() == [(2,)]


def test_switching_from_sqlite_moves_the_state(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "fb"
    kept = append_feedback(folder, _rec("kept", "t:1"))
    append_feedback(folder, _rec("gone", "t:2"))
    save_profile_payload(folder, "kept", {"country": "DE"})
    erased_at = erase_user_data(folder, "gone").requested_at
    assert (folder / STORE_FILE).exists()
    bind_database(folder, url)
    try:
        assert [r.event_id for r in read_feedback_records(folder)] == [kept]
        assert read_erasures(folder) == {"gone": erased_at}
        assert load_profile_payload(folder, "kept") == {"country": "DE"}
        assert store_changes(folder).feedback_seq == 1
        # the SQLite files are gone once the import committed (they held an erased user's past)
        assert not any(folder.glob(f"{STORE_FILE}*"))
        with psycopg.connect(url) as raw:
            assert raw.execute("SELECT count(*) FROM feedback").fetchone()[0] == 1
    finally:
        bind_database(folder, None)


def test_a_broken_sqlite_file_stops_the_switch(tmp_path: Path, url: str) -> None:
    folder = tmp_path / "fb"
    folder.mkdir()
    with sqlite3.connect(folder / STORE_FILE) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    bind_database(folder, url)
    try:
        with pytest.raises(FeedbackLogError, match=f"{STORE_FILE}: cannot read the SQLite store"):
            read_feedback(folder)
        assert (folder / STORE_FILE).exists()  # nothing imported, nothing deleted
    finally:
        bind_database(folder, None)


def test_settings_select_the_backend(tmp_path: Path, url: str) -> None:
    var = tmp_path / "var"
    settings = load_settings(
        overrides={"paths": {"feedback": str(var)}, "state": {"database_url": url}}
    )
    configure_state(settings)
    try:
        append_feedback(var, _rec())
        assert isinstance(user_store(var), PostgresDatabase)
        assert not (var / STORE_FILE).exists()
    finally:
        configure_state(load_settings(overrides={"paths": {"feedback": str(var)}}))
    assert type(user_store(var)).__name__ == "SQLiteDatabase"  # unset: SQLite again
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings(overrides={"state": {"database_url": "mysql://h/db"}})
