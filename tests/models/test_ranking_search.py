"""Semantic search: filters, like-titles, stable pages, exact scan == LanceDB path, real quality."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.schemas import EMBEDDING_DIM, conform
from core.vector_index import AnnIndex, ContentIndex, build_content_rows, write_content_index
from models.ranking.catalog import Catalog
from models.ranking.intent import QueryIntent
from models.ranking.search import SearchError, SearchFilters, effective_filters, search

N = 300
GENRES = ["Thriller", "Comedy", "Drama", "Science Fiction", "Horror", "Sci-Fi & Fantasy"]


def _frames() -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    ids = [f"movie:{i}" for i in range(N)]
    titles = pl.DataFrame(
        {
            "title_id": ids,
            "title": [f"Film {i}" for i in range(N)],
            "type": ["series" if i % 7 == 0 else "movie" for i in range(N)],
            "year": rng.integers(1970, 2024, N).tolist(),
            "genres": [
                sorted(set(rng.choice(GENRES, size=rng.integers(1, 3)).tolist())) for _ in range(N)
            ],
            "runtime": [
                None if i % 29 == 0 else int(x) for i, x in enumerate(rng.integers(20, 190, N))
            ],
            "language": rng.choice(["en", "fr", "ko"], N, p=[0.7, 0.2, 0.1]).tolist(),
            "popularity": rng.gamma(1.0, 20.0, N).round(1).tolist(),  # ties are likely
            "vote_average": rng.uniform(3, 9, N).round(1).tolist(),
        }
    )
    titles = titles.with_columns(
        pl.when(pl.col("title_id") == "movie:0")
        .then(pl.lit("Inception"))
        .otherwise(pl.col("title"))
        .alias("title")
    )
    offers = [(ids[i], "US", ["netflix", "hulu"][i % 2], "FLATRATE") for i in range(0, N, 3)] + [
        (ids[i], "GB", "netflix", "FLATRATE") for i in range(1, N, 5)
    ]
    avail = pl.DataFrame(
        offers, schema=["title_id", "country", "provider_id", "monetization"], orient="row"
    )
    vectors = rng.normal(size=(N, EMBEDDING_DIM)).astype(np.float32)
    vectors[1] = vectors[0] + 0.1 * vectors[1]  # movie:1 is Inception's close neighbour
    return conform(titles, "titles"), avail, vectors


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    return _frames()


@pytest.fixture(scope="module")
def catalog(frames: tuple[pl.DataFrame, pl.DataFrame, np.ndarray]) -> Catalog:
    titles, avail, vectors = frames
    return Catalog.build(titles, avail, titles["title_id"].to_list(), vectors)


@pytest.fixture(scope="module")
def index(
    frames: tuple[pl.DataFrame, pl.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> ContentIndex:
    titles, avail, vectors = frames
    emb = pl.DataFrame({"title_id": titles["title_id"], "vector": vectors.tolist()})
    path = tmp_path_factory.mktemp("lance")
    write_content_index(path, build_content_rows(titles, avail, emb))
    return ContentIndex(path)


@pytest.fixture(scope="module")
def ann_index(
    frames: tuple[pl.DataFrame, pl.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> ContentIndex:
    """The same titles with an IVF_FLAT index probing all its 2 partitions (exact, but indexed)."""
    titles, avail, vectors = frames
    emb = pl.DataFrame({"title_id": titles["title_id"], "vector": vectors.tolist()})
    path = tmp_path_factory.mktemp("lance-ann")
    ann = AnnIndex("IVF_FLAT", nprobes=2, rows_per_partition=N // 2)
    write_content_index(path, build_content_rows(titles, avail, emb), index_min_rows=0, ann=ann)
    found = ContentIndex(path, ann=ann)
    assert found.indexed
    return found


def _encode(text: str) -> np.ndarray:
    """Deterministic text vector for tests (hash-seeded), unit length."""
    v = np.random.default_rng(zlib.crc32(text.encode())).normal(size=EMBEDDING_DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_filters_are_all_applied(catalog: Catalog) -> None:
    intent = QueryIntent(
        text="something tense", genres=["Science Fiction"], exclude_genres=["Horror"]
    )
    filters = SearchFilters(
        year_min=1990,
        max_runtime=120,
        min_rating=5,
        country="US",
        services=["netflix"],
        language="en",
        content_type="movie",
    )
    res = search(catalog, None, intent, filters, limit=500, encode=_encode)
    assert res.total == len(res.hits) > 0
    for h in res.hits:
        genres = set(h.genres)
        assert genres & {"Science Fiction", "Sci-Fi & Fantasy"} and "Horror" not in genres
        assert h.year >= 1990 and h.runtime <= 120 and h.vote_average >= 5
        assert h.language == "en" and h.type == "movie"
        assert [o.provider_id for o in h.offers] == ["netflix"]
    sims = [h.similarity for h in res.hits]
    assert all(np.isfinite(sims))


def test_like_titles_are_resolved_used_and_excluded(catalog: Catalog) -> None:
    res = search(
        catalog,
        None,
        QueryIntent(like_titles=["inception", "No Such Film"]),
        limit=3,
        encode=_encode,
    )
    assert res.resolved_like_titles == {"inception": "movie:0"}
    assert res.unresolved_like_titles == ["No Such Film"]
    assert res.query_source == "like_titles"
    assert res.hits[0].title_id == "movie:1"
    assert "movie:0" not in {
        h.title_id
        for h in search(
            catalog, None, QueryIntent(like_titles=["Inception"]), limit=N, encode=_encode
        ).hits
    }


def test_pages_are_stable_and_complete(catalog: Catalog) -> None:
    intent = QueryIntent(text="a heist", moods=["tense"])
    full = search(catalog, None, intent, limit=N, encode=_encode, history=["movie:5", "movie:9"])
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = search(
            catalog,
            None,
            intent,
            limit=7,
            offset=offset,
            encode=_encode,
            history=["movie:5", "movie:9"],
        )
        ids += [h.title_id for h in page.hits]
        offset = page.next_offset
    assert ids == [h.title_id for h in full.hits]
    assert len(ids) == len(set(ids)) == full.total
    rel = [h.relevance for h in full.hits]
    assert rel == sorted(rel, reverse=True)


@pytest.mark.parametrize(
    ("intent", "filters", "history"),
    [
        (QueryIntent(text="space opera"), None, None),
        (
            QueryIntent(text="dark", genres=["Thriller"], moods=["dark"]),
            SearchFilters(country="US"),
            None,
        ),
        (
            QueryIntent(like_titles=["Inception"], content_type="movie"),
            SearchFilters(max_runtime=150, min_rating=4),
            ["movie:3"],
        ),
        (
            QueryIntent(text="x", exclude_genres=["Drama"], year_min=2000, language="fr"),
            SearchFilters(country="GB", services=["netflix"]),
            None,
        ),
    ],
)
def test_index_path_gives_identical_results(
    catalog: Catalog,
    index: ContentIndex,
    intent: QueryIntent,
    filters: SearchFilters | None,
    history: list[str] | None,
) -> None:
    for offset in (0, 10):
        exact = search(
            catalog, None, intent, filters, history, limit=10, offset=offset, encode=_encode
        )
        via = search(
            catalog,
            index,
            intent,
            filters,
            history,
            limit=10,
            offset=offset,
            encode=_encode,
            use_index=True,
        )
        assert via.model_dump() == exact.model_dump()


@pytest.mark.parametrize(
    "filters",
    [
        None,
        SearchFilters(min_rating=4.0),
        SearchFilters(genres=["Drama"]),
        SearchFilters(country="US", services=["netflix"]),
    ],
)
def test_ann_index_path_post_filters_and_matches_the_scan(
    catalog: Catalog,
    ann_index: ContentIndex,
    filters: SearchFilters | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an ANN index the fetch is filtered in memory; a selective filter (fewer titles pass
    than one fetch) is answered by the exact scan without asking the index."""
    limits: list[int] = []
    real_search = ContentIndex.search

    def spy(self: ContentIndex, vector: np.ndarray, limit: int = 10, **kw: object) -> pl.DataFrame:
        assert kw.get("where") is None  # no SQL prefilter
        limits.append(limit)
        return real_search(self, vector, limit=limit, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ContentIndex, "search", spy)
    intent = QueryIntent(text="space opera")
    exact = search(catalog, None, intent, filters, limit=10, encode=_encode)
    via = search(catalog, ann_index, intent, filters, limit=10, encode=_encode, use_index=True)
    assert via.model_dump() == exact.model_dump()
    first_fetch = max(50, -(-4 * 10 * N // via.total))  # 4 x the page over the passing share
    if first_fetch <= via.total:  # the fetch fits in the passing titles: the index answers
        assert limits and limits[0] == first_fetch
    else:
        assert limits == []


def test_filter_precedence_and_errors(catalog: Catalog) -> None:
    merged = effective_filters(
        QueryIntent(genres=["Comedy"], year_min=1990), SearchFilters(genres=["Drama"])
    )
    assert merged.genres == ["Drama"] and merged.year_min == 1990
    with pytest.raises(SearchError, match="country"):
        search(
            catalog,
            None,
            QueryIntent(text="x"),
            SearchFilters(services=["netflix"]),
            encode=_encode,
        )
    with pytest.raises(SearchError, match="limit"):
        search(catalog, None, QueryIntent(text="x"), limit=0, encode=_encode)
    no_query = search(catalog, None, QueryIntent(), limit=3, encode=_encode)
    assert no_query.query_source == "none" and no_query.hits[0].similarity is None


# ---- quality on real TMDB data ------------------------------------------------------------------
EXPECTED_NEIGHBOURS = {
    "Shutter Island",
    "The Prestige",
    "The Dark Knight Rises",
    "The Dark Knight",
    "Source Code",
    "Looper",
    "Minority Report",
    "Vanilla Sky",
    "Gone Girl",
    "The Cell",
}


def _tmdb_titles(path: Path) -> pl.DataFrame:
    raw = pl.read_csv(path, infer_schema=False)

    def names(col: str) -> pl.Expr:
        return pl.col(col).map_elements(
            lambda s: [x["name"] for x in json.loads(s)], return_dtype=pl.List(pl.String)
        )

    df = raw.select(
        ("movie:" + pl.col("id")).alias("title_id"),
        pl.col("id").cast(pl.Int64).alias("tmdb_id"),
        pl.lit("movie").alias("type"),
        "title",
        "original_title",
        "overview",
        pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False).alias("year"),
        names("genres").alias("genres"),
        names("keywords").alias("keywords"),
        pl.col("runtime").cast(pl.Float64, strict=False).cast(pl.Int32).alias("runtime"),
        pl.col("original_language").alias("language"),
        pl.col("popularity").cast(pl.Float64),
        pl.col("vote_average").cast(pl.Float64),
    )
    return conform(df, "titles")


@pytest.fixture(scope="session")
def tmdb_catalog(shared_data: Path) -> Catalog:
    """~600 real titles (thrillers/sci-fi/crime plus a random sample) with real embeddings."""
    from core.content import content_text
    from models.embeddings.encoder import encode_texts

    titles = _tmdb_titles(shared_data / "tmdb" / "tmdb_5000_movies.csv")
    must = titles.filter(pl.col("title").is_in([*EXPECTED_NEIGHBOURS, "Inception", "Interstellar"]))
    themed = titles.filter(
        pl.col("genres").list.set_intersection(["Thriller", "Science Fiction", "Crime"]).list.len()
        > 0
    )
    subset = pl.concat([must, themed.sample(380, seed=3), titles.sample(220, seed=4)]).unique(
        "title_id", maintain_order=True
    )
    vectors = encode_texts([content_text(r) for r in subset.iter_rows(named=True)], batch_size=64)
    return Catalog.build(subset, None, subset["title_id"].to_list(), vectors)


@pytest.mark.realdata
@pytest.mark.slow
def test_thrillers_like_inception(tmdb_catalog: Catalog) -> None:
    intent = QueryIntent(genres=["Thriller"], like_titles=["Inception"], content_type="movie")
    res = search(tmdb_catalog, None, intent, limit=10)
    top5 = res.hits[:5]
    assert all("Thriller" in h.genres for h in res.hits)
    assert "Inception" not in {h.title for h in res.hits}
    assert EXPECTED_NEIGHBOURS & {h.title for h in top5}, [h.title for h in top5]
    with_text = search(
        tmdb_catalog,
        None,
        intent.model_copy(update={"text": "mind-bending heist in dreams"}),
        limit=5,
    )
    assert EXPECTED_NEIGHBOURS & {h.title for h in with_text.hits}


def test_catalog_from_content_index_matches_the_lake_frames(
    catalog: Catalog, index: ContentIndex, frames: tuple[pl.DataFrame, pl.DataFrame, np.ndarray]
) -> None:
    titles, avail, _ = frames
    from_index = Catalog.from_content_index(index, titles, avail)
    order = [from_index.index[t] for t in catalog.ids]
    np.testing.assert_allclose(from_index.vectors[order], catalog.vectors, atol=1e-6)
    assert from_index.offers == catalog.offers
    bare = Catalog.from_content_index(index)  # index columns only: no offers, same genres
    assert bare.genres[bare.index["movie:3"]] == catalog.genres[catalog.index["movie:3"]]
