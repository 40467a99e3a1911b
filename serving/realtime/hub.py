"""Per-user event streams with sequence numbers, replay for resume, and bounded delivery.

* Every event published for a user gets the next **sequence number** of that user's stream
  (starting at 1) and is kept in a replay buffer of the last :attr:`Hub.replay` events.
* A connection resumes with ``resume=<last seq seen>``: the events after it are replayed from the
  buffer first; if the buffer no longer reaches back that far the connection gets a ``reset``
  (the client refetches its state over REST/GraphQL) instead of a silent gap.
* **Backpressure**: each connection has a bounded queue (:attr:`Hub.queue_size`). A client that
  does not read fast enough is not allowed to grow server memory: when its queue is full the
  connection is marked overflowed and closed with code 1013 ("try again later"); the client
  reconnects with ``resume`` and loses nothing the buffer still holds.
* ``publish`` may be called from any thread (the catalogue swap runs in the state holder's
  thread): delivery is handed to each connection's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

OVERFLOW_CLOSE_CODE = 1013


@dataclass(eq=False)
class Connection:
    user: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    id: int = 0

    def offer(self, event: dict[str, Any]) -> None:
        """Enqueue (in the connection's loop); a full queue marks the connection overflowed."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


@dataclass
class _Stream:
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    titles: set[str] = field(default_factory=set)
    """Titles the user's clients subscribed to (kept across reconnects)."""


class Hub:
    def __init__(self, queue_size: int = 64, replay: int = 256) -> None:
        self.queue_size = queue_size
        self.replay = replay
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._connections: dict[str, set[Connection]] = {}
        self._ids = itertools.count(1)

    def _stream(self, user: str) -> _Stream:
        return self._streams.setdefault(user, _Stream(buffer=deque(maxlen=self.replay)))

    def connect(
        self, user: str, resume: int | None
    ) -> tuple[Connection, list[dict[str, Any]], bool]:
        """Register a connection (in the running loop): (connection, events to replay, reset)."""
        conn = Connection(
            user, asyncio.get_running_loop(), asyncio.Queue(self.queue_size), id=next(self._ids)
        )
        with self._lock:
            stream = self._stream(user)
            self._connections.setdefault(user, set()).add(conn)
            if resume is None or resume >= stream.seq:
                return conn, [], False
            oldest = stream.buffer[0]["seq"] if stream.buffer else stream.seq + 1
            if resume + 1 < oldest:
                return conn, [], True
            return conn, [e for e in stream.buffer if e["seq"] > resume], False

    def disconnect(self, conn: Connection) -> None:
        with self._lock:
            self._connections.get(conn.user, set()).discard(conn)

    def seq(self, user: str) -> int:
        with self._lock:
            return self._stream(user).seq

    def subscribe(self, user: str, titles: set[str]) -> set[str]:
        with self._lock:
            stream = self._stream(user)
            stream.titles |= titles
            return set(stream.titles)

    def unsubscribe(self, user: str, titles: set[str]) -> set[str]:
        with self._lock:
            stream = self._stream(user)
            stream.titles -= titles
            return set(stream.titles)

    def subscriptions(self) -> dict[str, set[str]]:
        """User -> subscribed titles, for every user with a stream (connected now or since the
        start: events keep flowing into their buffer while they are away, for ``resume``)."""
        with self._lock:
            return {u: set(s.titles) for u, s in self._streams.items()}

    def connected_users(self) -> list[str]:
        with self._lock:
            return sorted(u for u, c in self._connections.items() if c)

    def publish(self, user: str, event: dict[str, Any]) -> dict[str, Any]:
        """Number ``event`` in the user's stream, buffer it and hand it to live connections."""
        with self._lock:
            stream = self._stream(user)
            stream.seq += 1
            numbered = {**event, "seq": stream.seq}
            stream.buffer.append(numbered)
            targets = list(self._connections.get(user, ()))
        for conn in targets:
            conn.loop.call_soon_threadsafe(conn.offer, numbered)
        return numbered

    def forget(self, user: str) -> None:
        """Drop the user's stream (erasure); live connections stay until they close."""
        with self._lock:
            self._streams.pop(user, None)
