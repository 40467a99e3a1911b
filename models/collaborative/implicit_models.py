"""Matrix factorisation baselines wrapping the ``implicit`` 0.7 CPU models (ALS and BPR).

Threads: ``implicit`` runs its own OpenMP loops (``num_threads``) and warns that a multi-threaded
BLAS underneath slows it down badly, so model construction and ``fit`` run inside
``threadpool_limits(1, "blas")``. ALS defaults to 2 threads (per-row solves: the result does not
depend on the thread count); BPR defaults to 1, because its Hogwild SGD with several threads is not
reproducible for a given ``seed``.

Scores are the inner products ``user_factors · item_factors`` computed with numpy (BPR's last
factor column is its item bias, paired with a constant 1 in the user factors).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.collaborative.matrix_base import MatrixRecommender, cosine_to, load_npz, save_npz

log = logging.getLogger(__name__)


class _FactorModel(MatrixRecommender):
    """Shared storage, scoring, similarity and persistence for factor models."""

    def __init__(self) -> None:
        super().__init__()
        self._user_factors: np.ndarray | None = None
        self._item_factors: np.ndarray | None = None

    @property
    def user_factors(self) -> np.ndarray:
        if self._user_factors is None:
            raise RuntimeError(f"{self.name} factors are not trained; fit or load the model first")
        return self._user_factors

    @property
    def item_factors(self) -> np.ndarray:
        if self._item_factors is None:
            raise RuntimeError(f"{self.name} factors are not trained; fit or load the model first")
        return self._item_factors

    def _user_scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors[rows] @ self.item_factors.T

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        """Item ids and latent factors (published to LanceDB ``collab_items`` on promotion)."""
        return [str(i) for i in self.data.items.ids], np.asarray(self.item_factors, np.float32)

    def user_vectors(self) -> tuple[list[str], np.ndarray]:
        """User ids and latent factors (LanceDB ``collab_users``)."""
        return [str(u) for u in self.data.users.ids], np.asarray(self.user_factors, np.float32)

    def _item_similarity(self, column: int) -> np.ndarray:
        return cosine_to(self.item_factors, column)

    def _save_arrays(self, directory: Path) -> None:
        save_npz(directory / "factors.npz", user=self.user_factors, item=self.item_factors)

    def _load_arrays(self, directory: Path) -> None:
        arrays = load_npz(directory / "factors.npz")
        self._user_factors, self._item_factors = arrays["user"], arrays["item"]


class ALSRecommender(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit.cpu.als``.

    Confidence is ``alpha * weight``. Fold-in solves the user's least-squares problem against the
    fixed item factors (``recalculate_user=True`` in ``implicit``), exactly what ``fit`` does for a
    training user in its last half-iteration. Defaults: 64 factors, alpha 1, 15 iterations and
    regularization 12, the best of {0.01 .. 25} on a validation split carved from the ML-100k
    stratified training part (binary weights; alpha 5 or 20 was worse). ``implicit``'s penalty is
    not scaled by a user's number of interactions, so on much sparser data retune it.
    """

    name: ClassVar[str] = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 12.0,
        alpha: float = 1.0,
        iterations: int = 15,
        num_threads: int = 2,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.num_threads = int(num_threads)
        self.seed = int(seed)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "num_threads": self.num_threads,
            "seed": self.seed,
        }

    def _implicit_model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.seed,
            )
        if self._item_factors is not None:
            model.item_factors = self._item_factors
            model.user_factors = self._user_factors
        return model

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        self._user_factors = self._item_factors = None
        model = self._implicit_model()
        started = time.perf_counter()
        with threadpool_limits(1, user_api="blas"):
            model.fit(matrix.astype(np.float32), show_progress=False)
        log.info("ALS fitted", extra={"seconds": round(time.perf_counter() - started, 3)})
        self._user_factors = np.ascontiguousarray(model.user_factors)
        self._item_factors = np.ascontiguousarray(model.item_factors)

    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        model = self._implicit_model()
        with threadpool_limits(1, user_api="blas"):
            user = model.recalculate_user(0, history.astype(np.float32))
        return self.item_factors @ user


class BPRRecommender(_FactorModel):
    """Bayesian Personalized Ranking (Rendle et al. 2009) via ``implicit.cpu.bpr``.

    BPR learns from which items a user has, not how much: weights only mark positives. Fold-in is a
    ridge least-squares projection of the binary history ``x`` onto the item factors without the bias
    column, ``u = (VᵀV + fold_in_l2·I)⁻¹ Vᵀ x``, scored as ``V u + bias``: the user vector whose
    scores best reproduce "has / has not" over the catalogue.

    Defaults (128 factors, learning rate 0.005, regularization 0.001, 100 epochs) were the best of a
    small grid on a validation split carved from the ML-100k stratified training part; longer or
    faster training overfits (nDCG@10 drops).
    """

    name: ClassVar[str] = "bpr"

    def __init__(
        self,
        factors: int = 128,
        learning_rate: float = 0.005,
        regularization: float = 0.001,
        iterations: int = 100,
        fold_in_l2: float = 1.0,
        num_threads: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = int(iterations)
        self.fold_in_l2 = float(fold_in_l2)
        self.num_threads = int(num_threads)
        self.seed = int(seed)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "fold_in_l2": self.fold_in_l2,
            "num_threads": self.num_threads,
            "seed": self.seed,
        }

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self._user_factors = self._item_factors = None
        started = time.perf_counter()
        with threadpool_limits(1, user_api="blas"):
            model = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.seed,
            )
            model.fit((matrix > 0).astype(np.float32).tocsr(), show_progress=False)
        log.info("BPR fitted", extra={"seconds": round(time.perf_counter() - started, 3)})
        self._user_factors = np.ascontiguousarray(model.user_factors)
        self._item_factors = np.ascontiguousarray(model.item_factors)

    def _history_scores(self, history: sp.csr_matrix) -> np.ndarray:
        v = self.item_factors[:, :-1].astype(np.float64)
        bias = self.item_factors[:, -1].astype(np.float64)
        x = np.zeros(v.shape[0])
        x[history.indices] = 1.0
        gram = v.T @ v + self.fold_in_l2 * np.eye(v.shape[1])
        user = np.linalg.solve(gram, v.T @ x)
        return v @ user + bias
