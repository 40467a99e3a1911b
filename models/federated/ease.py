"""Federated EASE: EASE solved on the server from a Gram matrix summed over Flower clients.

EASE needs the data only through ``XᵀX``, a sum over users, so the Flower clients (the real
``ClientApp``, each reading its own partition of users from its Parquet file as in training) each
send their partial Gram once (``query.gram``, :mod:`models.federated.gram`), the server sums them
and solves with the centralized code (:func:`models.collaborative.ease.solve_ease`). One round, no
training loop: the model equals centralized EASE on the same data up to float rounding (the
clients send float32; binary co-occurrence counts are exact), so its nDCG@10 is EASE's.

What the server sees: one summed Gram (plus per-item counts and a user count) per client, where a
client is a partition of users. With one user per client that is a single user's co-occurrence
matrix; hiding it would need secure aggregation (Flower's SecAgg+), which is not built here. No
differential privacy: the DP Gram was measured and lost (README, "What was tried and lost").
Message size per client: ``n (n + 1) / 2`` float32 values, 5.7 MB on ML-100k (1,682 items), 190 MB
on ml-latest-small (9,742 items). The server needs the dense float64 Gram (760 MB for 9,742 items)
as centralized EASE does.

As :class:`~models.federated.recommender.FederatedRecommender`, the recommender also keeps the
training histories (the clients' local state in a deployment) to answer ``recommend`` for training
users; everything else (scoring, fold-in, similar items, save/load) is
:class:`~models.collaborative.ease.EASERecommender`'s. Flower is imported only by ``fit``: a saved
model loads and serves without it.
"""

from __future__ import annotations

from typing import ClassVar, Self

import polars as pl

from models.collaborative.ease import EASERecommender, solve_ease
from models.federated.gram_fit import GramFederation


class FederatedEASERecommender(GramFederation, EASERecommender):
    """EASE (``l2`` = λ, as :class:`EASERecommender`) from a Gram summed over ``num_clients``
    Flower clients, each holding a disjoint partition of the users (run in-process)."""

    name: ClassVar[str] = "federated-ease"

    def __init__(
        self, l2: float = 500.0, num_clients: int = 3, num_threads: int = 2, seed: int = 42
    ) -> None:
        super().__init__(l2=l2, num_threads=num_threads, seed=seed)
        self._set_num_clients(num_clients)

    def fit(self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None) -> Self:
        """Federate the Gram over ``num_clients`` in-process clients and solve EASE on it.

        ``item_features`` is ignored (as by EASE). Raises
        :class:`~models.federated.server_app.FederationError` when a client fails or a partition
        is missing (EASE on part of the users would be a different model).
        """
        data, federated = self._federate(interactions)
        self._b = solve_ease(federated.gram, self.l2, self.num_threads)
        self._data = data
        return self
