"""Hybrid ranking on hand-built catalogues with known vectors (plus the catalogue and context)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.base import UnknownUserError
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, CatalogError
from models.ranking.context import RankingContext, context_effect
from models.ranking.hybrid import HybridRecommender
from models.ranking.ranker import HybridRanker, HybridWeights

CONTENT_ONLY = HybridWeights(collaborative=0, content=1, popularity=0, context=0)


def _catalog() -> Catalog:
    """Six titles; vectors: a/b/c on axis 0 (decreasing), d/e on axis 1, f on axis 2."""
    titles = pl.DataFrame(
        {
            "title_id": ["a", "b", "c", "d", "e", "f"],
            "title": ["Inception", "The Prestige", "Heat", "Toy Story", "Up", "Scream"],
            "type": ["movie", "movie", "movie", "movie", "series", "movie"],
            "genres": [
                ["Thriller", "Science Fiction"],
                ["Thriller", "Drama"],
                ["Crime", "Thriller"],
                ["Animation", "Family"],
                ["Kids"],
                ["Horror"],
            ],
            "keywords": [["dream", "heist"], ["magic"], ["heist"], ["toy"], [], ["slasher"]],
            "runtime": [148, 130, 170, 81, 25, 111],
            "popularity": [90.0, 40.0, 20.0, 80.0, 10.0, 50.0],
        }
    )
    vectors = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.95, 0.05, 0.0],
            [0.8, 0.2, 0.0],
            [0.0, 1.0, 0.0],
            [0.1, 0.9, 0.0],
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float32,
    )
    avail = pl.DataFrame(
        {
            "title_id": ["b", "c", "d", "e", "f"],
            "country": ["US", "US", "US", "GB", "US"],
            "provider_id": ["netflix", "hulu", "netflix", "netflix", "itunes"],
            "provider_name": ["Netflix", "Hulu", "Netflix", "Netflix", "Apple TV"],
            "monetization": ["FLATRATE", "FLATRATE", "FREE", "FLATRATE", "RENT"],
            "price": [None, None, None, None, 3.99],
            "currency": [None, None, None, None, "USD"],
        }
    )
    return Catalog.build(titles, avail, list("abcdef"), vectors)


def test_catalog_lookups() -> None:
    cat = _catalog()
    assert cat.by_title("prestige, the") == ["b"]
    assert cat.by_title("Unknown film") == []
    # rank-scaled popularity: a (90) highest, e (10) lowest
    assert cat.popularity_prior[cat.index["a"]] == pytest.approx(1.0)
    assert cat.popularity_prior[cat.index["e"]] == pytest.approx(0.0)
    assert "Family" in cat.genres[cat.index["e"]]  # TV "Kids" expands to Family
    assert [o.provider_id for o in cat.offers_for("b", "US")] == ["netflix"]
    assert cat.offers_for("e", "US") == []
    assert np.allclose(np.linalg.norm(cat.vectors, axis=1), 1.0)


def test_catalog_rejects_duplicates_and_flags_missing_vectors() -> None:
    titles = pl.DataFrame({"title_id": ["a", "a"], "title": ["x", "y"]})
    with pytest.raises(CatalogError, match="duplicate"):
        Catalog.build(titles, None, ["a"], np.ones((1, 3), dtype=np.float32))
    titles = pl.DataFrame({"title_id": ["a", "b"], "title": ["x", "y"]})
    cat = Catalog.build(titles, None, ["a"], np.ones((1, 3), dtype=np.float32))
    assert cat.has_vector.tolist() == [True, False]
    with pytest.raises(CatalogError, match="does not match"):
        Catalog.build(titles, None, ["a", "b"], np.ones((1, 3), dtype=np.float32))


def test_content_score_ranks_closest_title_first() -> None:
    ranker = HybridRanker(_catalog(), None, CONTENT_ONLY)
    recs = ranker.recommend(["a"], k=3, with_explanations=False)
    assert [r.title_id for r in recs] == ["b", "c", "e"]
    assert recs[0].score == pytest.approx(1.0)
    assert set(recs[0].components) == {"content"}


def test_negative_weight_pushes_profile_away() -> None:
    ranker = HybridRanker(_catalog(), None, CONTENT_ONLY)
    liked_only = ranker.recommend(["b", "d"], [1.0, 1.0], k=1, with_explanations=False)
    disliked = ranker.recommend(["b", "d"], [1.0, -1.0], k=1, with_explanations=False)
    assert disliked[0].title_id == "a"
    assert liked_only[0].title_id != "f"


def test_time_available_filters_long_movies_but_keeps_short_episodes() -> None:
    ranker = HybridRanker(_catalog())
    ctx = RankingContext(time_available=120)
    ids = {r.title_id for r in ranker.recommend([], k=10, context=ctx)}
    assert ids == {"d", "e", "f"}  # a (148), b (130), c (170) are too long; e is a 25-min series


def test_context_type_kids_and_mood() -> None:
    cat = _catalog()
    kids = context_effect(cat, RankingContext(occasion="kids"))
    assert not kids.keep[cat.index["f"]]  # Horror excluded for kids
    assert kids.score[cat.index["d"]] > kids.score[cat.index["c"]]
    series = context_effect(cat, RankingContext(content_type="series"))
    assert np.flatnonzero(series.keep).tolist() == [cat.index["e"]]
    scary = context_effect(cat, RankingContext(mood="scary"))
    assert int(np.argmax(scary.score)) == cat.index["f"]


def test_cold_start_uses_popularity_and_query_vector() -> None:
    ranker = HybridRanker(_catalog())
    recs = ranker.recommend([], k=3)
    assert [r.title_id for r in recs] == ["a", "d", "f"]  # popularity 90, 80, 50
    assert all(set(r.components) == {"popularity"} for r in recs)
    assert recs[0].explanation.popular
    towards_f = ranker.recommend([], k=1, query_vector=np.array([0.0, 0.0, 1.0]))
    assert towards_f[0].title_id == "f"
    assert set(towards_f[0].components) == {"content", "popularity"}


def test_availability_restricts_candidates_and_offers() -> None:
    ranker = HybridRanker(_catalog(), None, CONTENT_ONLY)
    recs = ranker.recommend(["a"], k=5, availability=AvailabilityFilter(country="US"))
    assert [r.title_id for r in recs] == ["b", "c", "d"]
    assert recs[0].offers[0].provider_name == "Netflix"
    assert "on Netflix in US" in recs[0].explanation.sentence


def _checkerboard() -> pl.DataFrame:
    rows = []
    for u in range(8):
        offset = 0 if u < 4 else 5  # users u0-u3 like i0-i4, u4-u7 like i5-i9
        missing = offset + u % 5  # each user has not seen one item of their half
        rows += [
            {"user_id": f"u{u}", "item_id": f"i{i}", "weight": 1.0}
            for i in range(offset, offset + 5)
            if i != missing
        ]
    return pl.DataFrame(rows)


class _Cooccurrence:
    """Transparent collaborative scorer for the fold-in test: item co-occurrence counts."""

    def __init__(self, interactions: pl.DataFrame) -> None:
        self.users = interactions.group_by("user_id").agg("item_id")["item_id"].to_list()

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        hist = set(history)
        return np.asarray(
            [sum(i in u for u in self.users if hist & set(u)) for i in item_ids], float
        )


def test_fold_in_three_item_history_changes_results() -> None:
    inter = _checkerboard()
    items = sorted(inter["item_id"].unique().to_list())
    titles = pl.DataFrame({"title_id": items, "title": items, "popularity": [1.0] * len(items)})
    cat = Catalog.build(titles, None, [], np.zeros((0, 3), dtype=np.float32))
    ranker = HybridRanker(cat, _Cooccurrence(inter))
    first = {r.title_id for r in ranker.recommend(["i0", "i1", "i2"], k=2)}
    second = {r.title_id for r in ranker.recommend(["i5", "i6", "i7"], k=2)}
    assert first == {"i3", "i4"}
    assert second == {"i8", "i9"}


def test_hybrid_recommender_fit_score_similar_save_load(tmp_path: Path) -> None:
    inter = _checkerboard()
    rng = np.random.default_rng(0)
    items = [f"i{i}" for i in range(10)]
    base = np.stack([np.r_[1.0, 0.0], np.r_[0.0, 1.0]])
    vecs = [base[i // 5] + 0.1 * rng.standard_normal(2) for i in range(10)]
    feats = pl.DataFrame({"item_id": items, "vector": [v.tolist() for v in vecs]})
    model = HybridRecommender(base_params={"l2": 1.0}).fit(inter, feats)
    recs = model.recommend(["u0", "u5"], k=1)
    assert recs.filter(pl.col("user_id") == "u0")["item_id"].item() == "i0"
    assert recs.filter(pl.col("user_id") == "u5")["item_id"].item() == "i5"
    scores = model.score("u0", ["i0", "i7", "nope"])
    assert scores[0] > scores[1] and np.isnan(scores[2])
    sim = model.similar_items("i1", k=3)
    assert set(sim["similar_item_id"].to_list()) <= {"i0", "i2", "i3", "i4"}
    with pytest.raises(UnknownUserError):
        model.recommend(["stranger"])
    model.save(tmp_path / "hybrid")
    again = HybridRecommender.load(tmp_path / "hybrid")
    assert np.allclose(again.score("u0", ["i0", "i7"]), scores[:2])
    fresh = again.score_history(["i5", "i6", "i7"], None, ["i8", "i1"])
    assert fresh[0] > fresh[1]
