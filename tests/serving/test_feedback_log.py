"""core.feedback: the user-state store (durable appends, WATCH_EVENTS view, erasures in one
transaction and time-bounded, change counters, concurrency and visibility across processes,
migration of the legacy JSON files, clear errors when the store cannot be written).

Tests taking the ``state`` fixture run on both backends: SQLite in the folder, and a real
PostgreSQL server (:mod:`tests.postgres_server`) the folder is bound to; PostgreSQL-only checks
are in ``tests/core/test_state_postgres.py``."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from core import feedback as store_module
from core.feedback import (
    STORE_FILE,
    FeedbackLogError,
    FeedbackRecord,
    StoreUnavailableError,
    append_erasure,
    append_feedback,
    bind_database,
    erase_user_data,
    load_profile_payload,
    read_erasures,
    read_feedback,
    read_feedback_records,
    save_profile_payload,
    store_changes,
    user_store,
)
from core.schemas import WATCH_EVENTS
from tests.postgres_server import drop_schema, new_schema_url


@dataclass(frozen=True)
class State:
    """A feedback folder (not created yet) and, on PostgreSQL, the database it is bound to."""

    folder: Path
    url: str | None

    def bind(self) -> None:
        """Bind the folder in this process (a new process must do it too)."""
        bind_database(self.folder, self.url)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """``sql`` on a new, independent connection (what any other process would see)."""
        if self.url is None:
            with sqlite3.connect(self.folder / STORE_FILE) as conn:
                return conn.execute(sql).fetchall()
        with psycopg.connect(self.url) as pg:
            return pg.execute(sql).fetchall()


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[State]:
    if request.param == "sqlite":
        yield State(tmp_path / "state", None)
        return
    st = State(tmp_path / "state", new_schema_url())
    st.bind()
    yield st
    assert not (st.folder / STORE_FILE).exists(), "the PostgreSQL run fell back to SQLite"
    bind_database(st.folder, None)
    drop_schema(st.url)


def test_append_then_read_as_watch_events(state: State) -> None:
    folder = state.folder
    eid = append_feedback(folder, FeedbackRecord(user_id="u1", title_id="movie:1", rating=4.0))
    # committed, visible to anyone
    assert state.rows("SELECT event_id, user_id FROM feedback") == [(eid, "u1")]
    if state.url is None:
        assert state.rows("PRAGMA journal_mode")[0][0] == "wal"
    df = read_feedback(folder)
    assert dict(df.schema) == WATCH_EVENTS
    row = df.row(0, named=True)
    assert row["source"] == "feedback" and row["event_id"] == eid
    assert row["weight"] == pytest.approx(0.8)
    assert row["rating_scale"] == 5.0


def test_store_is_synchronous_full(tmp_path: Path) -> None:
    append_feedback(tmp_path, FeedbackRecord(user_id="u", title_id="t:1", watched=True))
    conn = user_store(tmp_path).connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


@pytest.mark.parametrize(
    ("fields", "weight"),
    [
        ({"rating": 0.5}, 0.1),
        ({"watched": True}, 1.0),
        ({"completion": 0.5, "watched": True}, 0.75),
        ({"completion": 0.0}, 0.05),
    ],
)
def test_weights(fields: dict, weight: float) -> None:
    assert FeedbackRecord(user_id="u", title_id="t:1", **fields).weight() == pytest.approx(weight)


def test_record_without_signal_is_invalid() -> None:
    with pytest.raises(ValidationError, match="needs a rating"):
        FeedbackRecord(user_id="u", title_id="t:1")


def test_concurrent_appends_lose_nothing(state: State) -> None:
    def worker(n: int) -> None:
        for i in range(25):
            append_feedback(
                state.folder, FeedbackRecord(user_id=f"u{n}", title_id=f"t:{i}", rating=3)
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    df = read_feedback(state.folder)
    assert df.height == 100
    assert df["event_id"].n_unique() == 100


def _append_many(state: State, tag: str, n: int) -> None:
    state.bind()
    for i in range(n):
        append_feedback(state.folder, FeedbackRecord(user_id=tag, title_id=f"t:{i}", rating=4))


def test_concurrent_processes_lose_nothing(state: State) -> None:
    """Two processes (like two BentoML workers) write at once: every row lands, none twice."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(state, f"p{n}", 40)) for n in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    df = read_feedback(state.folder)
    assert sorted(df.group_by("user_id").len().rows()) == [("p0", 40), ("p1", 40)]
    changes = store_changes(state.folder)  # the change counter grows in commit order
    assert len(changes.feedback) == 80 and changes.feedback_seq >= 80


