"""Federated RP3beta: RP3beta's similarity built on the server from a weighted Gram summed over
Flower clients.

RP3beta's unpruned matrix is ``W = P_iu^α · P_ui^α · diag(pop^(-β))`` with ``P_ui`` the
row-stochastic ``X`` and ``P_iu`` the row-stochastic ``Xᵀ``
(:class:`~models.collaborative.neighbors.RP3betaRecommender`), i.e.

    ``W_ij = c_i^(-α) · Σ_u x_ui^α x_uj^α s_u^(-α) · pop_j^(-β)``

with ``s_u`` the user's row sum, ``c_i`` the item's weight sum and ``pop_j`` its number of users.
The sum over users is a symmetric Gram, so each client (the real ``ClientApp``) sends its partial
``Σ_u s_u^(-α) y_u y_uᵀ`` (``y_u = x_u^α``) with its item weight sums and degrees in one
``query.gram`` message with ``alpha`` in its config (:mod:`models.federated.gram`), and the server
applies the item scalings. One round, no training loop: the model equals centralized RP3beta up to
the float32 rounding of the message (relative ~1e-7), then the same top-k pruning.

What the server sees: as for federated EASE (:mod:`models.federated.ease`), one summed weighted
Gram per client (a partition of users) plus per-item weight sums and user counts; no secure
aggregation, no DP. Message size: ``n (n + 1) / 2`` float32 values (5.7 MB on ML-100k).

Everything after the similarity (top-k pruning, ``normalize``, scoring, fold-in, similar items,
save/load) is :class:`RP3betaRecommender`'s; like federated EASE the recommender keeps the training
histories to answer ``recommend`` for training users. Flower is imported only by ``fit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from models.collaborative.neighbors import RP3betaRecommender
from models.federated.gram_fit import GramFederation

if TYPE_CHECKING:
    from models.federated.gram import GramResult


class FederatedRP3betaRecommender(GramFederation, RP3betaRecommender):
    """RP3beta (``alpha``, ``beta``, ``topk``, ``normalize`` as :class:`RP3betaRecommender`) from a
    weighted Gram summed over ``num_clients`` Flower clients, each holding a disjoint partition of
    the users (run in-process)."""

    name: ClassVar[str] = "federated-rp3beta"

    def __init__(
        self,
        alpha: float = 0.6,
        beta: float = 0.5,
        topk: int = 300,
        normalize: bool = False,
        num_clients: int = 3,
        seed: int = 42,
    ) -> None:
        super().__init__(alpha=alpha, beta=beta, topk=topk, normalize=normalize, seed=seed)
        self._set_num_clients(num_clients)
        self._federated: GramResult | None = None
        self._gram: np.ndarray | None = None
        self._row_scale: np.ndarray | None = None

    def fit(self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None) -> Self:
        """Federate the weighted Gram over ``num_clients`` in-process clients and build RP3beta.

        ``item_features`` is ignored (as by RP3beta). Raises
        :class:`~models.federated.server_app.FederationError` when a client fails or a partition
        is missing (RP3beta on part of the users would be a different model).
        """
        data, self._federated = self._federate(interactions, alpha=self.alpha)
        self._fit_matrix(data.matrix)
        self._data = data
        return self

    def _prepare(self, matrix: sp.csr_matrix) -> None:
        """The server side: item scalings ``c^(-α)`` (rows) and ``pop^(-β)`` (columns) from the
        federation's sums; ``matrix`` is used only to check the shape (the data stay local)."""
        result = self._federated
        if result is None or result.item_degrees is None:
            raise RuntimeError(f"{self.name} has no federated Gram; call fit")
        if result.gram.shape != (matrix.shape[1], matrix.shape[1]) or result.alpha != self.alpha:
            raise RuntimeError(
                f"the federated Gram ({result.gram.shape}, alpha {result.alpha}) does not match "
                f"{matrix.shape[1]} items and alpha {self.alpha}"
            )
        counts = result.item_counts.copy()
        counts[counts == 0] = 1.0
        degrees = result.item_degrees.copy()
        degrees[degrees == 0] = 1.0
        self._gram = result.gram
        self._row_scale = counts ** (-self.alpha)
        self._penalty = degrees ** (-self.beta)
        self._federated = None

    def _similarity_block(self, matrix: sp.csr_matrix, start: int, stop: int) -> np.ndarray:
        if self._gram is None or self._row_scale is None or self._penalty is None:
            raise RuntimeError("federated RP3beta scalings are not prepared")
        return self._gram[start:stop] * self._row_scale[start:stop, None] * self._penalty[None, :]

    def _fit_matrix(self, matrix: sp.csr_matrix) -> None:
        try:
            super()._fit_matrix(matrix)
        finally:
            self._gram = self._row_scale = self._federated = None
