"""The Gram query over an in-process federation of a training matrix (federated EASE, RP3beta).

:func:`federated_gram` writes the interactions to a temporary Parquet file, starts the real
``ClientApp`` for ``num_clients`` nodes on :class:`~models.federated.recommender.InProcessGrid`
(each node reading its own partition of users, as SuperNodes read their local file) and collects
the summed Gram with :func:`~models.federated.gram.collect_gram`. Flower (and torch, through the
ClientApp) is imported only when it runs, so the recommenders that call it load and serve without.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from models.collaborative.matrix_base import InteractionMatrix

if TYPE_CHECKING:
    from models.federated.gram import GramResult

log = logging.getLogger(__name__)


class GramFederation:
    """Mixin of the recommenders fitted from a Gram summed over ``num_clients`` in-process Flower
    clients (placed before the centralized model's class, whose ``params`` it extends)."""

    name: ClassVar[str]
    seed: int
    num_clients: int

    def _set_num_clients(self, num_clients: int) -> None:
        if num_clients < 1:
            raise ValueError(f"num_clients must be >= 1, got {num_clients}")
        self.num_clients = int(num_clients)

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "num_clients": self.num_clients}  # type: ignore[misc]

    def _federate(
        self, interactions: pl.DataFrame, alpha: float | None = None
    ) -> tuple[InteractionMatrix, GramResult]:
        """The training matrix of ``interactions`` and its Gram summed over the federation."""
        data = InteractionMatrix.from_frame(interactions)
        log.info(
            "fitting %s",
            self.name,
            extra={"users": data.shape[0], "items": data.shape[1], "clients": self.num_clients},
        )
        return data, federated_gram(data, self.num_clients, self.seed, alpha=alpha)


def federated_gram(
    data: InteractionMatrix, num_clients: int, seed: int, alpha: float | None = None
) -> GramResult:
    """The Gram (``XᵀX``, or RP3beta's weighted one with ``alpha``) summed over ``num_clients``
    in-process clients holding disjoint partitions of ``data``'s users.

    Raises :class:`~models.federated.server_app.FederationError` when a client fails, a partition
    is missing, or the summed item weights (and degrees, with ``alpha``) are not the data's: every
    interaction must reach exactly one client (a check only this driver, holding both, can do).
    """
    from models.federated.client_app import app as client_app
    from models.federated.config import TaskConfig
    from models.federated.gram import collect_gram, item_degrees
    from models.federated.recommender import InProcessGrid, node_contexts, serverapp_identity
    from models.federated.server_app import FederationError

    coo = data.matrix.tocoo()
    frame = pl.DataFrame(
        {
            "user_id": data.users.ids[coo.row].tolist(),
            "item_index": coo.col.astype(np.int64),
            "weight": coo.data.astype(np.float64),
        }
    )
    num_items = data.shape[1]
    cfg = TaskConfig(num_items=num_items, num_clients=num_clients, seed=seed)
    with tempfile.TemporaryDirectory(prefix="federated-gram-") as tmp:
        path = Path(tmp) / "interactions.parquet"
        frame.write_parquet(path)
        grid = InProcessGrid(client_app, node_contexts(path, cfg))
        with serverapp_identity():
            result = collect_gram(grid, num_items, num_clients, alpha=alpha)
    expected = np.asarray(data.matrix.sum(axis=0), dtype=np.float64).ravel()
    covered = result.num_users == data.shape[0] and np.allclose(result.item_counts, expected)
    if covered and result.item_degrees is not None:
        covered = np.array_equal(result.item_degrees, item_degrees(data.matrix))
    if not covered:
        raise FederationError(
            f"the clients' Grams cover {result.num_users} of {data.shape[0]} users and "
            f"{result.item_counts.sum():.0f} of {expected.sum():.0f} interaction weight"
        )
    return result
