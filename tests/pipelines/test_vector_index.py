from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import polars as pl

from core.schemas import EMBEDDING_DIM, conform
from core.vector_index import (
    ANN_INDEX,
    ContentIndex,
    build_content_rows,
    write_content_index,
)


def _world(rng: np.random.Generator):
    titles = conform(
        pl.DataFrame(
            {
                "title_id": ["movie:1", "movie:2", "tv:3"],
                "title": ["Alpha", "Beta", "Gamma"],
                "type": ["movie", "movie", "series"],
                "year": [1999, 2010, 2020],
                "genres": [["Thriller"], ["Comedy"], ["Drama"]],
            }
        ),
        "titles",
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    availability = conform(
        pl.DataFrame(
            {
                "title_id": ["movie:1", "movie:2", "movie:2"],
                "country": ["US", "US", "GB"],
                "provider_id": ["netflix", "itunes", "netflix"],
                "monetization": ["FLATRATE", "RENT", "FLATRATE"],
                "last_seen": [now] * 3,
            }
        ),
        "availability",
    )
    vecs = rng.normal(size=(3, EMBEDDING_DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    emb = pl.DataFrame({"title_id": titles["title_id"], "vector": vecs.tolist()})
    return titles, availability, emb, vecs


def test_index_round_trip_filters_and_versions(tmp_path, rng):
    titles, availability, emb, vecs = _world(rng)
    rows = build_content_rows(titles, availability, emb)
    v1 = write_content_index(tmp_path, rows)
    index = ContentIndex(tmp_path)
    assert index.count() == 3
    hits = index.search(vecs[0], limit=3)
    assert hits["title_id"][0] == "movie:1"
    assert abs(hits["similarity"][0] - 1.0) < 1e-5
    us_netflix = index.search(vecs[1], limit=3, where="array_has_any(services, ['US:netflix'])")
    assert us_netflix["title_id"].to_list() == ["movie:1"]
    rent = index.search(vecs[1], limit=3, where="array_has_any(rent_buy, ['US:itunes'])")
    assert rent["title_id"].to_list() == ["movie:2"]
    ids, matrix = index.vectors()
    assert matrix.shape == (3, EMBEDDING_DIM) and ids[0] == rows.column("title_id")[0].as_py()

    v2 = write_content_index(tmp_path, rows.slice(0, 1))
    assert v2 > v1 and ContentIndex(tmp_path).count() == 1
    assert ContentIndex(tmp_path, version=v1).count() == 3  # time travel: rollback is a checkout


def test_title_without_vector_is_refused(rng):
    titles, availability, emb, _ = _world(rng)
    import pytest

    with pytest.raises(ValueError, match="1 titles have no embedding"):
        build_content_rows(titles, availability, emb.head(2))


def _clustered_rows(rng: np.random.Generator, n: int, clusters: int = 24):
    """``n`` unit vectors in ``clusters`` blobs (embeddings cluster by topic), as content rows."""
    centres = rng.normal(size=(clusters, EMBEDDING_DIM)).astype(np.float32)
    vecs = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, EMBEDDING_DIM)).astype(
        np.float32
    )
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [f"movie:{i}" for i in range(n)]
    titles = conform(pl.DataFrame({"title_id": ids, "title": ids}), "titles")
    availability = conform(
        pl.DataFrame({"title_id": []}, schema={"title_id": pl.String}), "availability"
    )
    emb = pl.DataFrame({"title_id": ids, "vector": pl.Series(vecs)})
    return build_content_rows(titles, availability, emb), vecs, centres


SMALL_ANN = replace(ANN_INDEX, rows_per_partition=256, nprobes=3)
"""The production index type and refine factor, with partitions and probes scaled to 2k rows."""


def test_ann_index_returns_the_exact_top_k(tmp_path, rng):
    rows, vecs, centres = _clustered_rows(rng, 2_000)
    write_content_index(tmp_path, rows, index_min_rows=1_000, ann=SMALL_ANN)
    index = ContentIndex(tmp_path, ann=SMALL_ANN)
    assert index.indexed and SMALL_ANN.partitions(2_000) == 7
    queries = centres[:12] + 0.8 * rng.normal(size=(12, EMBEDDING_DIM)).astype(np.float32)
    recalls = []
    for q in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        exact = {f"movie:{i}" for i in np.argsort(-(vecs @ q))[:10]}
        hits = index.search(q, limit=10, columns=["title_id"])
        assert hits.columns == ["title_id", "similarity"]
        recalls.append(len(exact & set(hits["title_id"].to_list())) / 10)
    assert np.mean(recalls) >= 0.95


def test_small_tables_stay_flat_and_rewrites_are_idempotent(tmp_path, rng):
    rows, _, _ = _clustered_rows(rng, 1_200)
    v1 = write_content_index(tmp_path, rows, index_min_rows=2_000, ann=SMALL_ANN)
    assert not ContentIndex(tmp_path).indexed  # below the threshold: exact flat search
    assert write_content_index(tmp_path, rows, index_min_rows=2_000, ann=SMALL_ANN) == v1
    # same rows, now above the threshold (as after a crash before the index commit): index only
    v2 = write_content_index(tmp_path, rows, index_min_rows=1_000, ann=SMALL_ANN)
    index = ContentIndex(tmp_path)
    assert v2 == v1 + 1 and index.indexed and index.count() == 1_200
    assert write_content_index(tmp_path, rows, index_min_rows=1_000, ann=SMALL_ANN) == v2
    v3 = write_content_index(tmp_path, rows.slice(0, 1_100), index_min_rows=1_000, ann=SMALL_ANN)
    assert v3 > v2 and ContentIndex(tmp_path).indexed and ContentIndex(tmp_path).count() == 1_100


def test_hnsw_ef_widens_the_search(tmp_path, rng):
    """A single HNSW graph (the default index kind): ``ef`` is passed to the query, and a
    wide candidate list finds the exact top 10 where LanceDB's default (1.5 x k) may not."""
    from core.vector_index import AnnIndex

    rows, vecs, centres = _clustered_rows(rng, 2_000)
    hnsw = AnnIndex("IVF_HNSW_FLAT", 1, rows_per_partition=1 << 40, ef=200)
    write_content_index(tmp_path, rows, index_min_rows=1_000, ann=hnsw)
    index = ContentIndex(tmp_path, ann=hnsw)
    assert index.indexed and hnsw.partitions(2_000) == 1
    idx = index.table.list_indices()[0]
    assert "HNSW" in str(idx.index_type).upper()
    queries = centres[:12] + 0.8 * rng.normal(size=(12, EMBEDDING_DIM)).astype(np.float32)
    recalls = []
    for q in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        exact = {f"movie:{i}" for i in np.argsort(-(vecs @ q))[:10]}
        hits = index.search(q, limit=10, columns=["title_id"])
        recalls.append(len(exact & set(hits["title_id"].to_list())) / 10)
    assert np.mean(recalls) >= 0.99


def test_title_ids_from_row_ids_match_the_stored_column_on_a_pinned_version(tmp_path, rng):
    """``columns=["title_id"]`` maps LanceDB row ids to titles in memory: same titles, order and
    similarities as reading the column, also for a version pinned before a rewrite; an HNSW
    query may ask for more hits than its ``ef`` (the ef is raised to the limit)."""
    from core.vector_index import AnnIndex

    rows, vecs, _ = _clustered_rows(rng, 1_500)
    hnsw = AnnIndex("IVF_HNSW_FLAT", 1, rows_per_partition=1 << 40, ef=20)
    v1 = write_content_index(tmp_path, rows, index_min_rows=1_000, ann=hnsw)
    write_content_index(tmp_path, rows.slice(500), index_min_rows=1_000, ann=hnsw)  # new version
    pinned = ContentIndex(tmp_path, version=v1, ann=hnsw)
    assert pinned.indexed and pinned.count() == 1_500
    q = vecs[3]
    by_row_id = pinned.search(q, limit=60, columns=["title_id"])
    read = pinned.search(q, limit=60, columns=["title_id", "title"])
    assert by_row_id.height == 60 and by_row_id["title_id"][0] == "movie:3"
    assert by_row_id["title_id"].to_list() == read["title_id"].to_list()
    assert np.allclose(by_row_id["similarity"].to_numpy(), read["similarity"].to_numpy())
    latest = ContentIndex(tmp_path, ann=hnsw)
    assert (
        latest.count() == 1_000
        and "movie:3" not in latest.search(q, 60, columns=["title_id"])["title_id"].to_list()
    )
