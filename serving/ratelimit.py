"""Request limits: requests per minute per caller identity, and a request-body size cap.

Limits come from the `limits <https://limits.readthedocs.io>`_ package, moving-window strategy: at
most ``per_minute`` requests per identity in any 60 s, one entry per request. A refused request is
told when the oldest request in its window leaves it (``Retry-After``, whole seconds, rounded up).
Identities are ``sub:<subject>`` for verified tokens and ``ip:<client address>`` for anonymous calls
(:mod:`serving.guard`). This replaced a hand-made token bucket (burst ``per_minute``, then one
request every ``60 / per_minute`` s): the moving window grants the same ``per_minute`` in any
minute, never more (the bucket granted up to twice that in the first minute), and a client that
spent its window at once waits until the window slides past it.

Across processes: with several BentoML workers (or replicas on one host) the windows must be shared,
or each worker would grant its own ``per_minute``. limits ships Redis, Memcached, MongoDB and etcd
storages, each a server to run next to a single-host service; :class:`SQLiteStorage` is a limits
``Storage`` over a small SQLite file instead (:class:`core.sqlite_db.SQLiteDatabase`: WAL,
``synchronous=OFF``, since losing limit state in a power cut is harmless) next to the user-state
store. One ``BEGIN IMMEDIATE`` transaction per request checks and records the entry, so two workers
cannot both take the last place in a window. Windows use wall-clock time (``time.time``), which all
processes share. Expired entries are deleted as their identity is seen again and swept for all
identities every :data:`SWEEP_EVERY` writes, bounding the file under a spray of client addresses.
When the file cannot be opened at start-up, limits fall back to limits' per-process
``MemoryStorage``, loudly (:func:`build_limiters`).

Client address and proxies: the address is the request's client as uvicorn (under BentoML) reports
it. uvicorn's ``ProxyHeadersMiddleware`` rewrites it from ``X-Forwarded-For`` (right-most hop that
is not itself trusted) and the scheme from ``X-Forwarded-Proto``, only for peers in its
``FORWARDED_ALLOW_IPS``. uvicorn's own default trusts 127.0.0.1, so 60 forged headers from loopback
were 60 fresh identities; :func:`configure_server_proxy_headers` sets it from
``serving.trusted_proxies`` instead (addresses or CIDR blocks; default none: the client is always
the socket peer and an ``X-Forwarded-For`` is ignored, so clients cannot pick their own identity).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, MovingWindowSupport, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.sqlite_db import SQLiteDatabase, StoreUnavailableError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Largest accepted request body; bigger ones get 413 before any parsing."""
RATE_LIMIT_FILE = "ratelimit.db"
SWEEP_EVERY = 1_000
"""Writes (per process and storage) between sweeps of every identity's expired entries."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS window_entries (key TEXT NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS window_entries_by_key ON window_entries (key, expires);
CREATE TABLE IF NOT EXISTS window_counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
DROP TABLE IF EXISTS buckets
"""
"""Moving windows (one row per request, kept until it leaves the window), fixed-window counters,
and the drop of the former token buckets' table."""


