"""Precomputed/vectorised ranking paths agree with their straightforward definitions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.ranking import ranker as ranker_module
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog
from models.ranking.explain import (
    explain,
    history_features,
    nearest_watched,
    nearest_watched_rows,
)
from models.ranking.ranker import (
    HybridRanker,
    content_similarity,
    similarity_table,
    top_positions,
)


def test_top_positions_matches_sorting_by_score_then_id() -> None:
    rng = np.random.default_rng(3)
    ids = [f"t{i:03d}" for i in rng.permutation(200)]
    id_rank = np.argsort(np.argsort(np.asarray(ids, dtype=object)))
    scores = rng.integers(0, 12, 200).astype(np.float64) / 11  # many ties
    scores[rng.choice(200, 30, replace=False)] = np.nan
    for k in (1, 5, 17, 170, 500):
        finite = [p for p in range(200) if np.isfinite(scores[p])]
        expected = sorted(finite, key=lambda p: (-scores[p], ids[p]))[:k]
        assert top_positions(scores, id_rank, k) == expected
    assert top_positions(np.full(3, np.nan), np.arange(3), 2) == []


def _catalog() -> Catalog:
    titles = pl.DataFrame(
        {
            "title_id": ["m1", "m2", "m3", "m4"],
            "title": ["One", "Two", "Three", "Four"],
            "genres": [["Sci-Fi & Fantasy"], ["Drama"], ["Comedy", "Drama"], []],
        }
    )
    avail = pl.DataFrame(
        {
            "title_id": ["m1", "m1", "m2", "m3", "m3", "m4"],
            "country": ["US", "US", "US", "GB", "US", "US"],
            "provider_id": ["netflix", "amazon", "hulu", "netflix", "tubi", "amazon"],
            "provider_name": ["Netflix", "Amazon", "Hulu", "Netflix", "Tubi", "Amazon"],
            "monetization": ["FLATRATE", "RENT", "FLATRATE", "FLATRATE", "FREE", "BUY"],
        }
    )
    vectors = np.array(
        [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32
    )
    return Catalog.build(titles, avail, ["m1", "m2", "m3", "m4"], vectors)


@pytest.mark.parametrize(
    ("country", "services", "kinds"),
    [
        ("US", [], {"subscription", "free"}),
        ("US", ["netflix"], {"subscription"}),
        ("US", ["amazon", "tubi"], {"rent", "buy", "free"}),
        ("GB", [], {"subscription", "free", "rent", "buy"}),
        ("FR", [], {"subscription"}),
    ],
)
def test_offer_mask_matches_a_frame_filter(country: str, services: list[str], kinds: set) -> None:
    cat = _catalog()
    a = cat.availability.filter(
        (pl.col("country") == country) & pl.col("kind").is_in(sorted(kinds))
    )
    if services:
        a = a.filter(pl.col("provider_id").is_in(services))
    expected = np.zeros(len(cat), dtype=bool)
    expected[a["idx"].to_numpy()] = True
    f = AvailabilityFilter(country=country, services=services, monetization=frozenset(kinds))
    assert np.array_equal(f.mask(cat), expected)


def test_providers_and_display_genres() -> None:
    cat = _catalog()
    assert cat.providers("US") == ["amazon", "hulu", "netflix", "tubi"]
    assert cat.providers("US", ["rent", "buy"]) == ["amazon"]
    assert cat.providers("FR") == []
    assert cat.display_genres[0] == ["Sci-Fi & Fantasy"]  # as stored; canonical form in genres
    assert cat.id_rank.tolist() == [0, 1, 2, 3]


def test_explain_with_shared_history_features_is_the_same_evidence() -> None:
    cat = _catalog()
    history = ["m1", "m3", "m2", "m3", "unknown"]
    feats = history_features(cat, history)
    for tid in ("m1", "m2", "m3", "m4"):  # m1..m3 are in their own history
        with_feats = explain(cat, history, tid, features=feats)
        assert with_feats == explain(cat, history, tid)
        assert with_feats.nearest_watched, "every title has a positive-cosine neighbour"
        assert tid not in {n.title_id for n in with_feats.nearest_watched}
    drama = explain(cat, history, "m2", features=feats).matched_genres
    assert [(g.name, g.count) for g in drama] == [("Drama", 1)], "m2 itself is not counted"


def _random_catalog(n: int, seed: int) -> Catalog:
    rng = np.random.default_rng(seed)
    ids = [f"t{i}" for i in range(n)]
    titles = pl.DataFrame({"title_id": ids, "title": [f"Title {i}" for i in range(n)]})
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with_vector = ids[: n - 5]  # the last five titles have no content vector
    return Catalog.build(titles, None, with_vector, vectors[: n - 5])


def test_a_page_of_nearest_watched_titles_matches_one_title_at_a_time() -> None:
    cat = _random_catalog(60, seed=11)
    rng = np.random.default_rng(12)
    for _ in range(20):
        history = [f"t{i}" for i in rng.choice(60, rng.integers(1, 12), replace=False)]
        feats = history_features(cat, history)
        page = [int(r) for r in rng.choice(60, 10, replace=False)]
        page[0] = cat.index[history[0]]  # a title of the history itself: not its own neighbour
        batched = nearest_watched_rows(cat, feats, page)
        for row, near in zip(page, batched, strict=True):
            tid = cat.id_list[row]
            sims = {
                h: float(cat.vectors[cat.index[h]] @ cat.vectors[row])
                for h in dict.fromkeys(history)
                if h != tid and cat.has_vector[cat.index[h]] and cat.has_vector[row]
            }
            expected = sorted((h for h in sims if sims[h] > 0), key=lambda h: -sims[h])[:3]
            assert [n.title_id for n in near] == expected
            for n in near:
                assert n.similarity == pytest.approx(sims[n.title_id], abs=1e-4)
            single = nearest_watched(cat, history, tid, features=feats)
            assert [n.title_id for n in single] == expected
    assert nearest_watched_rows(cat, history_features(cat, []), [0, 1]) == [[], []]


def _content_by_definition(
    cat: Catalog,
    rows: np.ndarray,
    history: list[str],
    weights: np.ndarray,
    query: np.ndarray | None,
) -> np.ndarray:
    """The content score in float64, title by title, as the ranker's module docstring defines it."""
    vecs = cat.vectors.astype(np.float64)
    known = [(cat.index[h], w) for h, w in zip(history, weights, strict=True) if h in cat]
    known = [(r, w) for r, w in known if cat.has_vector[r] and w != 0]
    profile = sum((w * vecs[r] for r, w in known), np.zeros(vecs.shape[1]))
    profile /= np.linalg.norm(profile) or 1.0
    if query is not None:
        q = query / np.linalg.norm(query)
        profile = (0.5 * profile + 0.5 * q) if known else q
        profile /= np.linalg.norm(profile)
    liked = [r for r, w in known if w > 0]
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        if cat.has_vector[row]:
            cos = vecs[row] @ profile
            out[i] = 0.5 * cos + 0.5 * max(vecs[row] @ vecs[r] for r in liked) if liked else cos
    return out


