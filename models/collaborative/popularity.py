"""Most-popular baseline: the same ranking for everyone, minus what they have already seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from models.collaborative.matrix_base import MatrixRecommender, load_npz, save_npz


class PopularityRecommender(MatrixRecommender):
    """Scores every item by its training popularity.

    ``by="count"`` counts distinct users per item (the usual baseline); ``by="weight"`` sums the
    interaction weights instead. Fold-in ignores the history (the scores are not personal), and
    ``similar_items`` ranks items by co-occurrence: the number of users who interacted with both.
    ``seed`` is accepted for the shared training contract and stored, but nothing here is random.
    """

    name: ClassVar[str] = "popularity"

    def __init__(self, by: Literal["count", "weight"] = "count", seed: int = 42) -> None:
        super().__init__()
        if by not in ("count", "weight"):
            raise ValueError(f"by must be 'count' or 'weight', got {by!r}")
        self.by = by
        self.seed = seed
        self._popularity: np.ndarray | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"by": self.by, "seed": self.seed}

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        source = (matrix > 0).astype(np.float64) if self.by == "count" else matrix
        self._popularity = np.asarray(source.sum(axis=0), dtype=np.float64).ravel()

    @property
    def popularity(self) -> np.ndarray:
        if self._popularity is None:
            raise RuntimeError("popularity scores are not computed; fit or load the model first")
        return self._popularity

    def nonpersonal_scores(self) -> np.ndarray:
        return self.popularity

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(rows), len(self.popularity))).copy()

    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        return self.popularity

    def _item_similarity(self, column: int) -> np.ndarray:
        binary = (self.data.matrix > 0).astype(np.float64).tocsc()
        users = binary[:, column]
        return np.asarray((binary.T @ users).todense(), dtype=np.float64).ravel()

    def _save_arrays(self, directory: Path) -> None:
        save_npz(directory / "popularity.npz", popularity=self.popularity)

    def _load_arrays(self, directory: Path) -> None:
        self._popularity = load_npz(directory / "popularity.npz")["popularity"]
