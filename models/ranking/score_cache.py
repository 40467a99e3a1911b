"""Per-user cache of the history-dependent part of a hybrid ranking.

Of the four hybrid components only two depend on the user: the collaborative fold-in and the content
similarity to the history. Both are pure functions of (history, weights, catalogue, model), and the
fold-in is the costliest step of a request, so the ranker keeps them, un-normalised and over every
catalogue row, in a :class:`PersonalScoreCache`. A request then only slices its candidate rows out of
them and normalises; candidates, context and availability can change freely between requests.

Decisions:

* One entry per user, stored with the exact (de-duplicated) history and weights it was computed
  from. A lookup with any other history is a miss and its result replaces the entry, so new
  feedback (or a nightly reload of the histories) can never be answered from stale scores, even
  without an explicit invalidation. The gateway still calls :meth:`PersonalScoreCache.forget` on
  feedback and erasure so an erased user's derived scores leave memory at once.
* The cache belongs to one ranker, which belongs to one serving state (catalogue + champion): a
  champion swap builds a new ranker and so starts from an empty cache; scores of two models never
  mix.
* Bounded by bytes, not entries (an entry is two float64 arrays over the catalogue), evicting the
  least recently used user (:class:`cachetools.LRUCache` sized by ``nbytes``). Entries are
  read-only arrays shared between threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import cachetools
import numpy as np

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 2**20
"""Memory budget per ranker: about 3,300 users for 5,000 titles, 330 users for 50,000 titles."""


@dataclass(frozen=True)
class PersonalScores:
    """Raw (un-normalised) user-dependent components over every catalogue row."""

    history: tuple[str, ...]
    """De-duplicated history the scores were computed from."""
    weights: tuple[float, ...]
    """Summed weight of each ``history`` title."""
    collaborative: np.ndarray | None
    """(n,) fold-in scores (``nan`` = unknown to the model); ``None`` = no collaborative evidence."""
    content: np.ndarray | None
    """(n,) content similarity (``nan`` = no vector); ``None`` = no content evidence."""

    def __post_init__(self) -> None:
        for array in (self.collaborative, self.content):
            if array is not None:
                array.setflags(write=False)

    @property
    def liked(self) -> list[str]:
        """History titles with a positive weight."""
        return [h for h, w in zip(self.history, self.weights, strict=True) if w > 0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.collaborative, self.content) if a is not None)

    def matches(self, history: tuple[str, ...], weights: tuple[float, ...]) -> bool:
        """True when these scores were computed from exactly ``history`` and ``weights``."""
        return self.history == history and self.weights == weights


class PersonalScoreCache:
    """Thread-safe LRU of :class:`PersonalScores` per user, bounded by ``max_bytes``.

    A :class:`cachetools.LRUCache` sized by each entry's ``nbytes``, behind a lock (cachetools'
    caches are not thread-safe; the ranker serves several request threads).
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._data: cachetools.LRUCache[str, PersonalScores] = cachetools.LRUCache(
            max_bytes, getsizeof=_entry_bytes
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self, user: str, history: tuple[str, ...], weights: tuple[float, ...]
    ) -> PersonalScores | None:
        """The user's scores if they were computed from this exact history, else ``None``."""
        with self._lock:
            entry = self._data.get(user)  # a lookup marks the user as recently used
            if entry is None or not entry.matches(history, weights):
                self.misses += 1
                return None
            self.hits += 1
            return entry

    def put(self, user: str, scores: PersonalScores) -> None:
        """Store (replacing the user's previous entry), evicting least recently used users."""
        with self._lock:
            self._data.pop(user, None)
            if scores.nbytes > self.max_bytes:
                log.debug("personal scores larger than the cache budget are not cached")
                return
            self._data[user] = scores

    def forget(self, user: str) -> bool:
        """Drop the user's entry; True if there was one."""
        with self._lock:
            return self._data.pop(user, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._data.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, user: object) -> bool:
        with self._lock:
            return user in self._data


def _entry_bytes(scores: PersonalScores) -> int:
    return scores.nbytes