@pytest.mark.parametrize("from_table", [False, True], ids=["one-product", "cosine-table"])
def test_content_similarity_matches_its_definition(
    monkeypatch: pytest.MonkeyPatch, from_table: bool
) -> None:
    monkeypatch.setattr(ranker_module, "ROW_BLOCK", 7)  # several blocks, the last one short
    cat = _random_catalog(60, seed=21)
    table = similarity_table(cat) if from_table else None
    rng = np.random.default_rng(22)
    query = rng.normal(size=16)
    for trial in range(30):
        history = [f"t{i}" for i in rng.choice(60, rng.integers(1, 10), replace=False)]
        weights = rng.choice([1.0, 2.0, -1.0], size=len(history))
        if trial % 5 == 0:
            weights = -np.abs(weights)  # dislikes only: the profile alone, no liked maximum
        rows = None if trial % 2 else np.sort(rng.choice(60, 25, replace=False))
        q = query if trial % 3 == 0 else None
        got = content_similarity(cat, rows, history, weights, q, table=table)
        expected = _content_by_definition(
            cat, np.arange(60) if rows is None else rows, history, weights, q
        )
        assert got is not None
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert np.array_equal(np.isnan(got), np.isnan(expected))
    no_vector = content_similarity(cat, None, ["t59"], np.ones(1), table=table)
    assert no_vector is None, "no vector: no evidence"


def test_a_ranker_reads_cosines_from_the_table_only_when_it_fits() -> None:
    cat = _random_catalog(60, seed=41)
    fits = HybridRanker(cat, similarity_table_bytes=4 * 60 * 60)
    assert fits.similarity_table is not None
    assert fits.similarity_table.shape == (60, 60) and not fits.similarity_table.flags.writeable
    assert HybridRanker(cat).similarity_table is fits.similarity_table, (
        "computed once per catalogue"
    )
    too_big = HybridRanker(cat, similarity_table_bytes=4 * 60 * 60 - 1)
    assert too_big.similarity_table is None
    rng = np.random.default_rng(42)
    for _ in range(25):
        history = [f"t{i}" for i in rng.choice(60, rng.integers(1, 12), replace=False)]
        weights = list(rng.choice([1.0, 2.0, -1.0], size=len(history)))
        a = fits.recommend(history, weights, k=10)
        b = too_big.recommend(history, weights, k=10)
        assert [r.title_id for r in a] == [r.title_id for r in b]
        for x, y in zip(a, b, strict=True):
            assert x.score == pytest.approx(y.score, abs=2e-6)


def test_a_catalogue_built_from_its_own_vectors_keeps_them_bit_for_bit() -> None:
    rng = np.random.default_rng(31)
    ids = [f"t{i}" for i in range(200)]
    titles = pl.DataFrame({"title_id": ids, "title": ids})
    raw = rng.normal(size=(200, 384)).astype(np.float32) * 3.0
    first = Catalog.build(titles, None, ids, raw)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, rtol=1e-6)
    again = Catalog.build(titles, None, ids, first.vectors)  # a saved model, loaded again
    assert np.array_equal(again.vectors, first.vectors)
