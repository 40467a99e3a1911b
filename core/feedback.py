"""The durable user-state store shared by the API workers (writers) and the nightly run (reader).

By default one SQLite database, ``<feedback folder>/state.db`` (:data:`STORE_FILE`), in WAL mode
with ``synchronous=FULL`` (see :mod:`core.sqlite_db`): a write is acknowledged only after its
transaction committed, and a committed transaction survives a crash or power loss. Any number of
processes on one machine (BentoML workers, the nightly run, the CLI) read and write it; writers
queue on the database lock (``busy_timeout``).

**PostgreSQL** (machines that share no filesystem): with ``state.database_url:
postgresql://...`` in the settings, :func:`configure_state` binds the feedback folder to that
database (:mod:`core.postgres_db`: writers serialised by an advisory lock, ``synchronous_commit =
on``, the server's clock), and every function here, still called with the folder, uses it. The
tables, the SQL and so the semantics are the same; only the key declaration and the clock are the
dialect's. Every process that touches the state must load the same settings (the service, the
Dagster resource and the notebook helpers call :func:`configure_state`). On first use the
PostgreSQL store imports what the folder still holds, in one transaction: the legacy files below and
an SQLite ``state.db`` (switching backends moves the state, erasures included, and deletes the
SQLite files after the commit; the service must not run on both at once). Tables:

``feedback``
    One row per ``POST /feedback``: ``seq`` (a change counter growing in commit order, SQLite
    ``AUTOINCREMENT`` or a PostgreSQL identity), ``event_id`` (unique), user, title, weight,
    ``event_us`` (server time of receipt, epoch microseconds, taken inside the write transaction)
    and the full record as JSON.
    :func:`read_feedback` turns it into ``WATCH_EVENTS`` rows (``source = "feedback"``).
``erasures``
    One row per right-to-erasure request (``seq``, user, ``requested_us``).
``profiles``
    One row per user with stored preferences (JSON, validated by the API).

**Erasure is time-bounded.** :func:`erase_user_data` is one transaction: it records the erasure and
deletes the user's feedback rows and profile, so either all of it happens or none (a failure half-
way leaves nothing recorded and nothing deleted). Everything the user sent up to the erasure time is
erased; feedback the user sends *afterwards* (a new, consented act with a new token) is kept, served
and exported (training leaves erased ids out entirely: the model-store sweep in :mod:`mlops.purge`
finds erased users by id, so a model naming one must not exist). In the lake, the nightly run
deletes every row of an erased user except feedback received after their latest erasure
(:func:`pipelines.lib.erasure.drop_erased`): a history file imported for an erased user id is erased
too, because the nightly run cannot tell a re-imported old export (configured sources are re-
imported every night) from a new one.

**Migration.** The store replaced ``feedback.jsonl``, ``erasures.jsonl`` and
``profiles/<hash>.json``. When a process first opens the store it imports any of those files it
finds inside one write transaction (``ON CONFLICT DO NOTHING`` on the unique keys, so an import repeated
after a crash adds nothing), applies every recorded erasure to what it imported, commits, and only
then deletes the files (they must not keep erased users' data).

Weights: feedback is implicit confidence for training (``weight > 0``). Each given signal is mapped
to ``[0, 1]`` (rating / 5, completion, 1.0 for ``watched``), the weight is their mean, floored at
``MIN_WEIGHT`` so a one-star rating still counts as an interaction, only a weak one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.schemas import conform, empty
from core.sqlite_db import SQLiteDatabase, StoreUnavailableError

if TYPE_CHECKING:
    from core.postgres_db import PostgresDatabase
    from core.settings import Settings

    StateDatabase = SQLiteDatabase | PostgresDatabase

log = logging.getLogger(__name__)

STORE_FILE = "state.db"
LEGACY_FEEDBACK_FILE = "feedback.jsonl"
LEGACY_ERASURES_FILE = "erasures.jsonl"
LEGACY_PROFILES_DIR = "profiles"
DEFAULT_SQLITE_TIMEOUT_S = 10.0
RATING_SCALE = 5.0
MIN_WEIGHT = 0.05

__all__ = [
    "MIN_WEIGHT",
    "RATING_SCALE",
    "STORE_FILE",
    "ErasureOutcome",
    "FeedbackLogError",
    "FeedbackRecord",
    "StoreChanges",
    "StoreUnavailableError",
    "append_erasure",
    "append_feedback",
    "bind_database",
    "configure_state",
    "delete_profile",
    "erase_user_data",
    "load_profile_payload",
    "read_erasures",
    "read_feedback",
    "read_feedback_records",
    "save_profile_payload",
    "store_changes",
    "store_feedback",
    "user_store",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    seq {serial},
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    title_id TEXT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    event_us BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_user ON feedback(user_id);
CREATE TABLE IF NOT EXISTS erasures (
    seq {serial},
    user_id TEXT NOT NULL,
    requested_us BIGINT NOT NULL,
    UNIQUE (user_id, requested_us)
);
CREATE INDEX IF NOT EXISTS erasures_user ON erasures(user_id);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY,
    updated_us BIGINT NOT NULL,
    preferences TEXT NOT NULL
)
"""
"""Shared by both backends; ``{serial}`` is the dialect's increasing integer key (SQLite gives
``BIGINT`` and ``DOUBLE PRECISION`` the INTEGER and REAL affinities it had before)."""