class SQLiteStorage(Storage, MovingWindowSupport):
    """A limits storage in a SQLite file, shared by every process that opens the same file.

    Supports limits' moving-window strategy (what the service uses) and fixed-window strategy.
    ``clock`` gives the current time in seconds (wall clock: it must agree across processes).
    Errors writing the file raise :class:`core.sqlite_db.StoreUnavailableError`.
    """

    STORAGE_SCHEME = None  # built directly (a path, not a URI): registers no scheme

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.path = Path(path)
        self.clock = clock
        self._db = SQLiteDatabase(self.path, SCHEMA, synchronous="OFF")
        self._db.connection()  # fail at start-up, not on the first request
        self._writes = itertools.count(1)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (StoreUnavailableError, sqlite3.Error)

    # ---- moving window -----------------------------------------------------------------------
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record ``amount`` entries for ``key`` if the window has room for them (atomically)."""
        if amount > limit:
            return False
        now = self.clock()
        with self._db.write() as conn:
            conn.execute("DELETE FROM window_entries WHERE key = ? AND expires <= ?", (key, now))
            (used,) = conn.execute(
                "SELECT count(*) FROM window_entries WHERE key = ?", (key,)
            ).fetchone()
            granted = used + amount <= limit
            if granted:
                conn.executemany(
                    "INSERT INTO window_entries (key, expires) VALUES (?, ?)",
                    [(key, now + expiry)] * amount,
                )
            self._sweep(conn, now)
        return granted

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(start of the window: time of its oldest entry, entries in it)."""
        now = self.clock()
        with self._db.read() as conn:
            oldest, count = conn.execute(
                "SELECT min(expires), count(*) FROM window_entries WHERE key = ? AND expires > ?",
                (key, now),
            ).fetchone()
        return (now, 0) if count == 0 else (oldest - expiry, count)

    # ---- fixed window ------------------------------------------------------------------------
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to ``key``'s counter (a new window of ``expiry`` s if none is running)."""
        now = self.clock()
        with self._db.write() as conn:
            (value,) = conn.execute(
                "INSERT INTO window_counters (key, value, expires) VALUES (:k, :a, :now + :e) "
                "ON CONFLICT (key) DO UPDATE SET "
                "value = CASE WHEN expires <= :now THEN :a ELSE value + :a END, "
                "expires = CASE WHEN expires <= :now THEN :now + :e ELSE expires END "
                "RETURNING value",
                {"k": key, "a": amount, "now": now, "e": expiry},
            ).fetchone()
            self._sweep(conn, now)
        return int(value)

    def get(self, key: str) -> int:
        """``key``'s counter in its running window (0 if none)."""
        row = self._counter(key)
        return 0 if row is None else int(row[0])

    def get_expiry(self, key: str) -> float:
        """When ``key``'s running window ends (now if none)."""
        row = self._counter(key)
        return self.clock() if row is None else float(row[1])

    def _counter(self, key: str) -> tuple[int, float] | None:
        with self._db.read() as conn:
            return conn.execute(
                "SELECT value, expires FROM window_counters WHERE key = ? AND expires > ?",
                (key, self.clock()),
            ).fetchone()

    # ---- housekeeping ------------------------------------------------------------------------
    def check(self) -> bool:
        """True when the file can be read (limits' health check; a failure is logged)."""
        try:
            with self._db.read() as conn:
                conn.execute("SELECT 1 FROM window_entries LIMIT 1").fetchall()
        except (StoreUnavailableError, sqlite3.Error) as exc:
            log.error("rate-limit storage unhealthy: %s", exc)
            return False
        return True

    def reset(self) -> int | None:
        """Delete every limit of every identity; returns how many rows went."""
        with self._db.write() as conn:
            gone = conn.execute("DELETE FROM window_entries").rowcount
            gone += conn.execute("DELETE FROM window_counters").rowcount
        return gone

    def clear(self, key: str) -> None:
        """Forget ``key``'s entries and counter."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM window_entries WHERE key = ?", (key,))
            conn.execute("DELETE FROM window_counters WHERE key = ?", (key,))

    def identities(self, prefix: str) -> int:
        """Keys starting with ``prefix`` that hold a live entry or counter."""
        now = self.clock()
        with self._db.read() as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM ("
                "SELECT key FROM window_entries WHERE expires > :now "
                "UNION SELECT key FROM window_counters WHERE expires > :now"
                ") WHERE substr(key, 1, length(:p)) = :p",
                {"now": now, "p": prefix},
            ).fetchone()
        return int(count)

    def _sweep(self, conn: sqlite3.Connection, now: float) -> None:
        if next(self._writes) % SWEEP_EVERY == 0:
            conn.execute("DELETE FROM window_entries WHERE expires <= ?", (now,))
            conn.execute("DELETE FROM window_counters WHERE expires <= ?", (now,))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float
    """Seconds until a request would be granted again (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter:
    """``per_minute`` requests per identity in any 60 s (limits' moving window over ``storage``).

    ``name`` separates limiters kept in one storage; ``clock`` must be the storage's clock (used to
    turn the window's reset time into a ``Retry-After``; ``None``: ``time.time``, what limits' own
    storages use).
    """

    def __init__(
        self,
        per_minute: int,
        storage: Storage,
        *,
        name: str = "default",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.per_minute = per_minute
        self.name = name
        self.storage = storage
        self._item = RateLimitItemPerMinute(per_minute)
        self._strategy = MovingWindowRateLimiter(storage)
        self._clock = clock

    def acquire(self, key: str) -> Decision:
        """Count one request of ``key`` if its window has room."""
        if self._strategy.hit(self._item, self.name, key):
            return Decision(True, 0.0)
        stats = self._strategy.get_window_stats(self._item, self.name, key)
        now = self._clock() if self._clock is not None else time.time()
        return Decision(False, max(0.0, stats.reset_time - now))

    @property
    def key_prefix(self) -> str:
        """The start of every storage key of this limiter's identities."""
        return f"LIMITER/{self.name}/"


class SharedRateLimiter(RateLimiter):
    """A limiter whose windows live in the SQLite file ``path`` (every worker opening it shares
    them). Raises :class:`core.sqlite_db.StoreUnavailableError` when the file cannot be written."""

    def __init__(
        self,
        per_minute: int,
        path: Path,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sqlite = SQLiteStorage(path, clock=clock)
        super().__init__(per_minute, self.sqlite, name=name, clock=clock)

    def __len__(self) -> int:
        """Identities with a request still in their window."""
        return self.sqlite.identities(self.key_prefix)


class ProcessRateLimiter(RateLimiter):
    """A limiter in this process's memory (limits' ``MemoryStorage``; it expires idle windows)."""

    def __init__(self, per_minute: int, *, name: str = "default") -> None:
        self.memory = MemoryStorage()
        super().__init__(per_minute, self.memory, name=name)


Limiter = RateLimiter


def build_limiters(
    anonymous_per_minute: int, authenticated_per_minute: int, folder: Path
) -> tuple[Limiter, Limiter, str]:
    """(anonymous, authenticated, description): shared windows in ``folder/ratelimit.db``.

    When that file cannot be opened at start-up (read-only or full disk), the limits fall back to
    per-process windows, loudly: logged as an error and described in the returned text (each
    worker then grants its own ``per_minute``). Reads keep being served; the user-state store
    answers 503 for writes on that folder anyway.
    """
    path = Path(folder) / RATE_LIMIT_FILE
    try:
        return (
            SharedRateLimiter(anonymous_per_minute, path, name="anonymous"),
            SharedRateLimiter(authenticated_per_minute, path, name="authenticated"),
            f"shared ({path})",
        )
    except StoreUnavailableError as exc:
        log.error("rate limits fall back to per-process windows: %s", exc)
        return (
            ProcessRateLimiter(anonymous_per_minute, name="anonymous"),
            ProcessRateLimiter(authenticated_per_minute, name="authenticated"),
            f"per-process (shared store unavailable: {exc})",
        )


FORWARDED_ALLOW_ENV = "FORWARDED_ALLOW_IPS"


def forwarded_allow_ips(trusted_proxies: Sequence[str]) -> str:
    """uvicorn's ``FORWARDED_ALLOW_IPS`` for ``serving.trusted_proxies``: the networks, normalised
    (``10.0.0.5/8`` -> ``10.0.0.0/8``; uvicorn would take a network with host bits as a literal
    name that never matches), comma-separated; ``""`` (trust no peer) for none."""
    return ",".join(str(ipaddress.ip_network(p.strip(), strict=False)) for p in trusted_proxies)


def configure_server_proxy_headers(trusted_proxies: Sequence[str]) -> str:
    """Set ``FORWARDED_ALLOW_IPS`` for this process's uvicorn (see module docstring); returns it.

    Must run before uvicorn builds its config: BentoML's worker imports the service first, so the
    service module calls this at import.
    """
    value = forwarded_allow_ips(trusted_proxies)
    os.environ[FORWARDED_ALLOW_ENV] = value
    return value


def client_ip(conn: HTTPConnection) -> str | None:
    """The request's client address as the server reports it (after trusted proxies' rewrite)."""
    return conn.client.host if conn.client else None


class BodySizeLimitMiddleware:
    """ASGI middleware answering 413 for bodies over ``max_bytes``.

    Checks ``Content-Length`` up front, then buffers the body (at most ``max_bytes``) before the
    app sees it, so a chunked request without a length header cannot slip through either.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "Content-Length is not an integer")
                    return
                if declared > self.max_bytes:
                    await _reject(send, 413, self._reason())
                    return
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _reject(send, 413, self._reason())
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _reason(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"


async def _reject(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
