"""The hybrid recommender: :class:`models.ranking.ranker.HybridRanker` as a trainable model.

:class:`HybridRecommender` is what the model registry creates and loads (``"hybrid"``): ``fit``
trains the inner collaborative model and builds a small catalogue from the training items and their
vectors, ``recommend``/``score``/``similar_items`` go through the ranker, and ``save``/``load``
write the inner model, the catalogue, the vectors and the training interactions (each file
atomically). Serving does not use this class: it ranks with a ``HybridRanker`` over the full
catalogue and the champion's collaborative model.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from core.atomic import atomic_path, atomic_write_text
from models.base import (
    RECS_SCHEMA,
    SIMILAR_SCHEMA,
    NotFittedError,
    Recommender,
    UnknownUserError,
    check_interactions,
    top_k_frame,
)
from models.ranking.catalog import Catalog
from models.ranking.ranker import HybridRanker, HybridWeights, minmax


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
        with atomic_path(directory / "items.parquet") as tmp:
            cat.titles.write_parquet(tmp)
        packed = np.concatenate([cat.has_vector[:, None].astype(np.float32), cat.vectors], axis=1)
        with atomic_path(directory / "vectors.npy") as tmp, tmp.open("wb") as fh:
            np.save(fh, packed, allow_pickle=False)
        with atomic_path(directory / "interactions.parquet") as tmp:
            self._interactions.write_parquet(tmp)
        atomic_write_text(
            directory / "model.json",
            json.dumps({"name": self.name, "params": self.params}, indent=2),
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
