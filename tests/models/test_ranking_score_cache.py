"""The per-user personal-score cache and the ranker's use of it (hits, invalidation, bounds)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog
from models.ranking.context import RankingContext, context_effect
from models.ranking.ranker import HybridRanker
from models.ranking.score_cache import PersonalScoreCache, PersonalScores


def _scores(history: tuple[str, ...], n: int = 4, fill: float = 1.0) -> PersonalScores:
    weights = tuple(1.0 for _ in history)
    return PersonalScores(history, weights, np.full(n, fill), np.full(n, fill))


def test_cache_hits_only_the_exact_history() -> None:
    cache = PersonalScoreCache()
    entry = _scores(("a", "b"))
    cache.put("ann", entry)
    assert cache.get("ann", ("a", "b"), (1.0, 1.0)) is entry
    assert cache.get("ann", ("a", "b"), (1.0, 0.5)) is None  # other weights
    assert cache.get("ann", ("a", "b", "c"), (1.0, 1.0, 1.0)) is None  # longer history
    assert cache.get("bob", ("a", "b"), (1.0, 1.0)) is None  # other user
    assert (cache.hits, cache.misses) == (1, 3)


def test_cache_keeps_one_entry_per_user_and_forgets() -> None:
    cache = PersonalScoreCache()
    cache.put("ann", _scores(("a",)))
    cache.put("ann", _scores(("a", "b")))
    assert len(cache) == 1
    assert cache.nbytes == 2 * 4 * 8
    assert cache.get("ann", ("a",), (1.0,)) is None
    assert cache.forget("ann") is True
    assert cache.forget("ann") is False
    assert "ann" not in cache and cache.nbytes == 0


def test_cache_is_bounded_by_bytes_least_recently_used_first() -> None:
    entry_bytes = 2 * 4 * 8
    cache = PersonalScoreCache(max_bytes=2 * entry_bytes)
    cache.put("ann", _scores(("a",)))
    cache.put("bob", _scores(("b",)))
    assert cache.get("ann", ("a",), (1.0,)).history == ("a",)  # ann is now the most recent
    cache.put("cy", _scores(("c",)))
    assert "bob" not in cache and "ann" in cache and "cy" in cache
    assert cache.nbytes == 2 * entry_bytes
    big = PersonalScores(("d",), (1.0,), np.zeros(100), None)
    cache.put("dee", big)
    assert "dee" not in cache, "an entry larger than the budget is not stored"
    with pytest.raises(ValueError, match="max_bytes"):
        PersonalScoreCache(max_bytes=-1)


def test_cached_arrays_are_read_only() -> None:
    entry = _scores(("a",))
    with pytest.raises(ValueError):
        entry.content[0] = 5.0  # type: ignore[index]


class CountingScorer:
    """A collaborative model stand-in: score = shared first letter with a liked title."""

    def __init__(self) -> None:
        self.calls = 0

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        self.calls += 1
        w = weights or [1.0] * len(history)
        return np.asarray(
            [sum(x for h, x in zip(history, w, strict=True) if h[0] == i[0]) for i in item_ids],
            dtype=np.float64,
        )


def _catalog() -> Catalog:
    ids = ["a1", "a2", "a3", "b1", "b2", "c1"]
    titles = pl.DataFrame(
        {
            "title_id": ids,
            "title": [f"T {i}" for i in ids],
            "type": ["movie", "movie", "series", "movie", "movie", "movie"],
            "genres": [["Comedy"], ["Comedy"], ["Drama"], ["Horror"], ["Horror"], ["Family"]],
            "runtime": [90, 150, 30, 100, 95, 80],
            "popularity": [5.0, 4.0, 3.0, 2.0, 1.0, 6.0],
        }
    )
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    avail = pl.DataFrame(
        {
            "title_id": ["a2", "a3", "b1", "b2", "c1"],
            "country": ["US"] * 5,
            "provider_id": ["netflix", "hulu", "netflix", "hulu", "netflix"],
            "provider_name": ["Netflix", "Hulu", "Netflix", "Hulu", "Netflix"],
            "monetization": ["FLATRATE"] * 5,
        }
    )
    return Catalog.build(titles, avail, ids, vectors)


def _dump(recs) -> list[dict]:
    return [r.model_dump() for r in recs]


def test_ranker_reuses_personal_scores_for_the_same_history() -> None:
    scorer = CountingScorer()
    ranker = HybridRanker(_catalog(), scorer)
    us = AvailabilityFilter(country="US")
    cold = ranker.recommend(["a1"], [1.0], k=3, availability=us, cache_key="ann")
    warm = ranker.recommend(["a1"], [1.0], k=3, availability=us, cache_key="ann")
    hulu = AvailabilityFilter(country="US", services=["hulu"])
    other_filter = ranker.recommend(["a1"], [1.0], k=3, availability=hulu, cache_key="ann")
    assert scorer.calls == 1, "candidates and filters change, the personal scores do not"
    assert _dump(cold) == _dump(warm)
    uncached = HybridRanker(_catalog(), CountingScorer()).recommend(
        ["a1"], [1.0], k=3, availability=hulu
    )
    assert _dump(other_filter) == _dump(uncached)
    assert ranker.scores_cache.hits == 2


def test_ranker_recomputes_when_the_history_changes_and_after_forget() -> None:
    scorer = CountingScorer()
    ranker = HybridRanker(_catalog(), scorer)
    first = ranker.recommend(["a1"], [1.0], k=5, cache_key="ann")
    assert first[0].title_id.startswith("a")
    later = ranker.recommend(["a1", "b1"], [1.0, 1.0], k=5, cache_key="ann")
    assert scorer.calls == 2
    assert "b1" not in {r.title_id for r in later}
    fresh = HybridRanker(_catalog(), CountingScorer()).recommend(["a1", "b1"], [1.0, 1.0], k=5)
    assert _dump(later) == _dump(fresh)
    assert ranker.forget("ann") is True
    ranker.recommend(["a1", "b1"], [1.0, 1.0], k=5, cache_key="ann")
    assert scorer.calls == 3


def test_without_cache_key_nothing_is_cached() -> None:
    scorer = CountingScorer()
    ranker = HybridRanker(_catalog(), scorer)
    ranker.recommend(["a1"], k=2)
    ranker.recommend(["a1"], k=2)
    assert scorer.calls == 2 and len(ranker.scores_cache) == 0


def test_context_effect_cache_matches_and_ignores_device() -> None:
    cat = _catalog()
    ranker = HybridRanker(cat)
    ctx = RankingContext(mood="funny", time_available=100, device="tv")
    cached = ranker.context_effect(ctx)
    direct = context_effect(cat, ctx)
    assert np.array_equal(cached.keep, direct.keep)
    assert np.array_equal(cached.score, direct.score)
    assert ranker.context_effect(RankingContext(mood="funny", time_available=100)) is cached
    assert ranker.context_effect(RankingContext(mood="funny")) is not cached
    with pytest.raises(ValueError):
        cached.keep[0] = False
