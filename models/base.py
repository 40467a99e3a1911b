"""The one recommender interface every model implements (popularity, ALS, BPR, EASE, federated, hybrid).

Interactions are a polars frame with columns ``user_id`` (str), ``item_id`` (str) and ``weight``
(float, > 0; implicit confidence). Ids are strings everywhere at this boundary; models map them to
contiguous indices internally with :class:`IdMap`.

Output frames of :meth:`Recommender.recommend` have columns ``user_id, item_id, rank, score``
(rank starts at 1, sorted by score descending within a user).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

RECS_SCHEMA = {
    "user_id": pl.String,
    "item_id": pl.String,
    "rank": pl.Int32,
    "score": pl.Float64,
}
SIMILAR_SCHEMA = {"item_id": pl.String, "similar_item_id": pl.String, "score": pl.Float64}


class NotFittedError(RuntimeError):
    """The model was used before ``fit`` or ``load``."""


class UnknownUserError(KeyError):
    """The user id was not seen in training (use a fold-in/cold-start path instead)."""


@dataclass(frozen=True)
class IdMap:
    """Bidirectional mapping between string ids and contiguous int indices."""

    ids: np.ndarray  # index -> id (object array of str)

    @classmethod
    def from_values(cls, values: pl.Series | list[str]) -> IdMap:
        uniq = pl.Series(values, dtype=pl.String).unique(maintain_order=True).sort()
        return cls(np.asarray(uniq.to_list(), dtype=object))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        """id -> position (built once per map, then reused: callers must not mutate it)."""
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {v: i for i, v in enumerate(self.ids)}
            object.__setattr__(self, "_index", cached)
        return cached

    def to_json(self) -> list[str]:
        return [str(x) for x in self.ids]


def check_interactions(df: pl.DataFrame) -> pl.DataFrame:
    """Validate and normalise an interactions frame: string ids, float weights > 0, no nulls."""
    missing = {"user_id", "item_id"} - set(df.columns)
    if missing:
        raise ValueError(f"interactions are missing columns {sorted(missing)}")
    if "weight" not in df.columns:
        df = df.with_columns(pl.lit(1.0).alias("weight"))
    out = df.select(
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("weight").cast(pl.Float64),
    )
    if out.null_count().sum_horizontal().item() > 0:
        raise ValueError("interactions contain null user_id, item_id or weight")
    if out.height and out["weight"].min() <= 0:
        raise ValueError("interaction weights must be > 0")
    return out


def top_k_frame(
    user_ids: list[str], scores: np.ndarray, item_ids: np.ndarray, k: int
) -> pl.DataFrame:
    """Turn a (users x items) score matrix into the ranked output frame (``-inf`` = excluded)."""
    rows_u, rows_i, rows_r, rows_s = [], [], [], []
    k_eff = min(k, scores.shape[1]) if scores.ndim == 2 else 0
    for row, uid in enumerate(user_ids):
        s = scores[row]
        if k_eff == 0:
            continue
        idx = np.argpartition(-s, k_eff - 1)[:k_eff]
        idx = idx[np.argsort(-s[idx], kind="stable")]
        idx = idx[np.isfinite(s[idx])]
        rows_u.extend([uid] * len(idx))
        rows_i.extend(item_ids[idx].tolist())
        rows_r.extend(range(1, len(idx) + 1))
        rows_s.extend(s[idx].astype(float).tolist())
    return pl.DataFrame(
        {"user_id": rows_u, "item_id": rows_i, "rank": rows_r, "score": rows_s},
        schema=RECS_SCHEMA,
    )


class Recommender(ABC):
    """Fit on interactions (and optional item features); recommend, score, find similar items.

    Implementations set ``name`` and persist everything they need with ``save``/``load`` into a
    directory containing ``model.json`` (``{"name": ..., "params": {...}}``) plus their arrays.
    """

    name: ClassVar[str]

    @abstractmethod
    def fit(
        self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None
    ) -> Recommender:
        """Train. ``item_features`` (optional) has ``item_id`` plus a ``vector`` list column."""

    @abstractmethod
    def recommend(
        self, user_ids: list[str], k: int = 10, exclude_seen: bool = True
    ) -> pl.DataFrame:
        """Top-k per known user (unknown users raise :class:`UnknownUserError`)."""

    @abstractmethod
    def score(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        """Scores of the given items for one user (unknown items score ``nan``)."""

    @abstractmethod
    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        """Fold-in: score ``item_ids`` for a user described only by a history (e.g. a new user with
        three ratings, or a known user plus fresh feedback). Unknown items score ``nan``; unknown
        history items are ignored; an empty history gives the model's non-personal scores."""

    @abstractmethod
    def similar_items(self, item_id: str, k: int = 10) -> pl.DataFrame:
        """Items most similar to ``item_id`` (excluding itself), schema :data:`SIMILAR_SCHEMA`."""

    def score_users(self, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        """Scores (len(user_ids) x len(item_ids)) of known users, as :meth:`score` row by row.

        Seen items are not masked. Models with a batched path (the matrix models) override this;
        unknown users raise :class:`UnknownUserError`, unknown items score ``nan``.
        """
        out = np.empty((len(user_ids), len(item_ids)), dtype=np.float64)
        for row, user in enumerate(user_ids):
            out[row] = self.score(user, item_ids)
        return out

    @abstractmethod
    def save(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Recommender: ...

    # ---- shared helpers -------------------------------------------------------------------
    @staticmethod
    def write_manifest(directory: Path, name: str, params: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.json").write_text(
            json.dumps({"name": name, "params": params}, indent=2)
        )

    @staticmethod
    def read_manifest(directory: Path) -> dict:
        path = Path(directory) / "model.json"
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a model directory (no model.json)")
        return json.loads(path.read_text())
