"""A small, shareable SQLite helper for state that several processes write (stdlib ``sqlite3``).

:class:`SQLiteDatabase` opens one connection per thread (``check_same_thread`` stays on), in WAL
mode so readers never block the single writer, with ``busy_timeout`` so concurrent writers (other
threads, other BentoML workers, the nightly run) wait for the lock instead of failing, and
``synchronous`` chosen by the caller: ``FULL`` makes a committed write survive power loss (WAL is
fsynced at every commit), which is what "acknowledged = committed" needs; ``OFF`` suits state whose
loss is harmless (rate-limit buckets).

Writes go through :meth:`SQLiteDatabase.write` (``BEGIN IMMEDIATE``: the write lock is taken up
front, so a read-modify-write cannot be overtaken); reads through :meth:`SQLiteDatabase.read` (one
consistent snapshot). Errors that mean "this store cannot take writes now" (read-only folder or
file, disk full, I/O error, lock still held after ``busy_timeout``) are raised as
:class:`StoreUnavailableError` naming the file, so callers can answer 503 instead of acknowledging.
:mod:`core.postgres_db` has the same interface for PostgreSQL (and raises the same error).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_BUSY_TIMEOUT_MS = 10_000
UNAVAILABLE_MARKERS = (
    "readonly",
    "read-only",
    "disk is full",
    "disk i/o error",
    "unable to open database",
    "database is locked",
    "attempt to write",
)


def enable_wal(conn: sqlite3.Connection, timeout_s: float) -> str:
    """Switch ``conn``'s database to WAL and return the journal mode SQLite reports.

    When two processes open a new database file at once, SQLite can answer the switch with
    ``database is locked`` at once, without calling the busy handler; so retry (with backoff)
    until ``timeout_s``, as the busy timeout would for any other statement.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


class StoreUnavailableError(RuntimeError):
    """The database cannot be written (or opened) right now; nothing was committed."""


def _unavailable(path: Path, exc: sqlite3.Error) -> StoreUnavailableError | None:
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and any(m in message for m in UNAVAILABLE_MARKERS):
        return StoreUnavailableError(f"{path}: {exc}")
    return None


class SQLiteDatabase:
    """Per-thread connections to one SQLite file; ``schema`` (SQL script) is applied on first use.

    ``on_create(connection)`` runs once per process after the schema, inside a write transaction
    (e.g. a one-off import of legacy files); it may return a callable that runs after the commit,
    under the write lock again (e.g. deleting the imported files).
    """

    SERIAL_KEY = "INTEGER PRIMARY KEY AUTOINCREMENT"
    """Declaration of an increasing integer primary key (the dialect's part of a shared schema)."""

    def __init__(
        self,
        path: Path,
        schema: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        on_create: Callable[[sqlite3.Connection], Callable[[], None] | None] | None = None,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous={synchronous!r} is not an SQLite level")
        self.path = Path(path)
        self.schema = schema
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._on_create = on_create
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._initialised = False

    @contextlib.contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """Re-raise a storage failure (:func:`_unavailable`) as :class:`StoreUnavailableError`;
        other SQLite errors (programming mistakes) pass unchanged."""
        try:
            yield
        except sqlite3.Error as exc:
            err = _unavailable(self.path, exc)
            if err is not None:
                raise err from exc
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"{self.path.parent}: cannot create folder: {exc}") from exc
        with self._storage_errors():
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            mode = enable_wal(conn, self.busy_timeout_ms / 1000)
            if str(mode).lower() != "wal":
                raise StoreUnavailableError(f"{self.path}: cannot switch to WAL (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @property
    def initialised(self) -> bool:
        """True once some thread opened the file and applied the schema."""
        return self._initialised

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened, and the schema applied, on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            try:
                with self._init_lock:
                    if not self._initialised:
                        self._initialise(conn)
                        self._initialised = True
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _initialise(self, conn: sqlite3.Connection) -> None:
        after: Callable[[], None] | None = None
        with self._storage_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in self.schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if self._on_create is not None:
                    after = self._on_create(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if after is not None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    after()
                finally:
                    conn.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolled back on any error.

        When the block exits normally the transaction is committed (and, with
        ``synchronous=FULL``, on disk); storage failures raise :class:`StoreUnavailableError`.
        """
        conn = self.connection()
        with self._storage_errors():
            conn.execute("BEGIN IMMEDIATE")
        with self._storage_errors():
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        conn = self.connection()
        with self._storage_errors():
            conn.execute("BEGIN")
        try:
            with self._storage_errors():
                yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @staticmethod
    def clock_us(conn: sqlite3.Connection) -> int:
        """Epoch microseconds from this machine's clock (taken inside a write transaction, it
        follows commit order as far as the clock does)."""
        return time.time_ns() // 1_000

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close with the objects)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
