"""Federated RP3beta: the weighted Gram summed over the real ClientApp (InProcessGrid) gives
RP3beta's model, and an ensemble of federated members equals the same ensemble of centralized ones.

Small synthetic interactions (50 users, 30 items) with non-binary weights (1..5, as ratings would
be) and α != 1, so the per-user factor ``s_u^(-α)`` and the item scalings are all exercised; three
clients, each reading its own partition of a Parquet file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.schemas import EMBEDDING_DIM
from models.collaborative.ensemble import CONTENT_MEMBER, EnsembleRecommender
from models.collaborative.matrix_base import ModelFileError
from models.collaborative.neighbors import RP3betaRecommender
from models.federated.client_app import app as client_app
from models.federated.config import TaskConfig
from models.federated.gram import collect_gram, partial_gram, unpack_gram
from models.federated.recommender import InProcessGrid, node_contexts, serverapp_identity
from models.federated.rp3beta import FederatedRP3betaRecommender
from models.federated.server_app import FederationError
from models.registry import create, load_model

NUM_USERS = 50
NUM_ITEMS = 30
ALPHA, BETA = 0.4, 0.65


@pytest.fixture
def interactions(rng: np.random.Generator) -> pl.DataFrame:
    rows = [
        (f"u{u:02d}", f"i{int(i):02d}", float(rng.integers(1, 6)))
        for u in range(NUM_USERS)
        for i in rng.choice(NUM_ITEMS, size=int(rng.integers(2, 12)), replace=False)
    ]
    return pl.DataFrame(rows, schema=["user_id", "item_id", "weight"], orient="row")


@pytest.fixture
def item_features(interactions: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    items = sorted(set(interactions["item_id"]))
    vectors = rng.normal(size=(len(items), EMBEDDING_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return pl.DataFrame({"item_id": items, "vector": vectors.tolist()})


def _dense(interactions: pl.DataFrame) -> np.ndarray:
    x = np.zeros((NUM_USERS, NUM_ITEMS))
    users = interactions["user_id"].str.slice(1).cast(pl.Int64).to_numpy()
    items = interactions["item_id"].str.slice(1).cast(pl.Int64).to_numpy()
    x[users, items] = interactions["weight"].to_numpy()
    return x


def _weighted_gram(x: np.ndarray, alpha: float) -> np.ndarray:
    """``Σ_u s_u^(-α) (x_u^α)(x_u^α)ᵀ`` by brute force."""
    y = x**alpha
    return y.T @ (y * (x.sum(axis=1, keepdims=True) ** (-alpha)))


def test_partial_gram_with_alpha_is_the_weighted_gram(rng: np.random.Generator) -> None:
    x = rng.integers(0, 4, size=(9, 6)).astype(np.float64)
    x[0] = 0.0  # an empty history adds nothing
    packed, counts = partial_gram(x, alpha=0.7)
    np.testing.assert_allclose(
        unpack_gram(packed.astype(np.float64), 6), _weighted_gram(x[1:], 0.7), rtol=1e-6
    )
    np.testing.assert_allclose(counts, x.sum(axis=0))
    plain, _ = partial_gram(x)
    np.testing.assert_array_equal(unpack_gram(plain.astype(np.float64), 6), x.T @ x)
    with pytest.raises(ValueError, match="alpha"):
        partial_gram(x, alpha=0.0)


def test_weighted_gram_over_the_client_app(tmp_path: Path, interactions: pl.DataFrame) -> None:
    path = tmp_path / "interactions.parquet"
    interactions.select(
        "user_id", pl.col("item_id").str.slice(1).cast(pl.Int64).alias("item_index"), "weight"
    ).write_parquet(path)
    cfg = TaskConfig(num_items=NUM_ITEMS, num_clients=3, seed=7)
    with serverapp_identity():
        result = collect_gram(
            InProcessGrid(client_app, node_contexts(path, cfg)), NUM_ITEMS, 3, alpha=ALPHA
        )
        plain = collect_gram(InProcessGrid(client_app, node_contexts(path, cfg)), NUM_ITEMS, 3)
    x = _dense(interactions)
    np.testing.assert_allclose(result.gram, _weighted_gram(x, ALPHA), rtol=1e-6)
    np.testing.assert_array_equal(result.item_counts, x.sum(axis=0))
    np.testing.assert_array_equal(result.item_degrees, (x > 0).sum(axis=0))
    assert (result.alpha, result.num_users, result.clients) == (ALPHA, NUM_USERS, 3)
    # Without alpha the reply is today's XᵀX (federated EASE), with no degrees.
    np.testing.assert_array_equal(plain.gram, x.T @ x)
    assert plain.alpha is None and plain.item_degrees is None


@pytest.mark.parametrize(
    ("alpha", "beta", "topk", "normalize"), [(ALPHA, BETA, 8, False), (1.3, 0.2, 300, True)]
)
def test_federated_rp3beta_equals_rp3beta(
    interactions: pl.DataFrame, alpha: float, beta: float, topk: int, normalize: bool
) -> None:
    params = {"alpha": alpha, "beta": beta, "topk": topk, "normalize": normalize}
    central = RP3betaRecommender(**params).fit(interactions)
    federated = create("federated-rp3beta", num_clients=3, **params).fit(interactions)
    assert isinstance(federated, FederatedRP3betaRecommender)
    assert federated.weights.nnz == central.weights.nnz
    np.testing.assert_allclose(
        federated.weights.toarray(), central.weights.toarray(), rtol=1e-6, atol=1e-9
    )
    users = sorted(set(interactions["user_id"]))
    assert (
        federated.recommend(users, k=10)
        .select("user_id", "item_id", "rank")
        .equals(central.recommend(users, k=10).select("user_id", "item_id", "rank"))
    )
    history, weights = ["i01", "i02", "i03"], [2.0, 1.0, 5.0]
    items = sorted(set(interactions["item_id"]))
    np.testing.assert_allclose(
        federated.score_history(history, weights, items),
        central.score_history(history, weights, items),
        rtol=1e-6,
    )


def test_a_client_that_ignores_alpha_stops_the_fit(
    interactions: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client answering with the plain ``XᵀX`` (no degrees) would give a different model."""
    import models.federated.client_app as client_module
    from models.federated.gram import gram_reply

    monkeypatch.setattr(
        client_module, "gram_reply", lambda h, p, n, alpha=None: gram_reply(h, p, n)
    )
    with pytest.raises(FederationError, match="sent no item degrees"):
        create("federated-rp3beta", alpha=ALPHA, num_clients=2).fit(interactions)


