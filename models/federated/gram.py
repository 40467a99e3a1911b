"""Federated item-item Gram matrix: each client's partial ``XᵀX``, summed on the server.

EASE needs the data only through ``G = XᵀX`` (items x items), and ``G`` is a sum over users, so
with users partitioned across clients ``G = Σ_k X_kᵀ X_k``. A client answers a ``query.gram``
message (``models.federated.client_app``) with its partial Gram over its own users' training
histories (the weights as given: binary under the training contract) plus its per-item weight sums
and user count; histories never leave the client. :func:`collect_gram` (server side, any Flower
``Grid``: the deployment SuperLink or the in-process driver) asks every partition once and sums.

Weighted Gram (RP3beta): with ``alpha`` in the query's ConfigRecord, the client returns
``G = Σ_u s_u^(-α) · y_u y_uᵀ`` with ``y_u = x_u^α`` (elementwise) and ``s_u = Σ_j x_uj`` (the
user's row sum), plus the per-item degrees ``pop_i = #{u : x_ui > 0}``. RP3beta's similarity is
``W_ij = c_i^(-α) · G_ij · pop_j^(-β)`` (``c_i`` = the item weight sums): the per-user factors
stay on the client, the item scalings (which make ``W`` asymmetric) are applied by the server, so
the message is still one symmetric Gram. Without ``alpha`` the reply is exactly ``XᵀX`` (EASE).

What the server sees: one summed Gram per client, i.e. per partition of users. With many users per
client that is an aggregate; with one user per client it is that user's co-occurrence matrix,
and hiding it would need secure aggregation (Flower's SecAgg+), which is not built here. No
differential privacy either: the DP Gram was measured and lost (README, "What was tried and lost").

Message size: the upper triangle (the Gram is symmetric) packed row by row as float32,
``n (n + 1) / 2`` values: 5.7 MB for ML-100k's 1,682 items, 190 MB for ml-latest-small's 9,742
(a dense float64 Gram would be 760 MB). float32 holds integer co-occurrence counts exactly up to
2^24 per client; non-integer weights are rounded to float32 (relative error ~6e-8). The server
sums in float64. Flower splits large arrays into chunks on the wire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import sample_nodes

from models.federated.server_app import FederationError

logger = logging.getLogger(__name__)

GRAM_MESSAGE = "query.gram"
"""Message type of the Gram query (``@app.query("gram")`` in the ClientApp)."""


def packed_size(num_items: int) -> int:
    """Number of values in the packed upper triangle of a ``num_items`` square matrix."""
    return num_items * (num_items + 1) // 2


def _row_offsets(num_items: int) -> np.ndarray:
    """Start of row ``i``'s segment ``G[i, i:]`` in the packed upper triangle."""
    rows = np.arange(num_items + 1, dtype=np.int64)
    return rows * num_items - rows * (rows - 1) // 2


def check_alpha(alpha: float | None) -> float | None:
    """``alpha`` as a float, or None; a given one must be finite and > 0 (RP3beta's α)."""
    if alpha is None:
        return None
    value = float(alpha)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"the Gram's alpha must be finite and > 0, got {alpha}")
    return value