class FeedbackLogError(ValueError):
    """A stored or legacy record is not valid (the message names the file and line or row)."""


class FeedbackRecord(BaseModel):
    """One feedback event as stored (``event_id`` and ``event_time`` are set on append)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    title_id: str = Field(min_length=1, max_length=256)
    rating: float | None = Field(None, ge=0.5, le=RATING_SCALE)
    """Explicit rating on a 0.5-5 scale."""
    watched: bool = False
    completion: float | None = Field(None, ge=0.0, le=1.0)
    """Share of the title watched, 0-1."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Request context (mood, occasion, device, ...) kept for analysis; not a training column."""
    event_id: str | None = None
    event_time: datetime | None = None

    @model_validator(mode="after")
    def _has_signal(self) -> FeedbackRecord:
        if self.rating is None and self.completion is None and not self.watched:
            raise ValueError("feedback needs a rating, a completion or watched=true")
        return self

    def weight(self) -> float:
        """Implicit-feedback weight in ``[MIN_WEIGHT, 1]`` (see module docstring)."""
        signals: list[float] = []
        if self.rating is not None:
            signals.append(self.rating / RATING_SCALE)
        if self.completion is not None:
            signals.append(self.completion)
        if self.watched:
            signals.append(1.0)
        return max(MIN_WEIGHT, sum(signals) / len(signals))


# ---- time helpers ---------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _event_id(user_id: str, title_id: str, when: datetime, nonce: str) -> str:
    raw = f"{user_id}\x1ffeedback\x1f{title_id}\x1f{when.isoformat()}\x1f{nonce}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


# ---- opening the store ------------------------------------------------------------------------
_stores: dict[Path, StateDatabase] = {}
_bindings: dict[Path, str] = {}
"""Resolved feedback folder -> PostgreSQL URL (:func:`bind_database`); absent = SQLite."""
_stores_lock = threading.Lock()


def bind_database(folder: Path, url: str | None) -> None:
    """Keep ``folder``'s state in the PostgreSQL database at ``url`` (``None``: SQLite in the
    folder, the default), for this process. Handles already opened on the folder are dropped."""
    if url is not None:
        from core.postgres_db import check_url

        check_url(url)
    folder = Path(folder).resolve()
    with _stores_lock:
        if _bindings.get(folder) == url:
            return
        if url is None:
            _bindings.pop(folder, None)
        else:
            _bindings[folder] = url
        for key in [k for k in _stores if k.resolve() == folder]:
            del _stores[key]


