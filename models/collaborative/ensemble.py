"""Score blend of several registry recommenders (default EASE + RP3beta + content similarity).

Every member is fitted on the same interactions (content members also get ``item_features``). For a
user, each member's scores over the training catalogue are standardised over the items the user has
*not* seen (z-score: the seen items, which ``recommend`` excludes anyway, would otherwise dominate
the scale of EASE and RP3beta), then summed with the member weights. A member that cannot score an
item (``nan``) contributes 0 (its mean) for it. Z-scores were chosen over min-max (one outlier
squashes the rest) and over reciprocal-rank fusion (throws away score gaps).

The default weights (EASE 0.3, RP3beta 0.5, content 0.2) are the best validation nDCG@10 (0.277,
against 0.272 for EASE alone) of ``benchmarks/quality.py --tune --datasets ml-100k --splits
stratified`` (simplex grid, step 0.1; validation carved from the training part); the benchmark
re-tunes them per data set and split.

On disk: the :class:`~models.collaborative.matrix_base.MatrixRecommender` layout plus one folder per
member under ``members/<position>`` written by the member's own ``save``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from models.base import Recommender, check_interactions
from models.collaborative.matrix_base import InteractionMatrix, MatrixRecommender, ModelFileError

CONTENT_MEMBER: dict[str, Any] = {
    "model": "hybrid",
    "params": {
        "base": "popularity",
        "weights": {"collaborative": 0.0, "content": 1.0, "popularity": 0.0, "context": 0.0},
    },
}
"""The content part of the hybrid alone (its inner model is the cheap popularity one and gets no
weight): the ensemble weighs content against EASE and RP3beta itself, so a second EASE inside a
full hybrid would only cost a second inversion."""
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"model": "ease", "params": {}, "weight": 0.3},
    {"model": "rp3beta", "params": {}, "weight": 0.5},
    {**CONTENT_MEMBER, "weight": 0.2},
)
"""``model`` (registry name), ``params`` (constructor overrides) and ``weight`` of each member."""
MEMBERS_DIR = "members"
SCORE_DECIMALS = 6
"""Blended scores are rounded (as the hybrid's are): a reloaded hybrid re-normalises its float32
content vectors, which moves its scores by ~1e-8, and a saved model must rank exactly as before."""


def standardise(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Z-score each row over its unseen, finite entries; ``nan`` and seen entries become 0."""
    pool = ~seen & np.isfinite(scores)
    count = np.maximum(pool.sum(axis=1, keepdims=True), 1)
    values = np.where(pool, scores, 0.0)
    mean = values.sum(axis=1, keepdims=True) / count
    var = (np.where(pool, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return np.where(pool, (values - mean) / std, 0.0)


class EnsembleRecommender(MatrixRecommender):
    """Weighted blend of standardised member scores (see module docstring).

    ``members``: sequence of ``{"model": name, "params": {...}, "weight": w}`` (weights >= 0, at
    least one > 0; a member with weight 0 is not fitted). ``seed`` is passed to members that accept
    it. Item similarity is the weighted blend of the matrix members' standardised similarities.
    """

    name: ClassVar[str] = "ensemble"

    def __init__(self, members: list[dict[str, Any]] | None = None, seed: int = 42) -> None:
        super().__init__()
        spec = [dict(m) for m in (members if members is not None else DEFAULT_MEMBERS)]
        for member in spec:
            unknown = set(member) - {"model", "params", "weight"}
            if "model" not in member or unknown:
                raise ValueError(f"ensemble member needs 'model' (+ params, weight): {member}")
            if member["model"] == self.name:
                raise ValueError("an ensemble cannot contain an ensemble")
            member["params"] = dict(member.get("params") or {})
            member["weight"] = float(member.get("weight", 1.0))
            if not np.isfinite(member["weight"]) or member["weight"] < 0:
                raise ValueError(f"member weights must be finite and >= 0: {member}")
        if not any(m["weight"] > 0 for m in spec):
            raise ValueError("at least one ensemble member needs a weight > 0")
        self.members = [m for m in spec if m["weight"] > 0]
        self.seed = seed
        self._fitted: list[Recommender] = []

    @property
    def params(self) -> dict[str, Any]:
        return {"members": self.members, "seed": self.seed}

    @property
    def member_weights(self) -> np.ndarray:
        return np.asarray([m["weight"] for m in self.members], dtype=np.float64)

    @property
    def fitted_members(self) -> list[Recommender]:
        if not self._fitted:
            raise RuntimeError("ensemble members are not fitted; fit or load the model first")
        return self._fitted

    def _create(self, member: dict[str, Any]) -> Recommender:
        import inspect

        from models import registry

        params = dict(member["params"])
        if "seed" in inspect.signature(registry.model_class(member["model"])).parameters:
            params.setdefault("seed", self.seed)
        return registry.create(member["model"], **params)

    def fit(self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None) -> Self:
        """Fit every member on ``interactions`` (content members also get ``item_features``)."""
        inter = check_interactions(interactions)
        data = InteractionMatrix.from_frame(inter)
        self._fitted = [self._create(m).fit(inter, item_features) for m in self.members]
        self._data = data
        return self

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        raise NotImplementedError("EnsembleRecommender.fit fits its members directly")

    # ---- scoring -------------------------------------------------------------------------
    def member_scores(self, rows: np.ndarray) -> list[np.ndarray]:
        """Each member's standardised scores (len(rows) x items) of the training users ``rows``."""
        data = self.data
        users = [str(u) for u in data.users.ids[rows]]
        items = data.items.to_json()
        seen = data.matrix[rows].toarray() > 0
        return [standardise(m.score_users(users, items), seen) for m in self.fitted_members]

    @staticmethod
    def blend(parts: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
        """Weighted sum of standardised member score matrices."""
        if len(parts) != len(weights):
            raise ValueError(f"{len(parts)} score matrices but {len(weights)} weights")
        out = np.zeros_like(parts[0])
        for part, weight in zip(parts, weights, strict=True):
            out += weight * part
        return np.round(out, SCORE_DECIMALS)

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return self.blend(self.member_scores(rows), self.member_weights)

    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        data = self.data
        cols = history.indices
        items = data.items.to_json()
        names = [items[c] for c in cols]
        weights = [float(w) for w in history.data]
        seen = np.zeros((1, len(items)), dtype=bool)
        seen[0, cols] = True
        parts = [
            standardise(m.score_history(names, weights, items)[None, :], seen)
            for m in self.fitted_members
        ]
        return self.blend(parts, self.member_weights)[0]

    def _item_similarity(self, column: int) -> np.ndarray:
        n_items = self.data.shape[1]
        parts, weights = [], []
        for member, spec in zip(self.fitted_members, self.members, strict=True):
            if isinstance(member, MatrixRecommender):
                sims = np.asarray(member._item_similarity(column), dtype=np.float64)[None, :]
                own = np.zeros((1, n_items), dtype=bool)
                own[0, column] = True
                parts.append(standardise(sims, own))
                weights.append(spec["weight"])
        if not parts:  # no matrix member: co-occurrence counts
            binary = (self.data.matrix > 0).astype(np.float64).tocsc()
            return np.asarray((binary.T @ binary[:, column]).todense()).ravel()
        return self.blend(parts, np.asarray(weights))[0]

    # ---- persistence ---------------------------------------------------------------------
    def _save_arrays(self, directory: Path) -> None:
        for position, member in enumerate(self.fitted_members):
            member.save(directory / MEMBERS_DIR / str(position))

    def _load_arrays(self, directory: Path) -> None:
        from models.registry import load_model, model_class

        loaded = []
        for position, spec in enumerate(self.members):
            path = directory / MEMBERS_DIR / str(position)
            if not path.is_dir():
                raise ModelFileError(f"{path} is missing")
            member = load_model(path)
            if type(member) is not model_class(spec["model"]):
                raise ModelFileError(f"{path} holds {member.name!r}, expected {spec['model']!r}")
            loaded.append(member)
        self._fitted = loaded
