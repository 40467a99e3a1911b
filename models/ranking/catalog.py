"""In-memory catalogue view used by ranking, explanations and search: titles, offers and vectors.

Built once at service start (``Catalog.build`` or ``Catalog.from_content_index``) and then only read,
so every lookup is an array index or a dict hit. Row ``i`` of every array describes the same title.

Decisions:

* Titles without a content vector are kept (they can still be found by title, filtered and ranked by
  popularity/collaborative scores) and flagged in ``has_vector``; their content similarity is ``nan``
  (unknown), never a made-up number. Vectors whose id is not a title are ignored (logged).
* Genres are compared in a canonical form: TV genre names are expanded to their movie equivalents
  ("Sci-Fi & Fantasy" -> Science Fiction + Fantasy, "Kids" -> Family, ...), see
  :data:`GENRE_ALIASES`. ``genres`` keeps the original names for display.
* Popularity prior = percentile rank of TMDB popularity in ``[0, 1]`` (ties share their mean rank,
  unknown popularity ranks lowest). Log or not does not matter for a rank, and a rank is robust to
  TMDB's heavy tail (a few titles with popularity 700 next to thousands below 20).
* Offers are grouped per title and country; JustWatch monetisation types map to the four kinds users
  choose between (:data:`MONETIZATION_KIND`).
* Everything a request needs per title is precomputed at build (raw genre lists for display, the
  rank of each id for stable tie-breaks, catalogue rows per country/kind/provider for availability
  masks), so serving a request never scans a polars frame.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from core.schemas import AVAILABILITY, conform
from pipelines.lib.matching import normalize_title

if TYPE_CHECKING:
    from core.vector_index import ContentIndex

log = logging.getLogger(__name__)

OfferKind = Literal["subscription", "free", "rent", "buy", "cinema"]

MONETIZATION_KIND: dict[str, OfferKind] = {
    "FLATRATE": "subscription",
    "FREE": "free",
    "ADS": "free",
    "RENT": "rent",
    "BUY": "buy",
    "CINEMA": "cinema",
}
"""JustWatch ``monetizationType`` -> the kind of offer a user filters on."""

GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    "Action & Adventure": ("Action", "Adventure"),
    "Sci-Fi & Fantasy": ("Science Fiction", "Fantasy"),
    "War & Politics": ("War",),
    "Kids": ("Family", "Animation"),
    "Sci-Fi": ("Science Fiction",),
    "Science-Fiction": ("Science Fiction",),
}
"""TV / alternative genre names -> canonical TMDB movie genre names."""


class CatalogError(ValueError):
    """The catalogue inputs are inconsistent (duplicate ids, bad vector shapes, unknown columns)."""


class Offer(BaseModel):
    """One way to watch a title in one country (serialises to the offer dict of the API)."""

    model_config = ConfigDict(frozen=True)

    country: str
    provider_id: str
    provider_name: str
    kind: OfferKind
    monetization: str
    """Raw JustWatch type (FLATRATE, FREE, ADS, RENT, BUY, CINEMA)."""
    price: float | None = None
    currency: str | None = None
    presentation_type: str | None = None
    deep_link: str | None = None


def canonical_genres(names: Iterable[str]) -> frozenset[str]:
    """Canonical genre names of a title (aliases expanded, originals kept)."""
    out: set[str] = set()
    for name in names:
        out.add(name)
        out.update(GENRE_ALIASES.get(name, ()))
    return frozenset(out)


def raw_genre_names(canonical: str) -> list[str]:
    """Every raw genre name that means ``canonical`` (itself plus aliases mapping to it)."""
    return sorted({canonical, *(k for k, v in GENRE_ALIASES.items() if canonical in v)})


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Rank-scale to ``[0, 1]`` (ties get their mean rank; ``nan`` ranks lowest)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.ones(1)
    filled = np.where(np.isfinite(values), values, -np.inf)
    ranks = pl.Series(filled).rank(method="average").to_numpy()
    return (ranks - 1.0) / (n - 1.0)


UNIT_NORM_TOLERANCE = 1e-6
"""A row whose length is within this of 1 is already a unit vector (up to float32 rounding)."""


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1. Rows already of unit length are kept bit for bit, so building a
    catalogue from its own vectors (a saved model loaded again) gives the same vectors: scaling
    them again moved the last bit of 5 % of the entries, and a loaded model ranked two near-tied
    titles differently from the one that was saved."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    keep = (norms[:, 0] == 0) | (np.abs(norms[:, 0] - 1.0) <= UNIT_NORM_TOLERANCE)
    norms[keep] = 1.0
    return (vectors / norms).astype(np.float32)


def _float_array(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)


@dataclass
class Catalog:
    """Titles + availability + content vectors with O(1) lookups (see module docstring)."""

    titles: pl.DataFrame
    """TITLES columns; row ``i`` is title ``ids[i]``."""
    vectors: np.ndarray
    """(n, d) float32 unit rows (zeros where ``has_vector`` is False)."""
    has_vector: np.ndarray
    availability: pl.DataFrame
    """AVAILABILITY rows of catalogue titles plus ``idx`` (row of the title) and ``kind``."""
    ids: np.ndarray = field(init=False)
    index: dict[str, int] = field(init=False)
    names: list[str] = field(init=False)
    genres: list[frozenset[str]] = field(init=False)
    """Canonical genres per title."""
    keywords: list[frozenset[str]] = field(init=False)
    """Lower-cased keywords per title."""
    genre_names: list[str] = field(init=False)
    genre_matrix: np.ndarray = field(init=False)
    """(n, G) bool: title has canonical genre ``genre_names[j]``."""
    popularity_prior: np.ndarray = field(init=False)
    runtime: np.ndarray = field(init=False)
    """Minutes (float, ``nan`` unknown)."""
    year: np.ndarray = field(init=False)
    vote_average: np.ndarray = field(init=False)
    types: np.ndarray = field(init=False)
    languages: np.ndarray = field(init=False)
    offers: dict[str, dict[str, list[Offer]]] = field(init=False)
    """title_id -> country -> offers (sorted: subscription, free, rent, buy, cinema; then price)."""
    id_list: list[str] = field(init=False)
    """``ids`` as a plain list (what collaborative models take as item ids)."""
    id_rank: np.ndarray = field(init=False)
    """(n,) int64: position of each id in sorted id order (a vectorised tie-break by id)."""
    display_genres: list[list[str]] = field(init=False)
    """Genre names per title as stored (not canonicalised), for display."""
    _by_name: dict[str, list[str]] = field(init=False)
    _offer_rows: dict[tuple[str, str], dict[str, np.ndarray]] = field(init=False)
    """(country, kind) -> provider_id -> sorted catalogue rows with such an offer."""
    _derived: dict[Hashable, np.ndarray] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        t = self.titles
        n = t.height
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n or len(self.has_vector) != n:
            raise CatalogError(
                f"vectors have shape {self.vectors.shape} but the catalogue has {n} titles"
            )
        self.id_list = [str(x) for x in t["title_id"].to_list()]
        self.ids = np.asarray(self.id_list, dtype=object)
        self.index = {tid: i for i, tid in enumerate(self.id_list)}
        if len(self.index) != n:
            dupes = t.filter(pl.col("title_id").is_duplicated())["title_id"].unique().head(5)
            raise CatalogError(f"duplicate title_id values, e.g. {dupes.to_list()}")
        self.id_rank = np.empty(n, dtype=np.int64)
        self.id_rank[np.argsort(self.ids, kind="stable")] = np.arange(n)
        self.names = [s or "" for s in t["title"].to_list()]
        self.display_genres = [list(g or []) for g in t["genres"].to_list()]
        self.genres = [canonical_genres(g) for g in self.display_genres]
        self.keywords = [frozenset(k.lower() for k in (ks or [])) for ks in t["keywords"].to_list()]
        self.genre_names = sorted(set().union(*self.genres)) if n else []
        col = {g: j for j, g in enumerate(self.genre_names)}
        self.genre_matrix = np.zeros((n, len(self.genre_names)), dtype=bool)
        for i, gs in enumerate(self.genres):
            for g in gs:
                self.genre_matrix[i, col[g]] = True
        self.popularity_prior = percentile_rank(_float_array(t["popularity"]))
        self.runtime = _float_array(t["runtime"])
        self.year = _float_array(t["year"])
        self.vote_average = _float_array(t["vote_average"])
        self.types = np.asarray(t["type"].to_list(), dtype=object)
        self.languages = np.asarray(t["language"].to_list(), dtype=object)
        self._by_name = defaultdict(list)
        originals = t["original_title"].to_list()
        for i in np.argsort(-self.popularity_prior, kind="stable"):
            for name in (self.names[i], originals[i] or ""):
                key = normalize_title(name)
                if key and self.ids[i] not in self._by_name[key]:
                    self._by_name[key].append(self.ids[i])
        self.offers = self._group_offers()
        self._offer_rows = self._index_offer_rows()

    def derived(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A per-title array computed once per catalogue (e.g. a mood's affinity), read-only.

        A catalogue never changes after construction (a new lake generation builds a new one),
        so request-independent per-title scores are computed on first use and shared.
        """
        if key not in self._derived:
            values = compute()
            values.flags.writeable = False
            self._derived[key] = values
        return self._derived[key]

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        titles: pl.DataFrame,
        availability: pl.DataFrame | None,
        vector_ids: Sequence[str],
        vectors: np.ndarray,
    ) -> Catalog:
        """Catalogue of ``titles`` (TITLES schema; missing columns become null) with their offers
        and the rows of ``vectors`` whose id is in ``vector_ids``."""
        start = time.perf_counter()
        if "title_id" not in titles.columns:
            raise CatalogError("titles frame has no 'title_id' column")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(vector_ids):
            raise CatalogError(
                f"vectors shape {vectors.shape} does not match {len(vector_ids)} vector ids"
            )
        t = conform(titles, "titles")
        n = t.height
        pos = {tid: i for i, tid in enumerate(vector_ids)}
        rows = np.full(n, -1, dtype=np.int64)
        for i, tid in enumerate(t["title_id"].to_list()):
            rows[i] = pos.get(tid, -1)
        has = rows >= 0
        full = np.zeros((n, vectors.shape[1]), dtype=np.float32)
        full[has] = vectors[rows[has]]
        norms_zero = has & (np.linalg.norm(full, axis=1) == 0)
        if norms_zero.any():
            bad = t["title_id"].filter(pl.Series(norms_zero)).head(5).to_list()
            raise CatalogError(
                f"{int(norms_zero.sum())} titles have an all-zero vector, e.g. {bad}"
            )
        full = _unit_rows(full)
        if (~has).any():
            log.warning("titles without a content vector", extra={"count": int((~has).sum())})
        extra = len(set(vector_ids) - set(t["title_id"].to_list()))
        if extra:
            log.info("vectors without a title ignored", extra={"count": extra})
        avail = cls._prepare_availability(availability, t)
        catalog = cls(titles=t, vectors=full, has_vector=has, availability=avail)
        log.info(
            "catalogue built",
            extra={
                "titles": n,
                "offers": avail.height,
                "seconds": round(time.perf_counter() - start, 3),
            },
        )
        return catalog

    @classmethod
    def from_content_index(
        cls,
        index: ContentIndex,
        titles: pl.DataFrame | None = None,
        availability: pl.DataFrame | None = None,
    ) -> Catalog:
        """Catalogue from a :class:`core.vector_index.ContentIndex`.

        ``titles``/``availability`` (lake tables) add the fields the index does not hold (overview,
        poster, offers with prices and deep links). Without ``titles`` the index's own columns are
        used; without ``availability`` titles have no offers.
        """
        ids, vectors = index.vectors()
        if titles is None:
            titles = index.frame(
                [
                    "title_id",
                    "title",
                    "type",
                    "year",
                    "genres",
                    "keywords",
                    "runtime",
                    "language",
                    "popularity",
                    "vote_average",
                ]
            )
        return cls.build(titles, availability, ids, vectors)

    @staticmethod
    def _prepare_availability(
        availability: pl.DataFrame | None, titles: pl.DataFrame
    ) -> pl.DataFrame:
        schema = {**AVAILABILITY, "idx": pl.Int64, "kind": pl.String}
        if availability is None or availability.height == 0:
            return pl.DataFrame(schema=schema)
        a = availability
        for col in ("title_id", "country", "provider_id", "monetization"):
            if col not in a.columns:
                raise CatalogError(f"availability frame has no {col!r} column")
        unknown = set(a["monetization"].drop_nulls().unique().to_list()) - set(MONETIZATION_KIND)
        if unknown or a["monetization"].null_count():
            raise CatalogError(
                f"availability has unknown or null monetization types {sorted(unknown)}"
            )
        a = conform(a, "availability")
        idx = (
            titles.select("title_id")
            .with_row_index("idx")
            .with_columns(pl.col("idx").cast(pl.Int64))
        )
        return (
            a.join(idx, on="title_id", how="inner")
            .with_columns(pl.col("monetization").replace_strict(MONETIZATION_KIND).alias("kind"))
            .unique(
                subset=["title_id", "country", "provider_id", "monetization", "presentation_type"],
                keep="first",
                maintain_order=True,
            )
            .select(list(schema))
        )

    def _group_offers(self) -> dict[str, dict[str, list[Offer]]]:
        order = {"subscription": 0, "free": 1, "rent": 2, "buy": 3, "cinema": 4}
        out: dict[str, dict[str, list[Offer]]] = defaultdict(lambda: defaultdict(list))
        for r in self.availability.iter_rows(named=True):
            out[r["title_id"]][r["country"]].append(
                Offer(
                    country=r["country"],
                    provider_id=r["provider_id"],
                    provider_name=r["provider_name"] or r["provider_id"],
                    kind=r["kind"],
                    monetization=r["monetization"],
                    price=r["price"],
                    currency=r["currency"],
                    presentation_type=r["presentation_type"],
                    deep_link=r["deep_link"],
                )
            )
        for per_country in out.values():
            for offers in per_country.values():
                offers.sort(key=lambda o: (order[o.kind], o.price or 0.0, o.provider_id))
        return {k: dict(v) for k, v in out.items()}

    def _index_offer_rows(self) -> dict[tuple[str, str], dict[str, np.ndarray]]:
        grouped = (
            self.availability.group_by("country", "kind", "provider_id")
            .agg(pl.col("idx").unique().sort())
            .iter_rows()
        )
        out: dict[tuple[str, str], dict[str, np.ndarray]] = defaultdict(dict)
        for country, kind, provider, rows in grouped:
            out[(country, kind)][provider] = np.asarray(rows, dtype=np.int64)
        return dict(out)

    # ---- lookups --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, title_id: object) -> bool:
        return title_id in self.index

    def indices(self, title_ids: Iterable[str]) -> np.ndarray:
        """Rows of the known ids (unknown ids are skipped)."""
        return np.asarray([self.index[t] for t in title_ids if t in self.index], dtype=np.int64)

    def name(self, title_id: str) -> str:
        return self.names[self.index[title_id]]

    def by_title(self, name: str, year: int | None = None) -> list[str]:
        """Title ids whose (original) title normalises like ``name``, most popular first."""
        ids = self._by_name.get(normalize_title(name), [])
        if year is not None:
            ids = [t for t in ids if self.year[self.index[t]] == year]
        return list(ids)

    def offers_for(self, title_id: str, country: str | None) -> list[Offer]:
        """Offers of a title in ``country`` (every country when ``None``)."""
        per_country = self.offers.get(title_id, {})
        if country is not None:
            return list(per_country.get(country, []))
        return [o for c in sorted(per_country) for o in per_country[c]]

    def offer_mask(
        self, country: str, kinds: Iterable[str], services: Iterable[str] | None = None
    ) -> np.ndarray:
        """Rows with an offer in ``country`` of one of ``kinds`` on one of ``services`` (any
        provider when ``services`` is empty or ``None``)."""
        out = np.zeros(len(self), dtype=bool)
        wanted = set(services or ())
        for kind in kinds:
            for provider, rows in self._offer_rows.get((country, kind), {}).items():
                if not wanted or provider in wanted:
                    out[rows] = True
        return out

    def providers(self, country: str, kinds: Iterable[str] | None = None) -> list[str]:
        """Provider ids with at least one offer in ``country`` (optionally of the given kinds)."""
        wanted = None if kinds is None else set(kinds)
        return sorted(
            {
                provider
                for (c, kind), per_provider in self._offer_rows.items()
                if c == country and (wanted is None or kind in wanted)
                for provider in per_provider
            }
        )

    def row(self, title_id: str) -> dict:
        """The TITLES row of one title as a dict."""
        return self.titles.row(self.index[title_id], named=True)