def configure_state(settings: Settings) -> None:
    """Bind ``settings.paths.feedback`` to ``settings.state.database_url`` (unset: SQLite)."""
    bind_database(settings.paths.feedback, settings.state.database_url)


def _open(folder: Path) -> StateDatabase:
    url = _bindings.get(folder)
    if url is None:
        return SQLiteDatabase(
            folder / STORE_FILE,
            SCHEMA.format(serial=SQLiteDatabase.SERIAL_KEY),
            synchronous="FULL",
            on_create=lambda conn: _import_legacy(conn, folder),
        )
    from core.postgres_db import PostgresDatabase

    def on_create(conn: Any) -> Callable[[], None] | None:
        steps = [_import_sqlite_state(conn, folder), _import_legacy(conn, folder)]
        todo = [step for step in steps if step is not None]

        def after() -> None:
            for step in todo:
                step()

        return after if todo else None

    return PostgresDatabase(
        url, SCHEMA.format(serial=PostgresDatabase.SERIAL_KEY), on_create=on_create
    )


def user_store(folder: Path) -> StateDatabase:
    """The process-wide handle on ``folder``'s store (``<folder>/state.db``, or the PostgreSQL
    database it is bound to); whatever the folder still holds is imported on first use."""
    known = _stores.get(Path(folder))  # fast path: no syscalls once opened
    if known is not None:
        return known
    raw = Path(folder)
    folder = raw.resolve()
    with _stores_lock:
        db = _stores.get(folder)
        if db is None:
            db = _open(folder)
            _stores[folder] = db
        _stores.setdefault(raw, db)
        return db


def _remember(raw: Path, db: StateDatabase) -> None:
    with _stores_lock:
        _stores.setdefault(Path(raw), db)


def _store_if_exists(folder: Path) -> StateDatabase | None:
    """The store, or None when neither it nor legacy files exist (reads never create a folder)."""
    folder = Path(folder)
    known = _stores.get(folder)
    if known is not None and known.initialised:
        return known
    if _bindings and folder.resolve() in _bindings:  # resolving costs ~10 syscalls: only if bound
        return user_store(folder)
    legacy = (
        folder / LEGACY_FEEDBACK_FILE,
        folder / LEGACY_ERASURES_FILE,
        folder / LEGACY_PROFILES_DIR,
    )
    if not (folder / STORE_FILE).exists() and not any(p.exists() for p in legacy):
        return None
    db = user_store(folder)
    _remember(folder, db)
    return db


# ---- feedback --------------------------------------------------------------------------------
def _insert_feedback(conn: Any, record: FeedbackRecord) -> tuple[str, bool]:
    assert record.event_id is not None and record.event_time is not None
    cur = conn.execute(
        "INSERT INTO feedback (event_id, user_id, title_id, weight, event_us, record) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            record.event_id,
            record.user_id,
            record.title_id,
            record.weight(),
            _to_us(record.event_time),
            record.model_dump_json(),
        ),
    )
    return record.event_id, cur.rowcount == 1


def append_feedback(folder: Path, record: FeedbackRecord) -> str:
    """Store one record; returns its ``event_id`` once committed (see :func:`store_feedback`)."""
    return store_feedback(folder, record).event_id or ""


def store_feedback(folder: Path, record: FeedbackRecord) -> FeedbackRecord:
    """Store one record; returns it as stored (``event_id``, ``event_time``) once the transaction
    is committed (durable).

    The event time is taken inside the write transaction, so times follow commit order (an
    erasure committed earlier has an earlier time). Raises :class:`StoreUnavailableError` when the
    store cannot be written (read-only, disk full, locked too long): nothing was stored then.
    """
    db = user_store(folder)
    with db.write() as conn:
        when = record.event_time or _from_us(db.clock_us(conn))
        event_id = record.event_id or _event_id(
            record.user_id, record.title_id, when, uuid.uuid4().hex
        )
        stored = record.model_copy(update={"event_id": event_id, "event_time": when})
        _insert_feedback(conn, stored)
    log.info("feedback stored", extra={"event_id": event_id})
    return stored