def partial_gram(
    histories: np.ndarray, alpha: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(packed upper triangle of the Gram as float32, per-item weight sums)`` of one client.

    ``histories`` is the client's users x items weight matrix. Without ``alpha`` the Gram is
    ``XᵀX``; with it, ``Σ_u s_u^(-α) y_u y_uᵀ`` (``y_u = x_u^α``, ``s_u`` the row sum; module
    docstring). The product is sparse in float64, so only the final cast to float32 rounds
    (counts are exact up to 2^24). The weight sums are those of ``X`` in both cases.
    """
    alpha = check_alpha(alpha)
    num_items = histories.shape[1]
    x = sp.csr_matrix(histories, dtype=np.float64)
    if alpha is None:
        gram = (x.T @ x).tocoo()
    else:
        sums = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
        sums[sums == 0] = 1.0  # an empty row adds nothing (RP3beta's convention)
        y = x.copy()
        y.data **= alpha
        gram = (y.T @ (sp.diags(sums ** (-alpha)) @ y)).tocoo()
    upper = gram.col >= gram.row
    rows, cols = gram.row[upper].astype(np.int64), gram.col[upper].astype(np.int64)
    packed = np.zeros(packed_size(num_items), dtype=np.float32)
    packed[_row_offsets(num_items)[rows] + cols - rows] = gram.data[upper]
    counts = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    return packed, counts


def unpack_gram(packed: np.ndarray, num_items: int) -> np.ndarray:
    """The dense symmetric float64 matrix of a packed upper triangle (row by row: no index
    arrays of the triangle's size)."""
    if packed.shape != (packed_size(num_items),):
        raise ValueError(
            f"packed Gram has shape {packed.shape}, expected ({packed_size(num_items)},) "
            f"for {num_items} items"
        )
    offsets = _row_offsets(num_items)
    gram = np.empty((num_items, num_items), dtype=np.float64)
    for i in range(num_items):
        segment = packed[offsets[i] : offsets[i + 1]]
        gram[i, i:] = segment
        gram[i:, i] = segment
    return gram


def item_degrees(histories: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Number of users with a positive weight on each item (float64; dense or sparse input)."""
    return np.asarray((histories > 0).sum(axis=0), dtype=np.float64).ravel()


def gram_reply(
    histories: np.ndarray, partition_id: int, num_partitions: int, alpha: float | None = None
) -> RecordDict:
    """The content of a client's reply: ``gram`` ArrayRecord and ``metrics`` (no user ids).

    With ``alpha`` the Gram is the weighted one and the arrays also hold ``item-degrees``;
    without it the reply is unchanged (``gram-upper`` = ``XᵀX``, ``item-counts``).
    """
    packed, counts = partial_gram(histories, alpha)
    arrays = ArrayRecord({"gram-upper": Array(packed), "item-counts": Array(counts)})
    if alpha is not None:
        arrays["item-degrees"] = Array(item_degrees(histories))
    metrics = MetricRecord(
        {
            "num-users": int(histories.shape[0]),
            "partition-id": int(partition_id),
            "num-partitions": int(num_partitions),
        }
    )
    return RecordDict({"gram": arrays, "metrics": metrics})


@dataclass(frozen=True)
class GramResult:
    """The federation's summed Gram (dense float64), per-item weight sums and user count; with
    ``alpha`` (the weighted Gram) also the per-item user counts ``item_degrees``."""

    gram: np.ndarray
    item_counts: np.ndarray
    num_users: int
    clients: int
    alpha: float | None = None
    item_degrees: np.ndarray | None = None


def collect_gram(
    grid: Grid,
    num_items: int,
    num_partitions: int,
    timeout: float | None = None,
    alpha: float | None = None,
) -> GramResult:
    """Ask each of ``num_partitions`` clients for its partial Gram once and sum them.

    ``alpha`` (sent in the query's ConfigRecord) asks for the weighted Gram and the item degrees
    (RP3beta, module docstring); without it the clients return ``XᵀX`` (EASE).

    Waits (as FedAvg does) until ``num_partitions`` nodes are connected, sends one ``query.gram``
    to each and requires a successful reply from every partition ``0..num_partitions-1`` exactly
    once (one reply per node, distinct partitions in range: all of them are covered). A Gram
    missing a partition would be a different model, so any error reply, missing reply
    (``timeout``), duplicate or foreign partition raises :class:`FederationError` naming it.
    """
    alpha = check_alpha(alpha)
    nodes, _ = sample_nodes(grid, num_partitions, num_partitions)
    config = ConfigRecord({"num-items": num_items})
    if alpha is not None:
        config["alpha"] = alpha
    messages = [
        Message(content=RecordDict({"config": config}), message_type=GRAM_MESSAGE, dst_node_id=n)
        for n in sorted(nodes)
    ]
    replies = sorted(
        grid.send_and_receive(messages, timeout=timeout), key=lambda m: m.metadata.src_node_id
    )
    errors = [f"node {m.metadata.src_node_id}: {m.error.reason}" for m in replies if m.has_error()]
    if errors or len(replies) < len(messages):
        raise FederationError(
            f"Gram query: {len(errors)} of {len(messages)} clients failed and "
            f"{len(messages) - len(replies)} did not reply; EASE needs every partition: {errors}"
        )
    packed_sum = np.zeros(packed_size(num_items), dtype=np.float64)
    counts = np.zeros(num_items, dtype=np.float64)
    degrees = None if alpha is None else np.zeros(num_items, dtype=np.float64)
    seen: dict[int, int] = {}
    users = 0
    for reply in replies:
        node = reply.metadata.src_node_id
        metrics = reply.content.metric_records["metrics"]
        partition, total = int(metrics["partition-id"]), int(metrics["num-partitions"])  # type: ignore[arg-type]
        if total != num_partitions or not 0 <= partition < total or partition in seen:
            raise FederationError(
                f"Gram query: node {node} holds partition {partition} of {total}, expected a "
                f"distinct one of 0..{num_partitions - 1} (already answered: {seen})"
            )
        seen[partition] = node
        arrays = reply.content.array_records["gram"]
        packed_sum += arrays["gram-upper"].numpy()
        counts += arrays["item-counts"].numpy()
        if degrees is not None:
            if "item-degrees" not in arrays:
                raise FederationError(
                    f"Gram query: node {node} sent no item degrees for the weighted Gram "
                    f"(alpha {alpha}); it ignored alpha and answered with XᵀX"
                )
            degrees += arrays["item-degrees"].numpy()
        users += int(metrics["num-users"])  # type: ignore[arg-type]
    logger.info("Gram summed", extra={"clients": len(replies), "items": num_items})
    gram = unpack_gram(packed_sum, num_items)
    return GramResult(gram, counts, users, len(replies), alpha, degrees)
