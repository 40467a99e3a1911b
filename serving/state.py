"""Everything the service serves from, loaded once and hot-swapped as one reference.

:class:`ServingState` is immutable: catalogue (lake titles + availability + LanceDB content vectors),
the content index, the ``@champion`` recommender (optional) and the hybrid ranker built on them.
:class:`StateHolder` loads it in a background thread at start-up, then polls the model registry every
``poll_s`` seconds; when another version holds ``@champion`` it builds a complete new state and swaps
the single ``state`` reference. Requests that already hold the old state finish on it, so no request
is dropped or sees half of each.

Readiness: the service is ready once a catalogue and a content index are loaded (and the query
encoder is warm, so the first search does not pay for loading it). The champion is
optional: without one (nothing promoted yet) the ranker runs content + popularity only, and
``status()`` (served at ``GET /status``) says so. A failed load or poll is logged and reported in
``status()``; the holder keeps the last good state and retries at the next poll.

Per-user histories (:class:`UserHistories`) are mutable and outlive swaps: lake ``watch_events``
at load, plus the shared user-state store (:mod:`core.feedback`). Several BentoML workers
each hold their own copy, so every read of a history first applies what any worker committed since
(:meth:`StateHolder.sync`: two range scans on the store's change counters, ``seq > last seen``, no
work when nothing changed). A worker's own feedback is also added at once. Erasures are applied the
same way, time-bounded like everywhere else (:mod:`pipelines.lib.erasure`): the user's lake events
and earlier feedback go, feedback sent after the erasure stays. On a swap the histories are rebuilt
from the lake and the whole store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from core.feedback import StoreChanges, read_erasures, store_changes
from core.lake import read_table
from core.settings import Settings
from core.vector_index import ContentIndex
from mlops.champion import ChampionHandle, NoChampionError, champion_version, load_champion
from models.embeddings.encoder import encode_query
from models.ranking.catalog import Catalog
from pipelines.lib.erasure import drop_erased

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 30.0


class NotReadyError(RuntimeError):
    """The service has not finished loading its catalogue and index."""


@dataclass(frozen=True)
class HistoryEvent:
    title_id: str
    weight: float
    time: float
    """POSIX seconds (orders the history; for feedback, the time the server received it)."""
    feedback: bool = False
    """API feedback (kept by a later erasure if received after it)."""


class UserHistories:
    """Thread-safe per-user events keyed by ``event_id`` (re-reads and merges never duplicate)."""

    def __init__(self) -> None:
        self._events: dict[str, dict[str, HistoryEvent]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_frame(
        cls, events: pl.DataFrame, erasures: Mapping[str, datetime] | None = None
    ) -> UserHistories:
        """Build from ``WATCH_EVENTS`` rows (null weights count 1.0), without erased rows."""
        out = cls()
        if events.height == 0:
            return out
        events = drop_erased(events, erasures or {})
        source = pl.col("source") if "source" in events.columns else pl.lit(None, pl.String)
        df = events.select(
            "event_id",
            "user_id",
            "title_id",
            pl.col("weight").fill_null(1.0),
            pl.col("event_time").dt.epoch("us").truediv(1e6).fill_null(0.0).alias("t"),
            (source == "feedback").fill_null(False).alias("fb"),
        ).filter(pl.col("title_id").is_not_null())
        for event_id, user, title, weight, t, fb in df.iter_rows():
            out._events.setdefault(user, {})[event_id] = HistoryEvent(
                title, float(weight), t, bool(fb)
            )
        return out

    def add(
        self,
        user: str,
        event_id: str,
        title_id: str,
        weight: float,
        when: float,
        *,
        feedback: bool = True,
    ) -> None:
        with self._lock:
            self._events.setdefault(user, {})[event_id] = HistoryEvent(
                title_id, weight, when, feedback
            )

    def erase(self, user: str, erased_at: float | None = None) -> int:
        """Drop ``user``'s events (with ``erased_at``: all but feedback received after it)."""
        with self._lock:
            events = self._events.get(user, {})
            if erased_at is None:
                doomed = list(events)
            else:
                doomed = [k for k, e in events.items() if not (e.feedback and e.time > erased_at)]
            for key in doomed:
                del events[key]
            if not events:
                self._events.pop(user, None)
            return len(doomed)

    def history(self, user: str) -> tuple[list[str], list[float]]:
        """Distinct titles (oldest first by latest event) and their summed weights."""
        with self._lock:
            events = list(self._events.get(user, {}).values())
        weights: dict[str, float] = {}
        latest: dict[str, float] = {}
        for e in events:
            weights[e.title_id] = weights.get(e.title_id, 0.0) + e.weight
            latest[e.title_id] = max(latest.get(e.title_id, 0.0), e.time)
        ordered = sorted(weights, key=lambda t: (latest[t], t))
        return ordered, [weights[t] for t in ordered]

    def count(self, user: str) -> int:
        with self._lock:
            return len(self._events.get(user, {}))

    def users(self) -> int:
        with self._lock:
            return len(self._events)