def _members(prefix: str) -> list[dict]:
    return [
        {"model": f"{prefix}ease", "params": {"l2": 5.0}, "weight": 0.1},
        {
            "model": f"{prefix}rp3beta",
            "params": {"alpha": ALPHA, "beta": BETA, "topk": 10},
            "weight": 0.8,
        },
        {**CONTENT_MEMBER, "weight": 0.1},
    ]


def test_federated_ensemble_equals_the_centralized_one(
    interactions: pl.DataFrame, item_features: pl.DataFrame, tmp_path: Path
) -> None:
    central = EnsembleRecommender(_members("")).fit(interactions, item_features)
    federated = create("ensemble", members=_members("federated-")).fit(interactions, item_features)
    users = sorted(set(interactions["user_id"]))
    items = sorted(set(interactions["item_id"]))
    np.testing.assert_allclose(
        federated.score_users(users, items), central.score_users(users, items), atol=1e-5
    )
    expected = central.recommend(users, k=10)
    assert (
        federated.recommend(users, k=10)
        .select("user_id", "item_id")
        .equals(expected.select("user_id", "item_id"))
    )

    federated.save(tmp_path / "ensemble")
    loaded = load_model(tmp_path / "ensemble")
    assert isinstance(loaded, EnsembleRecommender)
    assert [type(m).__name__ for m in loaded.fitted_members][:2] == [
        "FederatedEASERecommender",
        "FederatedRP3betaRecommender",
    ]
    # The reloaded content member re-normalises its float32 vectors (scores move by ~2e-6, also
    # for the centralized ensemble), so the last of the 6 rounded decimals may differ; the ranking
    # may not.
    before, after = federated.recommend(users, k=10), loaded.recommend(users, k=10)
    assert after.drop("score").equals(before.drop("score"))
    np.testing.assert_allclose(after["score"].to_numpy(), before["score"].to_numpy(), atol=1e-5)


def test_save_load_round_trip(interactions: pl.DataFrame, tmp_path: Path) -> None:
    model = create("federated-rp3beta", alpha=ALPHA, beta=BETA, topk=10, num_clients=2)
    model.fit(interactions).save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, FederatedRP3betaRecommender)
    assert loaded.params == {
        "alpha": ALPHA,
        "beta": BETA,
        "topk": 10,
        "normalize": False,
        "seed": 42,
        "num_clients": 2,
    }
    users = sorted(set(interactions["user_id"]))
    assert loaded.recommend(users, k=5).equals(model.recommend(users, k=5))
    assert (loaded.weights != model.weights).nnz == 0
    with pytest.raises(ModelFileError, match="federated-rp3beta"):
        RP3betaRecommender.load(tmp_path / "model")
