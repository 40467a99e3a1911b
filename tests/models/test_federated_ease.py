"""Federated EASE: the Gram summed over the real ClientApp (InProcessGrid) gives EASE's model.

Small synthetic interactions (60 users, 40 items); three clients, each reading its own partition
of a Parquet file. Failures (a client without its data, a lost reply, two nodes holding the same
partition) must stop the fit with a :class:`FederationError` that names the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.collaborative.ease import EASERecommender
from models.collaborative.matrix_base import ModelFileError
from models.federated.client_app import app as client_app
from models.federated.config import TaskConfig
from models.federated.ease import FederatedEASERecommender
from models.federated.gram import collect_gram, packed_size, partial_gram, unpack_gram
from models.federated.recommender import InProcessGrid, node_contexts, serverapp_identity
from models.federated.server_app import FederationError
from models.registry import create, load_model

NUM_USERS = 60
NUM_ITEMS = 40
L2 = 5.0


@pytest.fixture
def interactions(rng: np.random.Generator) -> pl.DataFrame:
    rows = [
        (f"u{u:02d}", f"i{int(i):02d}")
        for u in range(NUM_USERS)
        for i in rng.choice(NUM_ITEMS, size=int(rng.integers(2, 15)), replace=False)
    ]
    return pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row").with_columns(
        pl.lit(1.0).alias("weight")
    )


@pytest.fixture
def data_path(tmp_path: Path, interactions: pl.DataFrame) -> Path:
    """The interactions as the federation's Parquet file (``item_index`` = catalogue index)."""
    path = tmp_path / "interactions.parquet"
    interactions.select(
        "user_id", pl.col("item_id").str.slice(1).cast(pl.Int64).alias("item_index"), "weight"
    ).write_parquet(path)
    return path


def _cfg(num_clients: int = 3) -> TaskConfig:
    return TaskConfig(num_items=NUM_ITEMS, num_clients=num_clients, seed=7)


def _dense(interactions: pl.DataFrame) -> np.ndarray:
    x = np.zeros((NUM_USERS, NUM_ITEMS))
    users = interactions["user_id"].str.slice(1).cast(pl.Int64).to_numpy()
    items = interactions["item_id"].str.slice(1).cast(pl.Int64).to_numpy()
    x[users, items] = interactions["weight"].to_numpy()
    return x


def test_packed_upper_triangle_round_trip(rng: np.random.Generator) -> None:
    x = rng.random((7, 5)) * (rng.random((7, 5)) < 0.5)
    packed, counts = partial_gram(x)
    assert packed.dtype == np.float32 and packed.shape == (packed_size(5),)
    np.testing.assert_allclose(unpack_gram(packed.astype(np.float64), 5), x.T @ x, rtol=1e-6)
    np.testing.assert_allclose(counts, x.sum(axis=0))
    with pytest.raises(ValueError, match="expected"):
        unpack_gram(packed[:-1], 5)


def test_summed_gram_over_the_client_app_is_the_centralized_gram(
    data_path: Path, interactions: pl.DataFrame
) -> None:
    grid = InProcessGrid(client_app, node_contexts(data_path, _cfg()))
    with serverapp_identity():
        result = collect_gram(grid, NUM_ITEMS, 3)
    x = _dense(interactions)
    np.testing.assert_array_equal(result.gram, x.T @ x)  # binary counts: exact in float32
    np.testing.assert_array_equal(result.item_counts, x.sum(axis=0))
    assert (result.num_users, result.clients) == (NUM_USERS, 3)


def test_federated_ease_scores_as_ease(interactions: pl.DataFrame) -> None:
    central = EASERecommender(l2=L2).fit(interactions)
    federated = create("federated-ease", l2=L2, num_clients=3).fit(interactions)
    assert isinstance(federated, FederatedEASERecommender)
    users = sorted(set(interactions["user_id"]))
    items = sorted(set(interactions["item_id"]))
    np.testing.assert_allclose(
        federated.score_users(users, items), central.score_users(users, items), atol=1e-5
    )
    assert federated.recommend(users, k=10).equals(central.recommend(users, k=10))
    history = ["i01", "i02", "i03"]
    np.testing.assert_allclose(
        federated.score_history(history, None, items),
        central.score_history(history, None, items),
        atol=1e-5,
    )


def test_a_client_without_its_data_stops_the_fit(data_path: Path, tmp_path: Path) -> None:
    contexts = node_contexts(data_path, _cfg())
    contexts[2].node_config["data-path"] = str(tmp_path / "gone.parquet")
    with serverapp_identity(), pytest.raises(FederationError, match=r"node 2: .*not found"):
        collect_gram(InProcessGrid(client_app, contexts), NUM_ITEMS, 3)


class _LosingGrid(InProcessGrid):
    """Loses the reply of node 3 (a client that never answers within the timeout)."""

    def _deliver(self, message):  # type: ignore[no-untyped-def]
        reply = super()._deliver(message)
        return None if message.metadata.dst_node_id == 3 else reply


def test_a_lost_reply_stops_the_fit(data_path: Path) -> None:
    grid = _LosingGrid(client_app, node_contexts(data_path, _cfg()))
    with serverapp_identity(), pytest.raises(FederationError, match="1 did not reply"):
        collect_gram(grid, NUM_ITEMS, 3)


def test_a_missing_partition_stops_the_fit(data_path: Path) -> None:
    contexts = node_contexts(data_path, _cfg())
    contexts[3].node_config["partition-id"] = 0  # partition 2 is held by nobody
    with serverapp_identity(), pytest.raises(FederationError, match="partition 0 of 3"):
        collect_gram(InProcessGrid(client_app, contexts), NUM_ITEMS, 3)


def test_save_load_round_trip(interactions: pl.DataFrame, tmp_path: Path) -> None:
    model = create("federated-ease", l2=L2, num_clients=2).fit(interactions)
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, FederatedEASERecommender)
    assert loaded.params == {"l2": L2, "num_threads": 2, "seed": 42, "num_clients": 2}
    users = sorted(set(interactions["user_id"]))
    assert loaded.recommend(users, k=5).equals(model.recommend(users, k=5))
    np.testing.assert_array_equal(loaded.weights, model.weights)
    with pytest.raises(ModelFileError, match="federated-ease"):
        EASERecommender.load(tmp_path / "model")
