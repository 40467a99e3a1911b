"""Request limits: token buckets per caller identity, and a request-body size cap.

Buckets: capacity ``per_minute`` tokens, refilled continuously at ``per_minute / 60`` tokens per
second, one token per request. An empty bucket answers with the seconds until the next token
(sent as ``Retry-After``, rounded up). Identities are ``sub:<subject>`` for verified tokens and
``ip:<client address>`` for anonymous calls. The client address is the socket peer, unless the
peer is one of ``serving.trusted_proxies`` (addresses or CIDR blocks, e.g. the load balancer's
network): then it is the right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy
(:func:`client_address`). An untrusted peer's ``X-Forwarded-For`` is ignored, so clients cannot
pick their own bucket.

Idle full buckets are evicted once ``max_keys`` identities are tracked, bounding memory under a
spray of client addresses.

Across processes: with several BentoML workers (or replicas on one host) the buckets must be
shared, or each worker would grant its own ``per_minute``. :class:`SharedTokenBucketLimiter` keeps
them in a small SQLite file (WAL, ``synchronous=OFF``: losing bucket state in a power cut is
harmless; one ``BEGIN IMMEDIATE`` upsert per request, about 0.1 ms) next to the user-state store.
Buckets are refilled from wall-clock time (``time.time``), which all processes share.

Proxies: uvicorn (under BentoML) rewrites the socket peer from ``X-Forwarded-For`` for peers in
its ``FORWARDED_ALLOW_IPS``, which defaults to 127.0.0.1: 60 forged headers from loopback were 60
fresh buckets. :func:`disable_server_proxy_rewrite` sets it to trust nobody in the serving process,
so the peer the limiter sees is the real one and only ``serving.trusted_proxies`` decides.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
"""Largest accepted request body; bigger ones get 413 before any parsing."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_s: float
    """Seconds until a token is available (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


class TokenBucketLimiter:
    """Thread-safe token buckets keyed by identity."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> Decision:
        """Take one token for ``key`` if there is one."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                self._buckets[key] = (tokens, now)
                if len(self._buckets) > self._max_keys:
                    self._evict(now)
                return Decision(True, int(tokens), 0.0)
            self._buckets[key] = (tokens, now)
            return Decision(False, 0, (1.0 - tokens) / self.rate)

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


BUCKETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    tokens REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID
"""
EVICT_EVERY = 1_000
"""Acquires (per process and limiter) between sweeps of idle full buckets."""


class SharedTokenBucketLimiter:
    """Token buckets shared by every process using the same SQLite file (see module docstring).

    ``name`` separates limiters kept in one file. Raises
    :class:`core.sqlite_db.StoreUnavailableError` when the file cannot be written.
    """

    def __init__(
        self,
        per_minute: int,
        path: Path,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        from core.sqlite_db import SQLiteDatabase

        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.name = name
        self._clock = clock
        self._db = SQLiteDatabase(path, BUCKETS_SCHEMA, synchronous="OFF")
        self._db.connection()  # fail at start-up, not on the first request
        self._acquires = itertools.count(1)

    def acquire(self, key: str) -> Decision:
        """Take one token for ``key`` if there is one (one write transaction)."""
        now = self._clock()
        with self._db.write() as conn:
            row = conn.execute(
                "INSERT INTO buckets (name, key, tokens, at) VALUES (:n, :k, :cap - 1, :now) "
                "ON CONFLICT (name, key) DO UPDATE SET "
                "tokens = min(:cap, tokens + max(0, :now - at) * :rate) - 1, at = :now "
                "WHERE min(:cap, tokens + max(0, :now - at) * :rate) >= 1 "
                "RETURNING tokens",
                {"n": self.name, "k": key, "cap": self.capacity, "now": now, "rate": self.rate},
            ).fetchone()
            if row is None:
                tokens, at = conn.execute(
                    "SELECT tokens, at FROM buckets WHERE name = ? AND key = ?", (self.name, key)
                ).fetchone()
                available = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
                decision = Decision(False, 0, (1.0 - available) / self.rate)
            else:
                decision = Decision(True, int(row[0]), 0.0)
            if next(self._acquires) % EVICT_EVERY == 0:
                conn.execute(
                    "DELETE FROM buckets WHERE name = ? AND tokens + (? - at) * ? >= ?",
                    (self.name, now, self.rate, self.capacity),
                )
        return decision

    def __len__(self) -> int:
        with self._db.read() as conn:
            return conn.execute(
                "SELECT count(*) FROM buckets WHERE name = ?", (self.name,)
            ).fetchone()[0]


RATE_LIMIT_FILE = "ratelimit.db"

Limiter = TokenBucketLimiter | SharedTokenBucketLimiter


def build_limiters(
    anonymous_per_minute: int, authenticated_per_minute: int, folder: Path
) -> tuple[Limiter, Limiter, str]:
    """(anonymous, authenticated, description): shared buckets in ``folder/ratelimit.db``.

    When that file cannot be opened at start-up (read-only or full disk), the limits fall back to
    per-process buckets, loudly: logged as an error and described in the returned text (each
    worker then grants its own ``per_minute``). Reads keep being served; the user-state store
    answers 503 for writes on that folder anyway.
    """
    import logging

    from core.sqlite_db import StoreUnavailableError

    path = Path(folder) / RATE_LIMIT_FILE
    try:
        return (
            SharedTokenBucketLimiter(anonymous_per_minute, path, name="anonymous"),
            SharedTokenBucketLimiter(authenticated_per_minute, path, name="authenticated"),
            f"shared ({path})",
        )
    except StoreUnavailableError as exc:
        logging.getLogger(__name__).error("rate limits fall back to per-process buckets: %s", exc)
        return (
            TokenBucketLimiter(anonymous_per_minute),
            TokenBucketLimiter(authenticated_per_minute),
            f"per-process (shared store unavailable: {exc})",
        )


FORWARDED_ALLOW_ENV = "FORWARDED_ALLOW_IPS"


def disable_server_proxy_rewrite() -> None:
    """Make uvicorn trust no proxy (an empty ``FORWARDED_ALLOW_IPS`` matches no peer): the
    request's client stays the socket peer and :func:`client_address` alone applies
    ``serving.trusted_proxies``. Must run before uvicorn builds its config (service import)."""
    os.environ[FORWARDED_ALLOW_ENV] = ""


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


def _parse_networks(trusted: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(t, strict=False) for t in trusted]


def _is_trusted(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks if ip.version == net.version)


def client_address(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str | None:
    """The rate-limit address of a request (see module docstring)."""
    networks = _parse_networks(trusted) if trusted else []
    if peer is None or not forwarded_for or not _is_trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer
