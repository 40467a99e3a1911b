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

:class:`HybridRecommender` wraps the ranker in the common :class:`models.base.Recommender` interface
(inner collaborative model from the registry, default EASE) for training, evaluation and the registry.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.base import (
    RECS_SCHEMA,
    SIMILAR_SCHEMA,
    NotFittedError,
    Recommender,
    UnknownUserError,
    check_interactions,
    top_k_frame,
)
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, Offer
from models.ranking.context import ContextEffect, RankingContext, context_effect, context_notes
from models.ranking.explain import Explanation, HistoryFeatures, explain, history_features
from models.ranking.score_cache import DEFAULT_CACHE_BYTES, PersonalScoreCache, PersonalScores

log = logging.getLogger(__name__)

COMPONENTS = ("collaborative", "content", "popularity", "context")
ROW_BLOCK = 4096
"""Candidates per block when computing max-similarity to the history (bounds memory)."""
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


def content_similarity(
    catalog: Catalog,
    rows: np.ndarray | None,
    history: Sequence[str],
    weights: np.ndarray,
    query_vector: np.ndarray | None = None,
) -> np.ndarray | None:
    """Raw content score of ``rows`` (``None`` = every row; see module docstring); ``None`` when
    there is no evidence."""
    known = [(catalog.index[h], w) for h, w in zip(history, weights, strict=True) if h in catalog]
    known = [(r, w) for r, w in known if catalog.has_vector[r] and w != 0]
    vecs = catalog.vectors
    profile = np.zeros(vecs.shape[1], dtype=np.float64)
    for r, w in known:
        profile += w * vecs[r]
    norm = np.linalg.norm(profile)
    profile = profile / norm if norm > 0 else profile
    if query_vector is not None:
        q = np.asarray(query_vector, dtype=np.float64)
        q = q / (np.linalg.norm(q) or 1.0)
        profile = 0.5 * profile + 0.5 * q if norm > 0 else q
        profile /= np.linalg.norm(profile) or 1.0
    if not np.any(profile):
        return None
    cand = vecs if rows is None else vecs[rows]
    score = cand @ profile.astype(np.float32)
    liked = np.asarray([r for r, w in known if w > 0], dtype=np.int64)
    if len(liked):
        liked_vecs = vecs[liked].T
        best = np.empty(len(cand), dtype=np.float32)
        for start in range(0, len(cand), ROW_BLOCK):
            best[start : start + ROW_BLOCK] = (cand[start : start + ROW_BLOCK] @ liked_vecs).max(
                axis=1
            )
        score = 0.5 * score + 0.5 * best
    out = score.astype(np.float64)
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
    ) -> None:
        self.catalog = catalog
        self.collaborative = collaborative
        self.weights = weights or HybridWeights()
        self.scores_cache = PersonalScoreCache(cache_bytes)
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
            content = content_similarity(self.catalog, None, items, w)
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
        features = history_features(self.catalog, liked) if with_explanations and top else None
        return [
            self._recommendation(scored, p, liked, context, availability, features) for p in top
        ]

    def _recommendation(
        self,
        scored: ScoredRows,
        position: int,
        liked: list[str],
        context: RankingContext | None,
        availability: AvailabilityFilter | None,
        features: HistoryFeatures | None,
    ) -> Recommendation:
        """One result; explained when ``features`` (of ``liked``) are given."""
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


# ---- the Recommender adapter -------------------------------------------------------------------
def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


class HybridRecommender(Recommender):
    """The hybrid ranker as a trainable :class:`Recommender` (inner collaborative model ``base``).

    ``fit`` trains ``models.registry.create(base, seed=seed, **base_params)`` on the interactions and
    keeps the item vectors of ``item_features`` (``item_id`` + ``vector``, plus any TITLES columns
    such as ``title``/``genres``). Popularity = number of distinct training users per item. Items
    without a vector score on the other components.
    """

    name: ClassVar[str] = "hybrid"

    def __init__(
        self,
        base: str = "ease",
        seed: int = 42,
        weights: HybridWeights | dict[str, float] | None = None,
        base_params: dict[str, Any] | None = None,
    ) -> None:
        if base == "hybrid":
            raise ValueError("the hybrid model cannot wrap itself")
        self.base = base
        self.seed = seed
        self.weights = HybridWeights.model_validate(weights or {})
        self.base_params = dict(base_params or {})
        self._ranker: HybridRanker | None = None
        self._inner: Recommender | None = None
        self._histories: dict[str, tuple[list[str], list[float]]] = {}
        self._interactions: pl.DataFrame | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "seed": self.seed,
            "weights": self.weights.model_dump(),
            "base_params": self.base_params,
        }

    @property
    def ranker(self) -> HybridRanker:
        if self._ranker is None:
            raise NotFittedError("HybridRecommender is not fitted; call fit or load first")
        return self._ranker

    def _create_inner(self) -> Recommender:
        from models import registry

        params = dict(self.base_params)
        accepted = inspect.signature(registry.model_class(self.base)).parameters
        if "seed" in accepted:
            params.setdefault("seed", self.seed)
        return registry.create(self.base, **params)

    @staticmethod
    def _catalog(interactions: pl.DataFrame, item_features: pl.DataFrame | None) -> Catalog:
        users = interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n"))
        ids = interactions["item_id"].unique().to_list()
        vec_ids: list[str] = []
        matrix = np.zeros((0, 0), dtype=np.float32)
        extra = pl.DataFrame({"title_id": []}, schema={"title_id": pl.String})
        if item_features is not None:
            if not {"item_id", "vector"} <= set(item_features.columns):
                raise ValueError("item_features needs 'item_id' and 'vector' columns")
            feats = item_features.with_columns(pl.col("item_id").cast(pl.String))
            vec_ids = feats["item_id"].to_list()
            matrix = np.asarray(feats["vector"].to_list(), dtype=np.float32)
            ids = sorted(set(ids) | set(vec_ids))
            other = [c for c in feats.columns if c not in {"item_id", "vector", "popularity"}]
            extra = feats.select(pl.col("item_id").alias("title_id"), *other).unique(
                "title_id", keep="first"
            )
        titles = (
            pl.DataFrame({"title_id": sorted(ids)}, schema={"title_id": pl.String})
            .join(users.rename({"item_id": "title_id"}), on="title_id", how="left")
            .with_columns(pl.col("n").fill_null(0).cast(pl.Float64).alias("popularity"))
            .drop("n")
            .join(extra, on="title_id", how="left")
        )
        if "title" not in titles.columns:
            titles = titles.with_columns(pl.col("title_id").alias("title"))
        if not vec_ids:
            matrix = np.zeros((0, 1), dtype=np.float32)
        return Catalog.build(titles, None, vec_ids, matrix)

    def fit(
        self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None
    ) -> HybridRecommender:
        inter = check_interactions(interactions)
        inner = self._create_inner()
        inner.fit(inter, item_features)
        self._set_state(inner, self._catalog(inter, item_features), inter)
        return self

    def _set_state(self, inner: Recommender, catalog: Catalog, inter: pl.DataFrame) -> None:
        self._inner = inner
        self._interactions = inter
        self._ranker = HybridRanker(catalog, inner, self.weights)
        grouped = inter.group_by("user_id", maintain_order=True).agg("item_id", "weight")
        self._histories = {u: (list(i), list(w)) for u, i, w in grouped.iter_rows()}

    def _history(self, user_id: str) -> tuple[list[str], list[float]]:
        self.ranker  # noqa: B018 - raises NotFittedError
        if user_id not in self._histories:
            raise UnknownUserError(user_id)
        return self._histories[user_id]

    def recommend(
        self, user_ids: list[str], k: int = 10, exclude_seen: bool = True
    ) -> pl.DataFrame:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        ranker = self.ranker
        frames = []
        for uid in user_ids:
            items, wts = self._history(str(uid))
            recs = ranker.recommend(
                items,
                wts,
                k=k,
                exclude=set(items) if exclude_seen else set(),
                with_explanations=False,
            )
            frames.append(
                pl.DataFrame(
                    {
                        "user_id": [str(uid)] * len(recs),
                        "item_id": [r.title_id for r in recs],
                        "rank": list(range(1, len(recs) + 1)),
                        "score": [r.score for r in recs],
                    },
                    schema=RECS_SCHEMA,
                )
            )
        return pl.concat(frames) if frames else pl.DataFrame(schema=RECS_SCHEMA)

    def score(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        items, wts = self._history(str(user_id))
        return self.score_history(items, wts, item_ids)

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        """Hybrid scores normalised over all catalogue items outside the history (as ``recommend``
        with ``exclude_seen``), so ``score`` and ``recommend`` agree; unknown items are ``nan``."""
        ranker = self.ranker
        cat = ranker.catalog
        rows = np.arange(len(cat))
        pool = np.ones(len(cat), dtype=bool)
        pool[cat.indices(history)] = False
        scored = ranker.score_rows(
            rows, history, weights, normalize_over=pool if pool.any() else None
        )
        out = np.full(len(item_ids), np.nan)
        for i, item in enumerate(item_ids):
            if item in cat.index:
                out[i] = scored.score[cat.index[item]]
        return out

    def similar_items(self, item_id: str, k: int = 10) -> pl.DataFrame:
        """Blend of content cosine and the inner model's item similarity (weights as the ranker)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        cat = self.ranker.catalog
        if item_id not in cat.index:
            raise KeyError(f"item {item_id!r} was not seen in training")
        row = cat.index[item_id]
        others = np.flatnonzero(np.arange(len(cat)) != row)
        comps: dict[str, np.ndarray] = {}
        if cat.has_vector[row] and self.weights.content > 0:
            sims = (cat.vectors[others] @ cat.vectors[row]).astype(np.float64)
            sims[~cat.has_vector[others]] = np.nan
            norm = minmax(sims)
            if norm is not None:
                comps["content"] = norm
        if self._inner is not None and self.weights.collaborative > 0:
            inner_sims = self._inner_similarities(item_id, others)
            norm = None if inner_sims is None else minmax(inner_sims)
            if norm is not None:
                comps["collaborative"] = norm
        num = np.zeros(len(others))
        den = np.zeros(len(others))
        for c, v in comps.items():
            ok = np.isfinite(v)
            num[ok] += getattr(self.weights, c) * v[ok]
            den[ok] += getattr(self.weights, c)
        score = np.where(den > 0, num / np.where(den > 0, den, 1.0), -np.inf)
        top = top_k_frame([item_id], score[None, :], cat.ids[others], k)
        return top.select(
            pl.col("user_id").alias("item_id"), pl.col("item_id").alias("similar_item_id"), "score"
        ).cast(SIMILAR_SCHEMA)

    def _inner_similarities(self, item_id: str, others: np.ndarray) -> np.ndarray | None:
        assert self._inner is not None
        cat = self.ranker.catalog
        try:
            frame = self._inner.similar_items(item_id, k=len(cat))
        except KeyError:  # the inner model never saw this item (content-only item)
            return None
        lookup = dict(
            zip(frame["similar_item_id"].to_list(), frame["score"].to_list(), strict=True)
        )
        return np.asarray([lookup.get(str(t), np.nan) for t in cat.ids[others]], dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        ranker = self.ranker
        assert self._inner is not None and self._interactions is not None
        directory.mkdir(parents=True, exist_ok=True)
        self._inner.save(directory / "collaborative")
        cat = ranker.catalog
        _atomic_write(directory / "items.parquet", lambda p: cat.titles.write_parquet(p))
        packed = np.concatenate([cat.has_vector[:, None].astype(np.float32), cat.vectors], axis=1)
        _atomic_write(directory / "vectors.npy", lambda p: _save_npy(p, packed))
        _atomic_write(
            directory / "interactions.parquet", lambda p: self._interactions.write_parquet(p)
        )
        _atomic_write(
            directory / "model.json",
            lambda p: p.write_text(
                json.dumps({"name": self.name, "params": self.params}, indent=2)
            ),
        )

    @classmethod
    def load(cls, directory: Path) -> HybridRecommender:
        from models import registry

        directory = Path(directory)
        manifest = cls.read_manifest(directory)
        if manifest.get("name") != cls.name:
            raise ValueError(f"{directory} holds a {manifest.get('name')!r} model, not 'hybrid'")
        for name in ("items.parquet", "vectors.npy", "interactions.parquet"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing")
        model = cls(**manifest["params"])
        inner = registry.load_model(directory / "collaborative")
        titles = pl.read_parquet(directory / "items.parquet")
        packed = np.load(directory / "vectors.npy", allow_pickle=False)
        has = packed[:, 0].astype(bool)
        ids = titles["title_id"].to_list()
        vec_ids = [t for t, h in zip(ids, has, strict=True) if h]
        catalog = Catalog.build(titles, None, vec_ids, packed[has, 1:].astype(np.float32))
        model._set_state(inner, catalog, pl.read_parquet(directory / "interactions.parquet"))
        return model
