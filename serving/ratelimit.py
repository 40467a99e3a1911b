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
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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