def _record_from_row(row_id: int, raw: str) -> FeedbackRecord:
    try:
        record = FeedbackRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise FeedbackLogError(f"{STORE_FILE}: feedback row {row_id}: {exc}") from exc
    if record.event_id is None or record.event_time is None:
        raise FeedbackLogError(f"{STORE_FILE}: feedback row {row_id} lacks event_id or event_time")
    return record


_LIVE_FEEDBACK = (
    "SELECT f.seq, f.record FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM erasures e "
    "WHERE e.user_id = f.user_id AND e.requested_us >= f.event_us)"
)


def read_feedback_records(folder: Path, user: str | None = None) -> list[FeedbackRecord]:
    """Every stored record (or ``user``'s), in arrival order; erased records are never returned."""
    db = _store_if_exists(folder)
    if db is None:
        return []
    sql = _LIVE_FEEDBACK + (" AND f.user_id = ?" if user is not None else "") + " ORDER BY f.seq"
    with db.read() as conn:
        rows = conn.execute(sql, (user,) if user is not None else ()).fetchall()
    return [_record_from_row(seq, raw) for seq, raw in rows]


def read_feedback(folder: Path) -> pl.DataFrame:
    """The stored feedback as ``WATCH_EVENTS`` rows (``source="feedback"``).

    Erased feedback is not in the store any more (deleted in the erasure's transaction); feedback a
    user sent after their erasure is returned (see module docstring).
    """
    rows = [
        {
            "event_id": r.event_id,
            "user_id": r.user_id,
            "title_id": r.title_id,
            "raw_title": None,
            "source": "feedback",
            "event_time": r.event_time,
            "event_date": r.event_time.date() if r.event_time else None,
            "rating": r.rating,
            "rating_scale": RATING_SCALE if r.rating is not None else None,
            "completion": r.completion,
            "weight": r.weight(),
            "import_batch": "feedback",
        }
        for r in read_feedback_records(folder)
    ]
    if not rows:
        return empty("watch_events")
    return conform(pl.DataFrame(rows, infer_schema_length=None), "watch_events")


@dataclass(frozen=True)
class StoreChanges:
    """What was committed after given change counters (one consistent snapshot)."""

    feedback: list[tuple[str, str, str, float, float]]
    """``(event_id, user_id, title_id, weight, event_time_seconds)`` in commit order."""
    erasures: list[tuple[str, float]]
    """``(user_id, requested_at_seconds)`` in commit order."""
    feedback_seq: int
    erasure_seq: int


def store_changes(folder: Path, after_feedback: int = 0, after_erasure: int = 0) -> StoreChanges:
    """Feedback rows and erasures committed after the given counters (cheap when nothing changed:
    two range scans on the integer primary keys)."""
    db = _store_if_exists(folder)
    if db is None:
        return StoreChanges([], [], after_feedback, after_erasure)
    with db.read() as conn:
        fb = conn.execute(
            "SELECT seq, event_id, user_id, title_id, weight, event_us FROM feedback "
            "WHERE seq > ? ORDER BY seq",
            (after_feedback,),
        ).fetchall()
        er = conn.execute(
            "SELECT seq, user_id, requested_us FROM erasures WHERE seq > ? ORDER BY seq",
            (after_erasure,),
        ).fetchall()
    return StoreChanges(
        feedback=[(e, u, t, float(w), us / 1e6) for _, e, u, t, w, us in fb],
        erasures=[(u, us / 1e6) for _, u, us in er],
        feedback_seq=fb[-1][0] if fb else after_feedback,
        erasure_seq=er[-1][0] if er else after_erasure,
    )


# ---- erasures -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErasureOutcome:
    requested_at: datetime
    feedback_removed: int
    profile_deleted: bool