@dataclass(frozen=True)
class ServingState:
    """One consistent snapshot of what is served."""

    catalog: Catalog
    index: ContentIndex
    champion: ChampionHandle | None
    ranker: Any
    """:class:`models.ranking.ranker.HybridRanker` over ``catalog`` and the champion."""
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def model_version(self) -> str | None:
        return self.champion.version if self.champion else None


def build_ranker(
    catalog: Catalog, champion: ChampionHandle | None, similarity_table_mib: int
) -> Any:
    from models.ranking.ranker import HybridRanker

    return HybridRanker(
        catalog,
        champion.recommender if champion else None,
        similarity_table_bytes=similarity_table_mib * 2**20,
    )


def load_state(settings: Settings) -> ServingState:
    """Load catalogue, index and champion (``None`` if nothing is promoted yet)."""
    started = time.perf_counter()
    index = ContentIndex(settings.paths.lancedb)
    titles = read_table(settings.paths.lake, "titles")
    if titles.height == 0:
        raise FileNotFoundError(f"the lake at {settings.paths.lake} has no titles yet")
    availability = read_table(settings.paths.lake, "availability")
    catalog = Catalog.from_content_index(index, titles, availability)
    try:
        champion: ChampionHandle | None = load_champion(settings)
    except NoChampionError:
        log.warning("no @champion model yet: serving content + popularity only")
        champion = None
    state = ServingState(
        catalog,
        index,
        champion,
        build_ranker(catalog, champion, settings.serving.similarity_table_mib),
    )
    encode_query("warm-up")  # load the sentence encoder before reporting ready
    log.info(
        "serving state loaded",
        extra={
            "titles": len(catalog),
            "index_version": index.version,
            "champion": state.model_version,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return state


def load_histories(settings: Settings) -> UserHistories:
    """Lake ``watch_events`` without erased rows (the store's feedback is added by the holder)."""
    erasures = read_erasures(settings.paths.feedback)
    return UserHistories.from_frame(read_table(settings.paths.lake, "watch_events"), erasures)


class StateHolder:
    """Loads the state in the background, reports readiness and hot-swaps new champions."""

    def __init__(
        self,
        settings: Settings,
        *,
        poll_s: float = DEFAULT_POLL_S,
        loader: Callable[[Settings], ServingState] = load_state,
        version_probe: Callable[[Settings], str | None] = champion_version,
        history_loader: Callable[[Settings], UserHistories] = load_histories,
    ) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self._loader = loader
        self._probe = version_probe
        self._history_loader = history_loader
        self._state: ServingState | None = None
        self.histories = UserHistories()
        self._feedback_seq = 0
        self._erasure_seq = 0
        self._erased_at: dict[str, float] = {}
        self._user_listeners: list[Callable[[str], None]] = []
        self._swap_lock = threading.Lock()
        self._history_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[ServingState], None]] = []
        self.last_error: str | None = None
        self.last_poll: datetime | None = None
        self.swaps = 0

    # ---- reading ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def state(self) -> ServingState:
        state = self._state
        if state is None:
            raise NotReadyError("the service is still loading its catalogue and index")
        return state

    def on_swap(self, listener: Callable[[ServingState], None]) -> None:
        """Call ``listener(new_state)`` after every swap (e.g. to clear caches)."""
        self._listeners.append(listener)

    def status(self) -> dict[str, Any]:
        if self._state is not None:
            self.sync()
        state = self._state
        champion = state.champion if state else None
        return {
            "ready": state is not None,
            "titles": len(state.catalog) if state else 0,
            "index_version": state.index.version if state else None,
            "champion_version": champion.version if champion else None,
            "mode": (None if state is None else ("hybrid" if champion else "content+popularity")),
            "privacy": champion.privacy if champion else None,
            "serves": champion.serves if champion else None,
            "serving_reason": champion.serving_reason if champion else None,
            "loaded_at": state.loaded_at.isoformat() if state else None,
            "last_poll": self.last_poll.isoformat() if self.last_poll else None,
            "last_error": self.last_error,
            "swaps": self.swaps,
            "users_with_history": self.histories.users(),
            "store_seq": {"feedback": self._feedback_seq, "erasures": self._erasure_seq},
            "worker_pid": os.getpid(),
        }

    def on_user_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(user)`` when another worker's feedback or erasure for ``user`` arrives."""
        self._user_listeners.append(listener)

    def record_event(
        self, user: str, event_id: str, title_id: str, weight: float, when: float
    ) -> None:
        """Add this worker's fresh (committed) feedback to the user's history (effective at once)."""
        with self._history_lock:
            self.histories.add(user, event_id, title_id, weight, when)

    def erase_user(self, user: str, erased_at: float | None = None) -> int:
        """Drop the user's in-memory events (time-bounded when ``erased_at`` is given)."""
        with self._history_lock:
            if erased_at is not None:
                self._erased_at[user] = max(erased_at, self._erased_at.get(user, 0.0))
            return self.histories.erase(user, erased_at)

    def sync(self) -> int:
        """Apply feedback and erasures committed by any process since the last sync.

        Returns how many changes were applied (0, and two cheap index lookups, when none).
        """
        changed: set[str] = set()
        with self._history_lock:
            changes = store_changes(
                self.settings.paths.feedback, self._feedback_seq, self._erasure_seq
            )
            changed.update(self._apply(self.histories, changes))
            self._feedback_seq = changes.feedback_seq
            self._erasure_seq = changes.erasure_seq
        for user in changed:
            for listener in self._user_listeners:
                listener(user)
        return len(changes.feedback) + len(changes.erasures)

    def _apply(self, histories: UserHistories, changes: StoreChanges) -> set[str]:
        users: set[str] = set()
        for user, erased_at in changes.erasures:
            self._erased_at[user] = max(erased_at, self._erased_at.get(user, 0.0))
            histories.erase(user, erased_at)
            users.add(user)
        for event_id, user, title_id, weight, when in changes.feedback:
            if when <= self._erased_at.get(user, float("-inf")):
                continue  # sent before the user's erasure (deleted from the store by now)
            histories.add(user, event_id, title_id, weight, when)
            users.add(user)
        return users

    def history(self, user: str) -> tuple[list[str], list[float]]:
        self.sync()
        return self.histories.history(user)

    # ---- loading and swapping ---------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> bool:
        """Load a new state if none is loaded, the champion changed, or ``force``; True if swapped."""
        with self._swap_lock:
            current = self._state
            self.last_poll = datetime.now(UTC)
            if current is not None and not force:
                version = self._probe(self.settings)
                if version == current.model_version:
                    return False
                log.info(
                    "champion changed",
                    extra={"old": current.model_version, "new": version},
                )
            new_state = self._loader(self.settings)
            histories = self._history_loader(self.settings)
            with self._history_lock:
                changes = store_changes(self.settings.paths.feedback)
                self._erased_at = {}
                self._apply(histories, changes)
                self.histories = histories
                self._feedback_seq = changes.feedback_seq
                self._erasure_seq = changes.erasure_seq
            self._state = new_state
            self.swaps += current is not None
            self.last_error = None
        for listener in self._listeners:
            listener(new_state)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # keep serving the last good state; reported by status()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("state refresh failed; keeping the current state")
            delay = self.poll_s if self._state is not None else min(self.poll_s, 5.0)
            self._stop.wait(delay)

    def start(self) -> None:
        """Start loading (and then polling) in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="state-holder", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready:
                return True
            time.sleep(0.05)
        return self.ready

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
