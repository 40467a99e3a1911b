"""One small SQLite helper for the serving-side user state (social graph, watchlists).

Stdlib :mod:`sqlite3` in WAL mode (readers never block the writer), ``synchronous=FULL`` (a
committed change survives power loss), foreign keys on, a busy timeout instead of ``database is
locked`` errors. One connection per store object, shared by the service's request threads under a
lock; :meth:`SqliteStore.transaction` wraps ``BEGIN IMMEDIATE`` ... ``COMMIT`` so a failed write
leaves nothing behind. Kept separate so it can later be replaced by the shared state connection
helper without touching the stores' SQL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.sqlite_db import enable_wal

BUSY_TIMEOUT_S = 10.0


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating its folder) a WAL-mode SQLite database at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    enable_wal(conn, BUSY_TIMEOUT_S)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SqliteStore:
    """Base of a store owning one connection; subclasses set :attr:`SCHEMA` (idempotent DDL)."""

    SCHEMA: str = ""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> sqlite3.Connection:
        """The store's connection, opened (and its schema applied) on first use.

        Opening lazily lets the service start on a read-only state folder: reads of a store that
        was never written answer from no rows (:meth:`query`), writes fail with the sqlite error,
        which the API maps to 503 like every other storage fault.
        """
        with self._lock:
            if self._conn is None:
                conn = connect(self.path)
                try:
                    conn.executescript(self.SCHEMA)
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
            return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT`` (``ROLLBACK`` on any error, which propagates)."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a read; a store whose file was never created has none (and is not created)."""
        with self._lock:
            if self._conn is None and not self.path.exists():
                return []
            return self._connection().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
