"""Semantic search over the content catalogue: "thriller movies like Inception under 2 hours".

Query vector: ``encode_query(intent.text)`` blended with the mean vector of the titles in
``intent.like_titles`` (resolved with :meth:`Catalog.by_title`, most popular match) as
``LIKE_WEIGHT * like + (1 - LIKE_WEIGHT) * text``; only one of them when the other is missing. With
neither, a text is made from the moods and genres ("tense Thriller movie"); with nothing at all the
results are ordered by popularity (and the personal boost).

Hard filters (:class:`SearchFilters`; a field set there overrides the intent's, otherwise the
intent's value applies): genres (any of, canonical names, so "Science Fiction" also finds a "Sci-Fi &
Fantasy" series), excluded genres, year range, max runtime, min rating, language, content type and
services/country (:class:`AvailabilityFilter`, subscription + free offers). A title with an unknown
value for a filtered field does not pass (we cannot promise it fits). The like-titles themselves are
never returned. With a query vector, titles without a content vector are left out.

Relevance = cosine + ``POPULARITY_TIEBREAK`` x popularity prior + ``PERSONAL_BOOST`` x max(0, cosine to
the history profile) (only with a history) + ``MOOD_BOOST`` x mood fit in [0, 1] (only with moods).
Ties are broken by ``title_id``, so pages are stable: ``offset`` is the cursor, ``next_offset`` the
next one (``None`` on the last page).

Two execution paths: an exact in-memory scan of the titles passing the filters, and LanceDB retrieval
(``index``) filtered in memory by the same mask (a post-filter: a SQL prefilter would evaluate every
row of the table). The index path fetches candidates by cosine, scaled by the share of titles that
pass, and widens the fetch until no unfetched title could still enter the page (its relevance is at
most its cosine plus the maximum boost), then scores them exactly like the scan. On a flat
(unindexed) table both give identical results; with the ANN index (``core.vector_index``, built
from 20k titles on) retrieval is approximate at the recall measured there.

Which path: the index when the table has an ANN index and at least :data:`INDEX_MIN_CANDIDATES`
titles pass the filters; otherwise the scan, whose cost grows with the titles that pass (a
selective filter on a large catalogue is cheaper to scan than to fetch enough ANN candidates that
pass it). This keeps search time nearly flat in the catalogue size (``benchmarks/search_index.py``:
p50 at 100k titles vs 10k).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.embeddings.encoder import encode_query
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import GENRE_ALIASES, Catalog, Offer
from models.ranking.context import mood_affinity
from models.ranking.intent import QueryIntent

if TYPE_CHECKING:
    from core.vector_index import ContentIndex

log = logging.getLogger(__name__)

LIKE_WEIGHT = 0.6
POPULARITY_TIEBREAK = 0.02
PERSONAL_BOOST = 0.1
MOOD_BOOST = 0.05
INDEX_MIN_CANDIDATES = 20_000
"""The ANN index is used when at least this many titles pass the filters (else the exact scan:
scanning 20k x 384 floats costs about what one ANN query does, see the module docstring)."""
_EPS = 1e-5


class SearchError(ValueError):
    """The search request cannot be answered as asked (e.g. services without a country)."""


class SearchFilters(BaseModel):
    """Hard filters of a search request (the HTTP body's ``filters``)."""

    model_config = ConfigDict(extra="forbid")

    genres: list[str] = Field(default_factory=list)
    """Any of these (TMDB genre names)."""
    exclude_genres: list[str] = Field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    max_runtime: int | None = Field(None, gt=0, description="minutes")
    min_rating: float | None = Field(None, ge=0, le=10)
    services: list[str] = Field(default_factory=list)
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    content_type: Literal["movie", "series"] | None = None


class SearchHit(BaseModel):
    title_id: str
    title: str
    type: str | None
    year: int | None
    genres: list[str]
    runtime: int | None
    language: str | None
    vote_average: float | None
    overview: str | None
    poster_path: str | None
    relevance: float
    similarity: float | None
    """Cosine to the query vector (``None`` without one)."""
    offers: list[Offer]


class SearchResults(BaseModel):
    hits: list[SearchHit]
    total: int
    """Titles matching the filters (all pages)."""
    offset: int
    limit: int
    next_offset: int | None
    query_source: Literal["text", "like_titles", "text+like_titles", "genres_moods", "none"]
    resolved_like_titles: dict[str, str] = Field(default_factory=dict)
    unresolved_like_titles: list[str] = Field(default_factory=list)


def effective_filters(intent: QueryIntent, filters: SearchFilters | None) -> SearchFilters:
    """The filters to apply: each field from ``filters`` when set, else from the intent."""
    f = filters or SearchFilters()
    merged = {}
    for name in SearchFilters.model_fields:
        own = getattr(f, name)
        if own not in (None, []):
            merged[name] = own
        elif name in QueryIntent.model_fields:
            merged[name] = getattr(intent, name)
    return SearchFilters.model_validate(merged)


def _canonical_request(genres: list[str]) -> set[str]:
    return {c for g in genres for c in GENRE_ALIASES.get(g, (g,))}


def availability_of(f: SearchFilters) -> AvailabilityFilter | None:
    if f.services and f.country is None:
        raise SearchError("a services filter needs a country (e.g. 'US')")
    if f.country is None:
        return None
    return AvailabilityFilter(country=f.country, services=f.services)


def filter_mask(catalog: Catalog, f: SearchFilters) -> np.ndarray:
    """Boolean mask of catalogue rows passing the hard filters."""
    n = len(catalog)
    keep = np.ones(n, dtype=bool)
    cols = {g: j for j, g in enumerate(catalog.genre_names)}

    def any_genre(names: set[str]) -> np.ndarray:
        idx = [cols[g] for g in names if g in cols]
        return catalog.genre_matrix[:, idx].any(axis=1) if idx else np.zeros(n, dtype=bool)

    if f.genres:
        keep &= any_genre(_canonical_request(f.genres))
    if f.exclude_genres:
        keep &= ~any_genre(_canonical_request(f.exclude_genres))
    with np.errstate(invalid="ignore"):
        if f.year_min is not None:
            keep &= catalog.year >= f.year_min
        if f.year_max is not None:
            keep &= catalog.year <= f.year_max
        if f.max_runtime is not None:
            keep &= catalog.runtime <= f.max_runtime
        if f.min_rating is not None:
            keep &= catalog.vote_average >= f.min_rating
    if f.language is not None:
        keep &= catalog.languages == f.language
    if f.content_type is not None:
        keep &= catalog.types == f.content_type
    avail = availability_of(f)
    if avail is not None:
        keep &= avail.mask(catalog)
    return keep


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def query_vector(
    catalog: Catalog, intent: QueryIntent, encode: Callable[[str], np.ndarray] = encode_query
) -> tuple[np.ndarray | None, dict[str, str], list[str], str]:
    """(vector or None, resolved like-titles name -> id, unresolved names, source)."""
    resolved: dict[str, str] = {}
    unresolved: list[str] = []
    like_vecs = []
    for name in intent.like_titles:
        ids = [t for t in catalog.by_title(name) if catalog.has_vector[catalog.index[t]]]
        if ids:
            resolved[name] = ids[0]
            like_vecs.append(catalog.vectors[catalog.index[ids[0]]])
        else:
            unresolved.append(name)
    text = intent.text.strip()
    source = "none"
    if not text and not like_vecs and (intent.genres or intent.moods):
        kind = {"movie": " movie", "series": " TV series"}.get(intent.content_type or "", "")
        text = " ".join([*intent.moods, *intent.genres]) + kind
        source = "genres_moods"
    text_vec = _unit(np.asarray(encode(text), dtype=np.float64)) if text else None
    like_vec = _unit(np.mean(like_vecs, axis=0).astype(np.float64)) if like_vecs else None
    if like_vec is not None and text_vec is not None:
        vec = _unit(LIKE_WEIGHT * like_vec + (1 - LIKE_WEIGHT) * text_vec)
        if source == "none":
            source = "text+like_titles"
    elif like_vec is not None:
        vec, source = like_vec, "like_titles"
    elif text_vec is not None:
        vec = text_vec
        source = "text" if source == "none" else source
    else:
        vec = None
    return (
        None if vec is None else vec.astype(np.float32),
        resolved,
        unresolved,
        source,
    )


def _history_profile(catalog: Catalog, history: list[str] | None) -> np.ndarray | None:
    if not history:
        return None
    rows = catalog.indices(history)
    rows = rows[catalog.has_vector[rows]] if len(rows) else rows
    if not len(rows):
        return None
    return _unit(catalog.vectors[rows].astype(np.float64).mean(axis=0)).astype(np.float32)


class _Scorer:
    """Relevance of catalogue rows for one request (shared by both execution paths)."""

    def __init__(
        self,
        catalog: Catalog,
        vector: np.ndarray | None,
        profile: np.ndarray | None,
        moods: list[str],
    ) -> None:
        self.catalog = catalog
        self.vector = vector
        self.profile = profile
        self.mood = np.clip(mood_affinity(catalog, moods), 0.0, 1.0) if moods else None
        self.max_boost = (
            POPULARITY_TIEBREAK
            + (PERSONAL_BOOST if profile is not None else 0.0)
            + (MOOD_BOOST if moods else 0.0)
        )

    def similarity(self, rows: np.ndarray) -> np.ndarray | None:
        if self.vector is None:
            return None
        return (self.catalog.vectors[rows] @ self.vector).astype(np.float64)

    def relevance(self, rows: np.ndarray, sim: np.ndarray | None) -> np.ndarray:
        rel = POPULARITY_TIEBREAK * self.catalog.popularity_prior[rows]
        if sim is not None:
            rel = rel + sim
        if self.profile is not None:
            personal = self.catalog.vectors[rows] @ self.profile
            rel = rel + PERSONAL_BOOST * np.clip(personal, 0.0, None)
        if self.mood is not None:
            rel = rel + MOOD_BOOST * self.mood[rows]
        return rel


def _order(catalog: Catalog, rows: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Positions sorted by relevance desc, then title id."""
    ids = np.asarray([str(t) for t in catalog.ids[rows]])
    return np.lexsort((ids, -rel))


def _exact(
    catalog: Catalog, scorer: _Scorer, mask: np.ndarray, need: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rows = np.flatnonzero(mask)
    sim = scorer.similarity(rows)
    rel = scorer.relevance(rows, sim)
    if need < len(rows):  # keep the top ``need`` and every row tied with the last one, then sort
        cut = np.partition(rel, len(rows) - need)[len(rows) - need]
        top = np.flatnonzero(rel >= cut)
        rows, rel = rows[top], rel[top]
        sim = None if sim is None else sim[top]
    order = _order(catalog, rows, rel)[:need]
    return rows[order], rel[order], None if sim is None else sim[order]


def _via_index(
    catalog: Catalog,
    index: ContentIndex,
    scorer: _Scorer,
    mask: np.ndarray,
    need: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Retrieve by cosine from the ANN index, keep the fetched titles that pass ``mask``.

    The filters are applied to the fetched titles in memory (post-filter), not as a LanceDB SQL
    prefilter: a prefilter evaluates the SQL over every row (``array_has_any`` over 100k list
    values cost ~20 ms, more than the search), while this path only runs when at least
    :data:`INDEX_MIN_CANDIDATES` titles pass, so the fetch is scaled by the share that passes
    (>= 20 % at 100k titles) and widened until no unfetched title can enter the page. Once an ANN
    fetch would exceed the titles that pass, scanning those exactly is cheaper and answers instead
    (a flat table is searched exactly by LanceDB anyway, up to all its rows).
    """
    assert scorer.vector is not None
    total_rows = index.count()
    passing = int(mask.sum())
    share = passing / max(len(mask), 1)
    fetch = min(total_rows, max(50, int(np.ceil(4 * need / max(share, 1e-9)))))
    while True:
        if index.indexed and fetch > passing:
            return _exact(catalog, scorer, mask, need)
        found = index.search(scorer.vector, limit=fetch, columns=["title_id"])
        ids = found["title_id"].to_list()
        unknown = [t for t in ids if t not in catalog.index]
        if unknown:
            log.warning("index titles missing from the catalogue", extra={"count": len(unknown)})
        fetched = catalog.indices(ids)
        rows = fetched[mask[fetched]] if len(fetched) else fetched
        sim = scorer.similarity(rows)
        rel = scorer.relevance(rows, sim)
        order = _order(catalog, rows, rel)[:need]
        if len(ids) < fetch or fetch >= total_rows:  # the index holds no more titles
            break
        floor = float(found["similarity"].min()) if found.height else -1.0
        if len(order) >= need and floor + scorer.max_boost + _EPS < rel[order[-1]]:
            break
        fetch = min(fetch * 4, total_rows)
    assert sim is not None
    return rows[order], rel[order], sim[order]


def search(
    catalog: Catalog,
    index: ContentIndex | None,
    intent: QueryIntent,
    filters: SearchFilters | None = None,
    history: list[str] | None = None,
    limit: int = 20,
    offset: int = 0,
    encode: Callable[[str], np.ndarray] = encode_query,
    use_index: bool | None = None,
) -> SearchResults:
    """One page of search results (see module docstring).

    ``index`` is a :class:`core.vector_index.ContentIndex` over the same titles (or
    ``None``); ``use_index`` forces (True) or forbids (False) it, default: used when it has an ANN
    index and at least :data:`INDEX_MIN_CANDIDATES` titles pass the filters. ``encode`` turns text
    into a unit vector.
    """
    if limit < 1:
        raise SearchError(f"limit must be >= 1, got {limit}")
    if offset < 0:
        raise SearchError(f"offset must be >= 0, got {offset}")
    f = effective_filters(intent, filters)
    vector, resolved, unresolved, source = query_vector(catalog, intent, encode)
    mask = filter_mask(catalog, f)
    mask[catalog.indices(resolved.values())] = False
    if vector is not None:
        mask &= catalog.has_vector
    scorer = _Scorer(catalog, vector, _history_profile(catalog, history), list(intent.moods))
    need = offset + limit
    if use_index is None:
        use_index = index is not None and index.indexed and int(mask.sum()) >= INDEX_MIN_CANDIDATES
    if use_index and index is None:
        raise SearchError("use_index=True but no index was given")
    if use_index and vector is not None:
        assert index is not None
        rows, rel, sim = _via_index(catalog, index, scorer, mask, need)
    else:
        rows, rel, sim = _exact(catalog, scorer, mask, need)
    total = int(mask.sum())
    avail = availability_of(f)
    hits = [
        _hit(catalog, int(rows[i]), float(rel[i]), None if sim is None else float(sim[i]), avail)
        for i in range(offset, min(need, len(rows)))
    ]
    log.info(
        "search",
        extra={"source": source, "total": total, "returned": len(hits), "index": bool(use_index)},
    )
    return SearchResults(
        hits=hits,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=need if need < total else None,
        query_source=source,  # type: ignore[arg-type]
        resolved_like_titles=resolved,
        unresolved_like_titles=unresolved,
    )


def _hit(
    catalog: Catalog, row: int, rel: float, sim: float | None, avail: AvailabilityFilter | None
) -> SearchHit:
    tid = str(catalog.ids[row])
    t = catalog.titles.row(row, named=True)
    offers = avail.offers(catalog, tid) if avail is not None else catalog.offers_for(tid, None)
    return SearchHit(
        title_id=tid,
        title=t["title"] or "",
        type=t["type"],
        year=t["year"],
        genres=list(t["genres"] or []),
        runtime=t["runtime"],
        language=t["language"],
        vote_average=t["vote_average"],
        overview=t["overview"],
        poster_path=t["poster_path"],
        relevance=round(rel, 6),
        similarity=None if sim is None else round(sim, 6),
        offers=offers,
    )