def _write_then_read(state: State, out: Any) -> None:
    """In a new process: read what the parent wrote, write one row of our own."""
    state.bind()
    seen = [(r.user_id, r.title_id) for r in read_feedback_records(state.folder)]
    erased = sorted(read_erasures(state.folder))
    prefs = load_profile_payload(state.folder, "parent")
    eid = append_feedback(state.folder, FeedbackRecord(user_id="child", title_id="t:9", rating=2))
    out.put((seen, erased, prefs, eid))


def test_a_commit_in_one_process_is_seen_by_others(state: State) -> None:
    """What one worker acknowledged is what every other worker reads, and back."""
    append_feedback(state.folder, FeedbackRecord(user_id="parent", title_id="t:1", watched=True))
    append_feedback(state.folder, FeedbackRecord(user_id="gone", title_id="t:2", watched=True))
    save_profile_payload(state.folder, "parent", {"country": "GB"})
    erase_user_data(state.folder, "gone")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_write_then_read, args=(state, out))
    proc.start()
    seen, erased, prefs, eid = out.get(timeout=120)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert (seen, erased, prefs) == ([("parent", "t:1")], ["gone"], {"country": "GB"})
    assert [r.event_id for r in read_feedback_records(state.folder, "child")] == [eid]


def test_erasure_is_one_transaction_and_time_bounded(state: State) -> None:
    tmp_path = state.folder
    append_feedback(tmp_path, FeedbackRecord(user_id="gone", title_id="t:1", watched=True))
    append_feedback(tmp_path, FeedbackRecord(user_id="kept", title_id="t:2", watched=True))
    save_profile_payload(tmp_path, "gone", {"country": "GB"})
    outcome = erase_user_data(tmp_path, "gone")
    assert outcome.feedback_removed == 1 and outcome.profile_deleted
    assert read_erasures(tmp_path) == {"gone": outcome.requested_at}
    assert read_feedback(tmp_path)["user_id"].to_list() == ["kept"]
    assert load_profile_payload(tmp_path, "gone") is None
    # feedback sent after the erasure is a new, consented act: kept, and read by the nightly run
    later = append_feedback(tmp_path, FeedbackRecord(user_id="gone", title_id="t:3", rating=5))
    assert read_feedback(tmp_path).filter(user_id="gone")["event_id"].to_list() == [later]
    again = append_erasure(tmp_path, "gone")
    assert again > outcome.requested_at and read_erasures(tmp_path)["gone"] == again
    assert [r.user_id for r in read_feedback_records(tmp_path)] == ["kept"]


