"""Hybrid ranking: collaborative fold-in + content similarity + popularity prior + context fit.

For one user (described by a history, so a new user with three ratings and fresh feedback count at
once) every candidate gets up to four components, each min-max normalised over the candidates:

* ``collaborative``: ``collaborative.score_history(liked, weights, catalogue_ids)`` (fold-in);
* ``content``: mean of (a) cosine to the weighted mean of the history vectors (the profile; negative
  weights = dislikes push it away) and (b) the max cosine to any liked history title, so one strong
  match counts even in a broad history; an optional ``query_vector`` is blended into the profile;
* ``popularity``: the catalogue's popularity prior;
* ``context``: :func:`models.ranking.context.context_effect` score.

The final score is the weighted mean of the components *available for that candidate*: a component
that is ``nan`` for a title (a new title the collaborative model never saw, a title without vector)
is left out and the remaining weights are renormalised, so new titles can still surface. A component
that is constant over the candidates (no information, e.g. the collaborative model knows none of the
history) is dropped for everyone. Cold start (empty history): content (only with a query vector),
popularity and context. ``Recommendation.components`` are the weighted contributions, summing to
``score``.

Serving speed (the ranker runs on every ``/recommend``): the user-dependent raw components are
computed once over the whole catalogue and, when the caller names a ``cache_key`` (the user id),
kept in a per-ranker :class:`models.ranking.score_cache.PersonalScoreCache`; context effects are
cached per context; candidate masks come from precomputed catalogue arrays; the top ``k`` is
selected with numpy and only those ``k`` are explained, reading the history once. Results are the
same as scoring the candidates one by one: 100 users of the serving benchmark's world got identical
responses before and after (in principle BLAS may round the last float32 bit differently when the
content similarity covers all rows rather than the candidates, far below the 6 decimals of scores).
The content cosines are read from the catalogue's title-by-title cosine table
(:func:`similarity_table`, ``vectors @ vectors.T`` computed once per catalogue, float32) when it
fits in ``similarity_table_bytes`` (256 MiB: up to 8,192 titles): a cold user's content score is
then a weighted sum and a maximum over the history titles' rows, instead of a product of the
history with the whole catalogue's vectors. ``benchmarks/recommend_cpu.py --compare 9a4a97d``
measured 0.47x the ranker's CPU per cold user (5,000 titles, 20-title histories; of 500 users
none had other titles, 170 a score moved by at most 1e-6); ``benchmarks/server_cpu.py --baseline
9a4a97d`` 0.75x the server CPU of a cold ``/recommend``. A pair's cosine is the same whatever else
the request asks for. Larger catalogues (and queries, which blend a query vector into the profile)
compute the cosines to the profile and to every liked title in one matrix product per block of
candidates.

This module is the serving ranker (what ``/recommend``, groups and search rank with);
:class:`models.ranking.hybrid.HybridRecommender` wraps it in the common
:class:`models.base.Recommender` interface (inner collaborative model from the registry, default
EASE) for training, evaluation and the registry.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, Offer
from models.ranking.context import ContextEffect, RankingContext, context_effect, context_notes
from models.ranking.explain import (
    Explanation,
    HistoryFeatures,
    NearestTitle,
    explain,
    history_features,
    nearest_watched_rows,
)
from models.ranking.score_cache import DEFAULT_CACHE_BYTES, PersonalScoreCache, PersonalScores

log = logging.getLogger(__name__)

COMPONENTS = ("collaborative", "content", "popularity", "context")
ROW_BLOCK = 4096
"""Candidates per block when computing max-similarity to the history (bounds memory)."""
SIMILARITY_TABLE_BYTES = 256 * 2**20
"""Largest title-by-title cosine table a ranker keeps (256 MiB: catalogues up to 8,192 titles);
larger catalogues compute the cosines per request."""
SIMILARITY_TABLE_KEY = "content_similarity_table"
CONTEXT_CACHE_SIZE = 128
"""Distinct viewing contexts whose effect arrays a ranker keeps (least recently used evicted)."""


class HybridWeights(BaseModel):
    """Relative weight of each component (renormalised over the available ones).

    Defaults: collaborative filtering is the strongest signal once a user has history (0.5); content
    similarity carries taste for new titles and short histories (0.3); popularity is a prior that
    breaks near-ties towards titles people actually watch (0.1); context nudges within what the hard
    context filters keep (0.1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    collaborative: float = Field(0.5, ge=0)
    content: float = Field(0.3, ge=0)
    popularity: float = Field(0.1, ge=0)
    context: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> HybridWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one hybrid weight must be > 0")
        return self


class HistoryScorer(Protocol):
    """What the ranker needs from a collaborative model (every :class:`Recommender` has it)."""

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray: ...


class Recommendation(BaseModel):
    title_id: str
    title: str
    type: str | None = None
    year: int | None = None
    score: float
    components: dict[str, float]
    """Weighted contribution of each component used (they sum to ``score``)."""
    explanation: Explanation
    offers: list[Offer]
    """Offers in the availability filter's country (all countries without a filter)."""


@dataclass(frozen=True)
class ScoredRows:
    """Scores of catalogue ``rows``: final ``score`` and normalised ``components`` (``nan`` = n/a)."""

    rows: np.ndarray
    score: np.ndarray
    components: dict[str, np.ndarray]
    weights: dict[str, float]

    def contributions(self, position: int) -> dict[str, float]:
        vals = {c: float(v[position]) for c, v in self.components.items()}
        used = {c: self.weights[c] for c, v in vals.items() if np.isfinite(v)}
        total = sum(used.values())
        if total <= 0:
            return {}
        return {c: round(used[c] / total * vals[c], 6) for c in used}


def minmax(values: np.ndarray, over: np.ndarray | None = None) -> np.ndarray | None:
    """Scale to [0, 1] using the finite values (of ``values[over]`` if given); ``None`` if constant."""
    ref = values if over is None else values[over]
    finite = ref[np.isfinite(ref)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo <= 1e-12:
        return None
    return (values - lo) / (hi - lo)


def clean_history(
    history: Sequence[str], weights: Sequence[float] | None
) -> tuple[list[str], np.ndarray]:
    """De-duplicated history (weights of repeats summed) and its weights (default 1.0)."""
    if weights is not None and len(weights) != len(history):
        raise ValueError(f"{len(history)} history items but {len(weights)} weights")
    merged: dict[str, float] = {}
    for i, item in enumerate(history):
        merged[item] = merged.get(item, 0.0) + (1.0 if weights is None else float(weights[i]))
    w = np.asarray(list(merged.values()), dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError("history weights must be finite")
    return list(merged), w


def similarity_table_fits(catalog: Catalog, max_bytes: int) -> bool:
    """Whether ``catalog``'s title-by-title cosine table (float32) fits in ``max_bytes``."""
    return bool(catalog.has_vector.any()) and 4 * len(catalog) ** 2 <= max_bytes


def similarity_table(catalog: Catalog) -> np.ndarray:
    """Cosine of every pair of titles (``vectors @ vectors.T``, float32, read-only), computed
    once per catalogue; rows of titles without a vector are zero."""
    return catalog.derived(SIMILARITY_TABLE_KEY, lambda: catalog.vectors @ catalog.vectors.T)


def _profile(
    catalog: Catalog, known: list[tuple[int, float]], query_vector: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """The unit profile (history vectors' weighted sum, a query blended in) and the norm of the
    history's sum before scaling (0: no history evidence)."""
    vecs = catalog.vectors
    profile = np.zeros(vecs.shape[1], dtype=np.float64)
    for r, w in known:
        profile += w * vecs[r]
    norm = float(np.linalg.norm(profile))
    profile = profile / norm if norm > 0 else profile
    if query_vector is not None:
        q = np.asarray(query_vector, dtype=np.float64)
        q = q / (np.linalg.norm(q) or 1.0)
        profile = 0.5 * profile + 0.5 * q if norm > 0 else q
        profile /= np.linalg.norm(profile) or 1.0
    return profile, norm


def content_similarity(
    catalog: Catalog,
    rows: np.ndarray | None,
    history: Sequence[str],
    weights: np.ndarray,
    query_vector: np.ndarray | None = None,
    table: np.ndarray | None = None,
) -> np.ndarray | None:
    """Raw content score of ``rows`` (``None`` = every row; see module docstring); ``None`` when
    there is no evidence.

    With the catalogue's :func:`similarity_table` (and no query) the cosines are read from it:
    the profile's cosine is the weighted sum of the history titles' rows over the profile's norm,
    and the best liked title's is a maximum over rows. Otherwise one matrix product per block of
    candidates computes them. The two agree to float32 rounding (~1e-7).
    """
    known = [(catalog.index[h], w) for h, w in zip(history, weights, strict=True) if h in catalog]
    known = [(r, w) for r, w in known if catalog.has_vector[r] and w != 0]
    if table is not None and query_vector is None:
        return _similarity_from_table(catalog, table, rows, known)
    profile, _ = _profile(catalog, known, query_vector)
    if not np.any(profile):
        return None
    vecs = catalog.vectors
    cand = vecs if rows is None else vecs[rows]
    liked = [r for r, w in known if w > 0]
    # one matrix product gives the cosine to the profile (row 0) and to every liked title (the
    # other rows): the catalogue's vectors are read from memory once, not twice, and the maximum
    # over the liked titles runs along contiguous rows
    probes = np.empty((1 + len(liked), vecs.shape[1]), dtype=np.float32)
    probes[0] = profile
    probes[1:] = vecs[liked]
    score = np.empty(len(cand), dtype=np.float32)
    for start in range(0, len(cand), ROW_BLOCK):
        sims = probes @ cand[start : start + ROW_BLOCK].T
        score[start : start + ROW_BLOCK] = (
            0.5 * sims[0] + 0.5 * sims[1:].max(axis=0) if liked else sims[0]
        )
    out = score.astype(np.float64)
    out[~(catalog.has_vector if rows is None else catalog.has_vector[rows])] = np.nan
    return out


def _similarity_from_table(
    catalog: Catalog, table: np.ndarray, rows: np.ndarray | None, known: list[tuple[int, float]]
) -> np.ndarray | None:
    """:func:`content_similarity` from the title-by-title cosine table (no query vector)."""
    _, norm = _profile(catalog, known, None)
    if norm == 0:
        return None
    history_rows = table[[r for r, _ in known]]
    if rows is not None:
        history_rows = history_rows[:, rows]
    w = np.array([w for _, w in known])
    out = (w @ history_rows) / norm
    liked = w > 0
    if liked.any():
        out = 0.5 * out + 0.5 * history_rows[liked].max(axis=0)
    out[~(catalog.has_vector if rows is None else catalog.has_vector[rows])] = np.nan
    return out


class HybridRanker:
    """Ranks catalogue titles for one user (or a group member) from a history; see module docstring.

    Thread-safe: one ranker serves concurrent requests (its caches have locks).
    ``cache_bytes`` bounds the per-user :attr:`scores_cache`.
    """

    def __init__(
        self,
        catalog: Catalog,
        collaborative: HistoryScorer | None = None,
        weights: HybridWeights | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        similarity_table_bytes: int = SIMILARITY_TABLE_BYTES,
    ) -> None:
        self.catalog = catalog
        self.collaborative = collaborative
        self.weights = weights or HybridWeights()
        self.scores_cache = PersonalScoreCache(cache_bytes)
        self.similarity_table = (
            similarity_table(catalog)
            if self.weights.content > 0 and similarity_table_fits(catalog, similarity_table_bytes)
            else None
        )
        """The catalogue's :func:`similarity_table` when it fits in ``similarity_table_bytes``
        (built here, so the first request does not pay for it); ``None``: cosines per request."""
        self._effects: OrderedDict[tuple, ContextEffect] = OrderedDict()
        self._effects_lock = threading.Lock()

    def context_effect(self, context: RankingContext | None) -> ContextEffect:
        """:func:`models.ranking.context.context_effect`, cached per context (arrays read-only).

        ``device`` does not change the effect, so it is not part of the key.
        """
        key = (
            None
            if context is None
            else (context.mood, context.occasion, context.time_available, context.content_type)
        )
        with self._effects_lock:
            hit = self._effects.get(key)
            if hit is not None:
                self._effects.move_to_end(key)
                return hit
        effect = context_effect(self.catalog, context)
        effect.keep.setflags(write=False)
        effect.score.setflags(write=False)
        with self._effects_lock:
            self._effects[key] = effect
            while len(self._effects) > CONTEXT_CACHE_SIZE:
                self._effects.popitem(last=False)
        return effect

    def candidate_rows(
        self,
        exclude: Iterable[str] = (),
        context: RankingContext | None = None,
        availability: AvailabilityFilter | None = None,
    ) -> np.ndarray:
        """Catalogue rows passing the context hard filters and the availability filter."""
        keep = self.context_effect(context).keep.copy()
        if availability is not None:
            keep &= availability.mask(self.catalog)
        excluded = self.catalog.indices(exclude)
        keep[excluded] = False
        return np.flatnonzero(keep)

    def personal_scores(
        self,
        history: Sequence[str],
        weights: Sequence[float] | None = None,
        cache_key: str | None = None,
    ) -> PersonalScores:
        """The user-dependent raw components over every catalogue row.

        With a ``cache_key`` (the user id) they come from, or go to, :attr:`scores_cache`; an entry
        is only reused for exactly the same de-duplicated history and weights.
        """
        items, w = clean_history(history, weights)
        key_items, key_weights = tuple(items), tuple(float(x) for x in w)
        if cache_key is not None:
            hit = self.scores_cache.get(cache_key, key_items, key_weights)
            if hit is not None:
                return hit
        collaborative = None
        if self.collaborative is not None and self.weights.collaborative > 0:
            liked = [(h, x) for h, x in zip(items, w, strict=True) if x > 0]
            if liked:
                collaborative = np.array(  # a private copy: the cache makes it read-only
                    self.collaborative.score_history(
                        [h for h, _ in liked], [float(x) for _, x in liked], self.catalog.id_list
                    ),
                    dtype=np.float64,
                )
        content = None
        if self.weights.content > 0:
            content = content_similarity(self.catalog, None, items, w, table=self.similarity_table)
        scores = PersonalScores(key_items, key_weights, collaborative, content)
        if cache_key is not None:
            self.scores_cache.put(cache_key, scores)
        return scores

    def forget(self, cache_key: str) -> bool:
        """Drop the cached personal scores of ``cache_key`` (feedback, erasure)."""
        return self.scores_cache.forget(cache_key)

    def score_rows(
        self,
        rows: np.ndarray,
        history: Sequence[str],
        weights: Sequence[float] | None = None,
        context: RankingContext | None = None,
        query_vector: np.ndarray | None = None,
        normalize_over: np.ndarray | None = None,
        cache_key: str | None = None,
    ) -> ScoredRows:
        """Hybrid scores of catalogue ``rows``; normalisation bounds come from the rows selected by
        the boolean ``normalize_over`` (default: all ``rows``). ``cache_key``: see
        :meth:`personal_scores`."""
        return self._score_rows(
            rows,
            self.personal_scores(history, weights, cache_key),
            context,
            query_vector,
            normalize_over,
        )

    def _score_rows(
        self,
        rows: np.ndarray,
        personal: PersonalScores,
        context: RankingContext | None,
        query_vector: np.ndarray | None,
        normalize_over: np.ndarray | None = None,
    ) -> ScoredRows:
        comps: dict[str, np.ndarray] = {}
        cat = self.catalog
        if personal.collaborative is not None:
            norm = minmax(personal.collaborative[rows], normalize_over)
            if norm is not None:
                comps["collaborative"] = norm
        if self.weights.content > 0:
            if query_vector is None:
                raw = None if personal.content is None else personal.content[rows]
            else:
                w = np.asarray(personal.weights, dtype=np.float64)
                raw = content_similarity(cat, rows, personal.history, w, query_vector)
            norm = None if raw is None else minmax(raw, normalize_over)
            if norm is not None:
                comps["content"] = norm
        if self.weights.popularity > 0:
            norm = minmax(cat.popularity_prior[rows], normalize_over)
            if norm is not None:
                comps["popularity"] = norm
        if self.weights.context > 0 and context is not None:
            effect = self.context_effect(context)
            norm = minmax(effect.score[rows], normalize_over) if effect.informative else None
            if norm is not None:
                comps["context"] = norm
        wts = {c: getattr(self.weights, c) for c in comps}
        num = np.zeros(len(rows))
        den = np.zeros(len(rows))
        for c, v in comps.items():
            ok = np.isfinite(v)
            num[ok] += wts[c] * v[ok]
            den[ok] += wts[c]
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return ScoredRows(rows=rows, score=score, components=comps, weights=wts)

    def recommend(
        self,
        history: list[str],
        weights: list[float] | None = None,
        k: int = 10,
        context: RankingContext | None = None,
        availability: AvailabilityFilter | None = None,
        exclude: set[str] | None = None,
        query_vector: np.ndarray | None = None,
        with_explanations: bool = True,
        cache_key: str | None = None,
    ) -> list[Recommendation]:
        """Top ``k`` titles for a user described by ``history`` (``exclude`` defaults to it).

        Titles for which no component has evidence (``nan`` score) are never returned. ``cache_key``
        (the user id) reuses the user's personal scores, see :meth:`personal_scores`.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        exclude = set(history) if exclude is None else exclude
        rows = self.candidate_rows(exclude, context, availability)
        personal = self.personal_scores(history, weights, cache_key)
        scored = self._score_rows(rows, personal, context, query_vector)
        top = top_positions(scored.score, self.catalog.id_rank[rows], k)
        log.debug(
            "hybrid ranking",
            extra={
                "history_len": len(history),
                "candidates": len(rows),
                "components": list(scored.components),
            },
        )
        liked = personal.liked
        if not (with_explanations and top):
            return [self._recommendation(scored, p, liked, context, availability) for p in top]
        features = history_features(self.catalog, liked)
        nearest = nearest_watched_rows(self.catalog, features, scored.rows[top].tolist())
        return [
            self._recommendation(scored, p, liked, context, availability, features, near)
            for p, near in zip(top, nearest, strict=True)
        ]

    def _recommendation(
        self,
        scored: ScoredRows,
        position: int,
        liked: list[str],
        context: RankingContext | None,
        availability: AvailabilityFilter | None,
        features: HistoryFeatures | None = None,
        nearest: list[NearestTitle] | None = None,
    ) -> Recommendation:
        """One result; explained when ``features`` (of ``liked``) are given, with ``nearest``
        (:func:`models.ranking.explain.nearest_watched_rows`) when computed for the page."""
        cat = self.catalog
        row = int(scored.rows[position])
        tid = cat.id_list[row]
        offers = (
            availability.offers(cat, tid) if availability is not None else cat.offers_for(tid, None)
        )
        parts = scored.contributions(position)
        if features is not None:
            explanation = explain(
                cat,
                liked,
                tid,
                collaborative=parts.get("collaborative"),
                offers=offers,
                context=context_notes(cat, context, row),
                popular=not liked or max(parts, key=parts.get, default="") == "popularity",
                features=features,
                nearest=nearest,
            )
        else:
            explanation = Explanation()
        year = cat.year[row]
        return Recommendation(
            title_id=tid,
            title=cat.names[row],
            type=cat.types[row],
            year=int(year) if np.isfinite(year) else None,
            score=round(float(scored.score[position]), 6),
            components=parts,
            explanation=explanation,
            offers=offers,
        )


def top_positions(scores: np.ndarray, tiebreak: np.ndarray, k: int) -> list[int]:
    """Positions of the ``k`` best finite scores; ties broken by ascending ``tiebreak`` (the id
    rank, :attr:`Catalog.id_rank`) so results are stable. Partition first, sort only the top."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size > k:
        values = scores[finite]
        kth = np.partition(values, finite.size - k)[finite.size - k]
        finite = finite[values >= kth]  # the k best plus any tied with the k-th
    order = np.lexsort((tiebreak[finite], -scores[finite]))
    return finite[order[:k]].tolist()
