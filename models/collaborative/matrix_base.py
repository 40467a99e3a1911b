"""What the centralized baselines share: a user x item matrix and one implementation of the
:class:`~models.base.Recommender` surface on top of three model-specific score functions.

Subclasses (popularity, ALS, BPR, EASE) implement ``_fit_matrix``, ``_user_scores`` (rows of known
users), ``_history_scores`` (fold-in of one history row) and ``_item_similarity``, plus
``_save_arrays``/``_load_arrays``. Everything about ids, seen-item exclusion, batching, unknown
users/items and the on-disk layout lives here once:

``<dir>/model.json`` (name + constructor params), ``users.json`` / ``items.json`` (index -> id),
``interactions.npz`` (the training CSR, for ``exclude_seen``), plus each model's own ``*.npz``.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from core.atomic import atomic_path, atomic_write_bytes
from models.base import (
    RECS_SCHEMA,
    SIMILAR_SCHEMA,
    IdMap,
    NotFittedError,
    Recommender,
    UnknownUserError,
    check_interactions,
    top_k_frame,
)

log = logging.getLogger(__name__)

RECOMMEND_BATCH = 1024
"""Users scored per dense (users x items) block in ``recommend``; bounds memory on big catalogues."""


class UnknownItemError(KeyError):
    """The item id was not seen in training (``similar_items`` has nothing to compare it with)."""


class ModelFileError(ValueError):
    """A saved model directory is incomplete or belongs to another model."""


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` made atomic (:func:`core.atomic.atomic_path`)."""
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ModelFileError(f"{path} is missing")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


MEMO_MIN_ITEMS = 256
"""Item lists at least this long (candidate lists, not histories) have their columns memoised."""


@dataclass(frozen=True)
class InteractionMatrix:
    """Training interactions as a CSR matrix (users x items, float32 summed weights)."""

    users: IdMap
    items: IdMap
    matrix: sp.csr_matrix

    @classmethod
    def from_frame(cls, interactions: pl.DataFrame) -> InteractionMatrix:
        """Build from ``user_id, item_id, weight`` (validated; duplicate pairs are summed)."""
        df = check_interactions(interactions)
        if df.height == 0:
            raise ValueError("cannot fit on an empty interactions frame")
        users = IdMap.from_values(df["user_id"])
        items = IdMap.from_values(df["item_id"])
        rows = df["user_id"].replace_strict(users.index(), return_dtype=pl.Int64).to_numpy()
        cols = df["item_id"].replace_strict(items.index(), return_dtype=pl.Int64).to_numpy()
        matrix = sp.csr_matrix(
            (df["weight"].to_numpy().astype(np.float32), (rows, cols)),
            shape=(len(users), len(items)),
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return cls(users, items, matrix)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def user_rows(self, user_ids: list[str]) -> np.ndarray:
        """Row index of each user; raises :class:`UnknownUserError` naming the first unknown one."""
        index = self.users.index()
        rows = np.empty(len(user_ids), dtype=np.int64)
        for n, uid in enumerate(user_ids):
            row = index.get(str(uid))
            if row is None:
                raise UnknownUserError(str(uid))
            rows[n] = row
        return rows

    def item_columns(self, item_ids: list[str]) -> np.ndarray:
        """Column index of each item, ``-1`` for items not seen in training.

        The answer for the last large list object asked about is memoised (the ranker asks for
        the same catalogue list on every request; short fold-in histories are not memoised); a
        caller must not mutate a list it passes again.
        """
        last = self.__dict__.get("_last_columns")
        if last is not None and last[0] is item_ids and last[1] == len(item_ids):
            return last[2]
        index = self.items.index()
        cols = np.asarray([index.get(str(i), -1) for i in item_ids], dtype=np.int64)
        if len(item_ids) >= MEMO_MIN_ITEMS:
            cols.flags.writeable = False
            object.__setattr__(self, "_last_columns", (item_ids, len(item_ids), cols))
        return cols

    def history_row(self, history: list[str], weights: list[float] | None) -> sp.csr_matrix:
        """A 1 x items CSR row for a fold-in history (unknown items ignored, repeats summed)."""
        if weights is not None and len(weights) != len(history):
            raise ValueError(
                f"history has {len(history)} items but weights has {len(weights)} values"
            )
        values = np.ones(len(history)) if weights is None else np.asarray(weights, dtype=float)
        if values.size and (not np.all(np.isfinite(values)) or values.min() <= 0):
            raise ValueError("history weights must be finite and > 0")
        cols = self.item_columns(history)
        known = cols >= 0
        # repeats summed, columns sorted: the canonical CSR row, built without a COO detour
        columns, where = np.unique(cols[known], return_inverse=True)
        data = np.bincount(where, weights=values[known], minlength=len(columns))
        row = sp.csr_matrix(
            (data.astype(np.float32), columns, np.array([0, len(columns)])),
            shape=(1, self.shape[1]),
        )
        return row

    def save(self, directory: Path) -> None:
        atomic_write_bytes(directory / "users.json", json.dumps(self.users.to_json()).encode())
        atomic_write_bytes(directory / "items.json", json.dumps(self.items.to_json()).encode())
        m = self.matrix
        save_npz(
            directory / "interactions.npz",
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.asarray(m.shape),
        )

    @classmethod
    def load(cls, directory: Path) -> InteractionMatrix:
        ids = {}
        for part in ("users", "items"):
            path = directory / f"{part}.json"
            if not path.is_file():
                raise ModelFileError(f"{path} is missing")
            ids[part] = IdMap(np.asarray(json.loads(path.read_text()), dtype=object))
        arrays = load_npz(directory / "interactions.npz")
        matrix = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
        )
        if matrix.shape != (len(ids["users"]), len(ids["items"])):
            raise ModelFileError(f"{directory}: interactions shape does not match the id files")
        return cls(ids["users"], ids["items"], matrix)