def test_failed_erasure_leaves_nothing_recorded(state: State) -> None:
    """A failure inside the erasure transaction rolls back the record and the deletions."""
    tmp_path = state.folder
    append_feedback(tmp_path, FeedbackRecord(user_id="gone", title_id="t:1", watched=True))
    conn = user_store(tmp_path).connection()
    if state.url is None:
        conn.execute(
            "CREATE TRIGGER fail_profile_delete BEFORE DELETE ON profiles "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        error: type[Exception] = sqlite3.IntegrityError
    else:
        conn.execute(
            "CREATE FUNCTION fail_delete() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER fail_profile_delete BEFORE DELETE ON profiles "
            "FOR EACH ROW EXECUTE FUNCTION fail_delete()"
        )
        error = psycopg.errors.RaiseException
    save_profile_payload(tmp_path, "gone", {"country": "GB"})
    with pytest.raises(error, match="injected failure"):
        erase_user_data(tmp_path, "gone")
    assert read_erasures(tmp_path) == {}
    assert read_feedback(tmp_path)["user_id"].to_list() == ["gone"]
    assert load_profile_payload(tmp_path, "gone") == {"country": "GB"}


def test_change_counters_report_only_new_rows(state: State, tmp_path: Path) -> None:
    assert store_changes(tmp_path / "none").feedback == []
    tmp_path = state.folder
    e1 = append_feedback(tmp_path, FeedbackRecord(user_id="a", title_id="t:1", watched=True))
    first = store_changes(tmp_path)
    assert [f[0] for f in first.feedback] == [e1] and first.erasures == []
    nothing = store_changes(tmp_path, first.feedback_seq, first.erasure_seq)
    assert nothing.feedback == [] and nothing.feedback_seq == first.feedback_seq
    e2 = append_feedback(tmp_path, FeedbackRecord(user_id="b", title_id="t:2", watched=True))
    append_erasure(tmp_path, "a")
    later = store_changes(tmp_path, first.feedback_seq, first.erasure_seq)
    assert [f[0] for f in later.feedback] == [e2]
    assert [u for u, _ in later.erasures] == ["a"]


def test_legacy_files_are_imported_once(state: State) -> None:
    """feedback.jsonl, erasures.jsonl and profiles/*.json move into the store, erasures applied."""
    tmp_path = state.folder
    tmp_path.mkdir()
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    lines = [
        FeedbackRecord(
            user_id=user, title_id="t:1", rating=4, event_id=f"e-{user}-{n}", event_time=t
        ).model_dump(mode="json")
        for n, (user, t) in enumerate([("ann", t0), ("zed", t0), ("zed", t0 + timedelta(days=2))])
    ]
    (tmp_path / "feedback.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    erased_at = (t0 + timedelta(days=1)).isoformat()
    (tmp_path / "erasures.jsonl").write_text(
        json.dumps({"user_id": "zed", "requested_at": erased_at}) + "\n"
    )
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "abc.json").write_text(
        json.dumps(
            {"user_id": "ann", "updated_at": t0.isoformat(), "preferences": {"country": "DE"}}
        )
    )
    records = read_feedback_records(tmp_path)
    assert [r.event_id for r in records] == ["e-ann-0", "e-zed-2"]  # zed's pre-erasure line gone
    assert list(read_erasures(tmp_path)) == ["zed"]
    assert load_profile_payload(tmp_path, "ann") == {"country": "DE"}
    assert not (tmp_path / "feedback.jsonl").exists()
    assert not (tmp_path / "erasures.jsonl").exists()
    assert not (tmp_path / "profiles").exists()
    # a crash between commit and unlink would leave the files: importing them again adds nothing
    (tmp_path / "feedback.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    store_module._stores.clear()  # a new process opens the store again
    assert [r.event_id for r in read_feedback_records(tmp_path)] == ["e-ann-0", "e-zed-2"]


def test_bad_legacy_line_names_file_and_line(state: State) -> None:
    tmp_path = state.folder
    tmp_path.mkdir()
    (tmp_path / "feedback.jsonl").write_text("{not json\n")
    with pytest.raises(FeedbackLogError, match=r"feedback.jsonl:1: invalid JSON"):
        read_feedback(tmp_path)
    assert (tmp_path / "feedback.jsonl").exists()  # nothing imported, nothing deleted


def test_empty_folder_reads_empty(state: State) -> None:
    assert read_feedback(state.folder).height == 0
    assert read_erasures(state.folder) == {}
    assert load_profile_payload(state.folder, "u") is None
    assert not state.folder.exists()  # reads never create the store


def test_read_only_store_raises_clear_error(tmp_path: Path, read_only_dir) -> None:
    folder = read_only_dir(tmp_path / "ro")
    with pytest.raises(StoreUnavailableError, match=str(folder)):
        append_feedback(folder, FeedbackRecord(user_id="u", title_id="t:1", watched=True))
