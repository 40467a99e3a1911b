"""In-process TTL caches for availability lookups, search results and ``/recommend`` answers.

The store is :class:`cachetools.TTLCache` (per-entry expiry ``ttl_s`` seconds after it was stored,
least recently used entry evicted beyond ``max_entries``), behind a lock: cachetools' caches are
not thread-safe and BentoML answers from several threads. On top of it:

* Each entry may carry a ``tag`` (the user id a personalised result belongs to) so feedback from
  that user drops exactly their entries; a champion swap clears everything.
* A named cache counts its hits and misses in Prometheus (:mod:`serving.metrics`).

Caches are per worker process: a hit in one worker says nothing about another, which is why every
cached answer is keyed by (or invalidated with) what it depends on, including the user's history
from the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import cachetools

from serving.metrics import count_cache_lookup

V = TypeVar("V")

AVAILABILITY_TTL_S = 300.0
SEARCH_TTL_S = 60.0


class TTLCache(Generic[V]):
    """A thread-safe mapping with per-entry expiry and optional tags."""

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        """``name``: when given, every lookup is counted in ``media_gateway_cache_requests_total``."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.name = name
        self._data: cachetools.TTLCache[Hashable, tuple[str | None, V]] = cachetools.TTLCache(
            max_entries, ttl_s, timer=clock
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        """The cached value, or None when absent or expired."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
            else:
                self.hits += 1
        if self.name is not None:
            count_cache_lookup(self.name, item is not None)
        return None if item is None else item[1]

    def put(self, key: Hashable, value: V, *, tag: str | None = None) -> None:
        with self._lock:
            self._data[key] = (tag, value)

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], V], *, tag: str | None = None
    ) -> V:
        """Cached value, else ``compute()`` stored under ``key`` (computed outside the lock)."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value, tag=tag)
        return value

    def invalidate_tag(self, tag: str) -> int:
        """Drop every live entry stored with ``tag``; returns how many."""
        with self._lock, self._data.timer:  # one instant for the scan and the deletes
            doomed = [key for key, (t, _) in self._data.items() if t == tag]
            for key in doomed:
                del self._data[key]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        """Live (unexpired) entries."""
        with self._lock:
            return len(self._data)