class MatrixRecommender(Recommender):
    """Shared implementation of the Recommender surface for matrix-based models."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._data: InteractionMatrix | None = None

    # ---- model-specific parts ------------------------------------------------------------
    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments (saved in ``model.json``; ``load`` passes them back)."""

    @abstractmethod
    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        """Learn from the users x items weight matrix."""

    @abstractmethod
    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense (len(rows) x n_items) float scores for known users."""

    @abstractmethod
    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (n_items,) for a user described by a non-empty 1 x n_items history row."""

    @abstractmethod
    def _item_similarity(self, column: int) -> np.ndarray:
        """Similarity (n_items,) of every item to item ``column`` (its own entry is ignored)."""

    @abstractmethod
    def _save_arrays(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_arrays(self, directory: Path) -> None: ...

    # ---- shared implementation -----------------------------------------------------------
    @property
    def data(self) -> InteractionMatrix:
        if self._data is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        return self._data

    def fit(self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None) -> Self:
        """Train on ``user_id, item_id, weight``; ``item_features`` is ignored by these models."""
        data = InteractionMatrix.from_frame(interactions)
        log.info("fitting %s", self.name, extra={"users": data.shape[0], "items": data.shape[1]})
        self._fit_matrix(data.matrix)
        self._data = data
        return self

    def nonpersonal_scores(self) -> np.ndarray:
        """Scores used for an empty history: summed training weight per item (popularity)."""
        return np.asarray(self.data.matrix.sum(axis=0), dtype=np.float64).ravel()

    def recommend(
        self, user_ids: list[str], k: int = 10, exclude_seen: bool = True
    ) -> pl.DataFrame:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        data = self.data
        user_ids = [str(u) for u in user_ids]
        rows = data.user_rows(user_ids)
        frames = []
        for start in range(0, len(rows), RECOMMEND_BATCH):
            block = rows[start : start + RECOMMEND_BATCH]
            scores = np.asarray(self._user_scores(block), dtype=np.float64)
            if exclude_seen:
                seen = data.matrix[block].tocoo()
                scores[seen.row, seen.col] = -np.inf
            ids = user_ids[start : start + RECOMMEND_BATCH]
            frames.append(top_k_frame(ids, scores, data.items.ids, k))
        if not frames:
            return pl.DataFrame(schema=RECS_SCHEMA)
        return pl.concat(frames)

    def _pick(self, scores: np.ndarray, item_ids: list[str]) -> np.ndarray:
        cols = self.data.item_columns(item_ids)
        out = np.full(len(item_ids), np.nan)
        known = cols >= 0
        out[known] = scores[cols[known]]
        return out

    def score(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        row = self.data.user_rows([user_id])
        return self._pick(np.asarray(self._user_scores(row)[0], dtype=np.float64), item_ids)

    def score_users(self, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        """Batched :meth:`score` (seen items not masked; unknown items ``nan``)."""
        data = self.data
        rows = data.user_rows([str(u) for u in user_ids])
        cols = data.item_columns(item_ids)
        known = cols >= 0
        out = np.full((len(rows), len(item_ids)), np.nan)
        for start in range(0, len(rows), RECOMMEND_BATCH):
            block = rows[start : start + RECOMMEND_BATCH]
            scores = np.asarray(self._user_scores(block), dtype=np.float64)
            out[start : start + len(block), known] = scores[:, cols[known]]
        return out

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        row = self.data.history_row(history, weights)
        scores = self.nonpersonal_scores() if row.nnz == 0 else self._history_scores(row)
        return self._pick(np.asarray(scores, dtype=np.float64), item_ids)

    def similar_items(self, item_id: str, k: int = 10) -> pl.DataFrame:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        column = int(self.data.item_columns([item_id])[0])
        if column < 0:
            raise UnknownItemError(str(item_id))
        sims = np.asarray(self._item_similarity(column), dtype=np.float64).copy()
        sims[column] = -np.inf
        top = top_k_frame([str(item_id)], sims[None, :], self.data.items.ids, k)
        return top.select(
            pl.col("user_id").alias("item_id"), pl.col("item_id").alias("similar_item_id"), "score"
        ).cast(SIMILAR_SCHEMA)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        data = self.data
        directory.mkdir(parents=True, exist_ok=True)
        data.save(directory)
        self._save_arrays(directory)
        self.write_manifest(directory, self.name, self.params)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        manifest = cls.read_manifest(directory)
        if manifest.get("name") != cls.name:
            raise ModelFileError(
                f"{directory} holds model {manifest.get('name')!r}, not {cls.name!r}"
            )
        model = cls(**manifest.get("params", {}))
        model._data = InteractionMatrix.load(directory)
        model._load_arrays(directory)
        return model


def cosine_to(vectors: np.ndarray, column: int) -> np.ndarray:
    """Cosine similarity of every row of ``vectors`` to row ``column`` (zero rows score 0)."""
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = np.inf
    return (vectors @ vectors[column]) / (norms * norms[column])
