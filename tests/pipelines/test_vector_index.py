from datetime import UTC, datetime

import numpy as np
import polars as pl

from pipelines.lib.schemas import conform
from pipelines.lib.vector_index import ContentIndex, build_content_rows, write_content_index


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
    vecs = rng.normal(size=(3, 384)).astype(np.float32)
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
    assert matrix.shape == (3, 384) and ids[0] == rows.column("title_id")[0].as_py()

    v2 = write_content_index(tmp_path, rows.slice(0, 1))
    assert v2 > v1 and ContentIndex(tmp_path).count() == 1
    assert ContentIndex(tmp_path, version=v1).count() == 3  # time travel: rollback is a checkout


def test_title_without_vector_is_refused(rng):
    titles, availability, emb, _ = _world(rng)
    import pytest

    with pytest.raises(ValueError, match="1 titles have no embedding"):
        build_content_rows(titles, availability, emb.head(2))
