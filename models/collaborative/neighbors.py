"""Item-item neighbourhood models on a sparse top-k similarity matrix: RP3beta and ItemKNN.

Both learn an items x items matrix ``W`` (row ``i`` = how strongly item ``i`` points to every other
item, diagonal zero, only the ``topk`` largest entries of each row kept) and score a user as
``x_u · W``; fold-in of any history is the same product, so new users need no retraining.

* :class:`RP3betaRecommender` (Paudel et al., "Updatable, accurate, diverse, and scalable
  recommendations for interactive applications", TiiS 2016; the tuned baseline of Dacrema et al.,
  RecSys 2019): a three-step random walk item -> user -> item on the bipartite graph with
  transition probabilities raised to ``alpha``, divided by the destination's popularity to the power
  ``beta`` (the popularity penalty that makes it less biased than plain P3).
* :class:`ItemKNNRecommender`: cosine similarity of item columns with a ``shrink`` term
  (``x_i·x_j / (|x_i| |x_j| + shrink)``), the classic item-based CF baseline.

The dense similarity is built ``SIM_BLOCK`` rows at a time and pruned to ``topk`` per row, so memory
stays at O(items x topk) (ml-latest-small: 9.7k items, ~2 s).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from models.collaborative.matrix_base import MatrixRecommender, load_npz, save_npz

SIM_BLOCK = 1024
"""Rows of the dense similarity computed at once before top-k pruning."""


def top_k_rows(dense: np.ndarray, first_row: int, topk: int) -> sp.csr_matrix:
    """Keep the ``topk`` largest positive entries of each row of ``dense`` (rows offset by
    ``first_row`` in the full matrix, whose diagonal is zeroed first)."""
    n_rows, n_cols = dense.shape
    rows = np.arange(n_rows)
    dense[rows, rows + first_row] = 0.0
    k = min(topk, n_cols)
    idx = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(dense, idx, axis=1)
    keep = vals > 0
    return sp.csr_matrix(
        (vals[keep], (np.repeat(rows, k).reshape(n_rows, k)[keep], idx[keep])),
        shape=(n_rows, n_cols),
        dtype=np.float32,
    )


class ItemGraphRecommender(MatrixRecommender):
    """Shared part of the sparse item-item models (scoring, similarity, persistence)."""

    name: ClassVar[str]

    def __init__(self, topk: int) -> None:
        super().__init__()
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        self.topk = int(topk)
        self._w: sp.csr_matrix | None = None

    @abstractmethod
    def _similarity_block(self, matrix: sp.csr_matrix, start: int, stop: int) -> np.ndarray:
        """Dense rows ``start:stop`` of the (unpruned) item-item matrix, float64."""

    @property
    def weights(self) -> sp.csr_matrix:
        """The pruned items x items matrix ``W`` (float32 CSR)."""
        if self._w is None:
            raise RuntimeError(f"{self.name} weights are not computed; fit or load the model first")
        return self._w

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        self._prepare(matrix)
        n_items = matrix.shape[1]
        blocks = [
            top_k_rows(
                self._similarity_block(matrix, start, min(start + SIM_BLOCK, n_items)),
                start,
                self.topk,
            )
            for start in range(0, n_items, SIM_BLOCK)
        ]
        w = sp.vstack(blocks, format="csr")
        w.sort_indices()
        self._w = w

    def _prepare(self, matrix: sp.csr_matrix) -> None:
        """Precompute whatever the blocks share (called once per fit)."""

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return (self.data.matrix[rows] @ self.weights).toarray()

    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        return (history @ self.weights).toarray().ravel()

    def _item_similarity(self, column: int) -> np.ndarray:
        return self.weights[column].toarray().ravel()

    def _save_arrays(self, directory: Path) -> None:
        w = self.weights
        save_npz(
            directory / f"{self.name}.npz",
            data=w.data,
            indices=w.indices,
            indptr=w.indptr,
            shape=np.asarray(w.shape),
        )

    def _load_arrays(self, directory: Path) -> None:
        a = load_npz(directory / f"{self.name}.npz")
        self._w = sp.csr_matrix(
            (a["data"], a["indices"], a["indptr"]), shape=tuple(int(x) for x in a["shape"])
        )


class RP3betaRecommender(ItemGraphRecommender):
    """RP3beta: ``W = (P_iu^α · P_ui^α) / pop^β`` pruned to ``topk`` per row.

    ``P_ui`` is the user -> item transition matrix (each user's row of the training matrix divided
    by its sum), ``P_iu`` the item -> user one; ``pop_j`` is item ``j``'s number of training users.
    ``normalize`` rescales each pruned row to sum 1 (Dacrema et al.'s ``normalize_similarity``).

    Defaults (``alpha=0.6, beta=0.5, topk=300``) are the best validation nDCG@10 (0.265) of
    ``benchmarks/quality.py --tune --datasets ml-100k --splits stratified`` (grid α ∈ {0.4, 0.6,
    0.8}, β ∈ {0.35, 0.5, 0.65}, topk ∈ {100, 300}; validation carved from the training part).
    ``seed`` is accepted for the training contract; the model is deterministic.
    """

    name: ClassVar[str] = "rp3beta"

    def __init__(
        self,
        alpha: float = 0.6,
        beta: float = 0.5,
        topk: int = 300,
        normalize: bool = False,
        seed: int = 42,
    ) -> None:
        super().__init__(topk)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.normalize = bool(normalize)
        self.seed = seed
        self._p_ui: sp.csr_matrix | None = None
        self._p_iu: sp.csr_matrix | None = None
        self._penalty: np.ndarray | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "topk": self.topk,
            "normalize": self.normalize,
            "seed": self.seed,
        }

    @staticmethod
    def _row_stochastic(m: sp.csr_matrix, power: float) -> sp.csr_matrix:
        sums = np.asarray(m.sum(axis=1)).ravel()
        sums[sums == 0] = 1.0
        out = sp.diags(1.0 / sums) @ m
        out = sp.csr_matrix(out, dtype=np.float64)
        out.data **= power
        return out

    def _prepare(self, matrix: sp.csr_matrix) -> None:
        x = sp.csr_matrix(matrix, dtype=np.float64)
        self._p_ui = self._row_stochastic(x, self.alpha)
        self._p_iu = self._row_stochastic(sp.csr_matrix(x.T), self.alpha)
        degree = np.asarray((x > 0).sum(axis=0), dtype=np.float64).ravel()
        degree[degree == 0] = 1.0
        self._penalty = degree ** (-self.beta)

    def _similarity_block(self, matrix: sp.csr_matrix, start: int, stop: int) -> np.ndarray:
        if self._p_iu is None or self._p_ui is None or self._penalty is None:
            raise RuntimeError("RP3beta transition matrices are not prepared")
        return (self._p_iu[start:stop] @ self._p_ui).toarray() * self._penalty[None, :]

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        super()._fit_matrix(matrix)
        self._p_ui = self._p_iu = self._penalty = None
        if self.normalize:
            sums = np.asarray(self.weights.sum(axis=1)).ravel()
            sums[sums == 0] = 1.0
            self._w = sp.csr_matrix(sp.diags(1.0 / sums) @ self.weights, dtype=np.float32)


class ItemKNNRecommender(ItemGraphRecommender):
    """Item-based CF: shrunk cosine between item columns, ``topk`` neighbours per item.

    Defaults (``topk=600, shrink=0``) are the best validation nDCG@10 (0.248) of the same
    ``--tune`` run as RP3beta's (grid topk ∈ {100, 300, 600}, shrink ∈ {0, 20}). ``seed`` is
    accepted for the training contract; the model is deterministic.
    """

    name: ClassVar[str] = "itemknn"

    def __init__(self, topk: int = 600, shrink: float = 0.0, seed: int = 42) -> None:
        super().__init__(topk)
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.shrink = float(shrink)
        self.seed = seed
        self._xt: sp.csr_matrix | None = None
        self._norms: np.ndarray | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"topk": self.topk, "shrink": self.shrink, "seed": self.seed}

    def _prepare(self, matrix: sp.csr_matrix) -> None:
        x = sp.csr_matrix(matrix, dtype=np.float64)
        self._xt = sp.csr_matrix(x.T)
        self._norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())

    def _similarity_block(self, matrix: sp.csr_matrix, start: int, stop: int) -> np.ndarray:
        if self._xt is None or self._norms is None:
            raise RuntimeError("ItemKNN norms are not prepared")
        dots = (self._xt[start:stop] @ self._xt.T).toarray()
        denom = self._norms[start:stop, None] * self._norms[None, :] + self.shrink + 1e-12
        return dots / denom

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        super()._fit_matrix(matrix)
        self._xt = self._norms = None