def erase_user_data(folder: Path, user_id: str) -> ErasureOutcome:
    """Record an erasure and delete the user's feedback and profile, in one transaction."""
    if not user_id:
        raise ValueError("user_id must not be empty")
    db = user_store(folder)
    with db.write() as conn:
        now = db.clock_us(conn)
        conn.execute(
            "INSERT INTO erasures (user_id, requested_us) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (user_id, now),
        )
        removed = conn.execute(
            "DELETE FROM feedback WHERE user_id = ? AND event_us <= ?", (user_id, now)
        ).rowcount
        deleted = conn.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,)).rowcount
    log.info("erasure recorded", extra={"feedback_removed": removed, "profile_deleted": deleted})
    return ErasureOutcome(_from_us(now), removed, bool(deleted))


def append_erasure(folder: Path, user_id: str) -> datetime:
    """Record a right-to-erasure request (with its deletions, see :func:`erase_user_data`)."""
    return erase_user_data(folder, user_id).requested_at


def read_erasures(folder: Path) -> dict[str, datetime]:
    """User id -> time of their latest erasure (everything they sent up to then is erased)."""
    db = _store_if_exists(folder)
    if db is None:
        return {}
    with db.read() as conn:
        rows = conn.execute(
            "SELECT user_id, max(requested_us) FROM erasures GROUP BY user_id"
        ).fetchall()
    return {user: _from_us(us) for user, us in rows}


# ---- profiles -------------------------------------------------------------------------------
def save_profile_payload(folder: Path, user_id: str, preferences: dict[str, Any]) -> None:
    """Store (replace) ``user_id``'s preferences, committed before returning."""
    payload = json.dumps(preferences, sort_keys=True)
    db = user_store(folder)
    with db.write() as conn:
        conn.execute(
            "INSERT INTO profiles (user_id, updated_us, preferences) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET updated_us = excluded.updated_us, "
            "preferences = excluded.preferences",
            (user_id, db.clock_us(conn), payload),
        )


def load_profile_payload(folder: Path, user_id: str) -> dict[str, Any] | None:
    """The stored preferences mapping, ``None`` when the user never set any."""
    db = _store_if_exists(folder)
    if db is None:
        return None
    with db.read() as conn:
        row = conn.execute(
            "SELECT preferences FROM profiles WHERE user_id = ?", (user_id,)
        ).fetchone()
    if row is None:
        return None
    try:
        data = json.loads(row[0])
    except json.JSONDecodeError as exc:
        raise FeedbackLogError(f"{STORE_FILE}: profile of one user is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FeedbackLogError(f"{STORE_FILE}: profile of one user is not a JSON object")
    return data


def delete_profile(folder: Path, user_id: str) -> bool:
    with user_store(folder).write() as conn:
        return conn.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,)).rowcount > 0


# ---- one-off import of the legacy files ---------------------------------------------------------
def _legacy_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FeedbackLogError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise FeedbackLogError(f"{path}:{number}: expected a JSON object")
            out.append((number, obj))
    return out


def _apply_erasures(conn: Any) -> None:
    """An erasure (imported or already in the store) wins over anything sent before it."""
    conn.execute(
        "DELETE FROM feedback WHERE EXISTS (SELECT 1 FROM erasures e "
        "WHERE e.user_id = feedback.user_id AND e.requested_us >= feedback.event_us)"
    )
    conn.execute(
        "DELETE FROM profiles WHERE EXISTS (SELECT 1 FROM erasures e "
        "WHERE e.user_id = profiles.user_id AND e.requested_us >= profiles.updated_us)"
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _import_sqlite_state(conn: Any, folder: Path) -> Callable[[], None] | None:
    """Copy ``<folder>/state.db`` into the PostgreSQL store (inside the caller's write
    transaction, unique keys making a repeat harmless), apply every erasure; the returned step
    deletes the SQLite files once that is committed."""
    path = folder / STORE_FILE
    if not path.is_file():
        return None
    source = sqlite3.connect(path, timeout=DEFAULT_SQLITE_TIMEOUT_S)
    try:
        feedback = source.execute(
            "SELECT event_id, user_id, title_id, weight, event_us, record FROM feedback "
            "ORDER BY seq"
        ).fetchall()
        erasures = source.execute(
            "SELECT user_id, requested_us FROM erasures ORDER BY seq"
        ).fetchall()
        profiles = source.execute(
            "SELECT user_id, updated_us, preferences FROM profiles ORDER BY user_id"
        ).fetchall()
    except sqlite3.Error as exc:
        raise FeedbackLogError(f"{path}: cannot read the SQLite store to import it: {exc}") from exc
    finally:
        source.close()
    for row in feedback:
        conn.execute(
            "INSERT INTO feedback (event_id, user_id, title_id, weight, event_us, record) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            row,
        )
    for row in erasures:
        conn.execute(
            "INSERT INTO erasures (user_id, requested_us) VALUES (?, ?) ON CONFLICT DO NOTHING", row
        )
    for row in profiles:
        conn.execute(
            "INSERT INTO profiles (user_id, updated_us, preferences) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            row,
        )
    _apply_erasures(conn)
    counts = {"feedback": len(feedback), "erasures": len(erasures), "profiles": len(profiles)}

    def delete_sqlite_files() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        _fsync_dir(folder)
        log.info("SQLite state imported into PostgreSQL and deleted", extra=counts)

    return delete_sqlite_files


def _import_legacy(conn: Any, folder: Path) -> Callable[[], None] | None:
    """Import ``feedback.jsonl``, ``erasures.jsonl`` and ``profiles/*.json`` (inside the caller's
    write transaction), apply every erasure to the result; the returned step deletes the files
    (run by the database after the commit, under the write lock)."""
    feedback_file = folder / LEGACY_FEEDBACK_FILE
    erasures_file = folder / LEGACY_ERASURES_FILE
    profiles_dir = folder / LEGACY_PROFILES_DIR
    done: list[Path] = []
    imported = {"feedback": 0, "erasures": 0, "profiles": 0}
    if feedback_file.is_file():
        for number, obj in _legacy_lines(feedback_file):
            try:
                record = FeedbackRecord.model_validate(obj)
            except ValidationError as exc:
                raise FeedbackLogError(f"{feedback_file}:{number}: {exc}") from exc
            if record.event_id is None or record.event_time is None:
                raise FeedbackLogError(f"{feedback_file}:{number}: lacks event_id or event_time")
            imported["feedback"] += _insert_feedback(conn, record)[1]
        done.append(feedback_file)
    if erasures_file.is_file():
        for number, obj in _legacy_lines(erasures_file):
            user, requested = obj.get("user_id"), obj.get("requested_at")
            if not isinstance(user, str) or not user:
                raise FeedbackLogError(f"{erasures_file}:{number}: erasure record lacks a user_id")
            try:
                when = datetime.fromisoformat(str(requested))
            except ValueError as exc:
                raise FeedbackLogError(
                    f"{erasures_file}:{number}: requested_at is not an ISO time"
                ) from exc
            imported["erasures"] += conn.execute(
                "INSERT INTO erasures (user_id, requested_us) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (user, _to_us(when)),
            ).rowcount
        done.append(erasures_file)
    if profiles_dir.is_dir():
        for path in sorted(profiles_dir.glob("*.json")):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                user, prefs = payload["user_id"], payload["preferences"]
                updated = _to_us(datetime.fromisoformat(payload["updated_at"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise FeedbackLogError(f"{path}: unreadable legacy profile: {exc}") from exc
            imported["profiles"] += conn.execute(
                "INSERT INTO profiles (user_id, updated_us, preferences) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (user, updated, json.dumps(prefs, sort_keys=True)),
            ).rowcount
            done.append(path)
    if not done:
        return None
    _apply_erasures(conn)

    def delete_files() -> None:
        for path in done:
            path.unlink(missing_ok=True)
        if profiles_dir.is_dir() and not any(profiles_dir.iterdir()):
            profiles_dir.rmdir()
        _fsync_dir(folder)
        log.info("legacy feedback files imported into the user-state store", extra=imported)

    return delete_files
