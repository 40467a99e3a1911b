"""Flower handlers called with real Message/Context objects, aggregation, data, and the recommender."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from models.federated.client_app import PRIVACY_STATE_KEY, app
from models.federated.config import TaskConfig
from models.federated.data import FederatedDataError, assign_partitions, load_partition
from models.federated.recommender import FederatedRecommender, serverapp_identity
from models.federated.server_app import aggregate_train_metrics
from models.federated.task import build_model, get_weights, weights_to_record
from models.privacy.accounting import compute_epsilon
from models.registry import create, load_model

NUM_ITEMS = 12
RUN = {
    "num-items": NUM_ITEMS,
    "embedding-dim": 8,
    "dropout": 0.0,
    "batch-size": 8,
    "local-epochs": 2,
    "rounds": 3,
    "num-clients": 2,
    "dp": True,
    "target-epsilon": 1.0,
    "target-delta": 1e-5,
    "noise-multiplier": -1.0,
    "seed": 7,
}


@pytest.fixture
def data_path(tmp_path: Path, rng: np.random.Generator) -> Path:
    rows = [
        (f"user-{u}", int((u % 3) * 4 + i))
        for u in range(30)
        for i in rng.choice(4, size=3, replace=False)
    ]
    path = tmp_path / "interactions.parquet"
    pl.DataFrame(rows, schema=["user_id", "item_index"], orient="row").write_parquet(path)
    return path


def _context(path: Path, partition: int = 0, **run: object) -> Context:
    return Context(
        run_id=1,
        node_id=partition + 1,
        node_config={"partition-id": partition, "num-partitions": 2, "data-path": str(path)},
        state=RecordDict(),
        run_config={**RUN, **run},
    )


def _train_message(server_round: int, node: int = 1) -> Message:
    weights = get_weights(build_model(TaskConfig.from_run_config(RUN)))
    content = RecordDict(
        {
            "arrays": weights_to_record(weights),
            "config": ConfigRecord({"server-round": server_round}),
        }
    )
    with serverapp_identity():
        msg = Message(content, node, "train")
    return msg


def test_train_handler_replies_item_arrays_and_privacy_metrics(data_path: Path) -> None:
    ctx = _context(data_path)
    reply = app(_train_message(1), ctx)
    assert not reply.has_error()
    arrays = reply.content.array_records["arrays"]
    assert set(arrays) == {"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"}
    assert arrays["decoder.weight"].numpy().shape == (NUM_ITEMS, 8)
    metrics = reply.content.metric_records["metrics"]
    assert metrics["num-examples"] == 15  # 30 users over 2 partitions
    assert 0 < metrics["epsilon"] < 1.0
    # nothing user-level leaves the client: no config records, no user ids anywhere in the reply
    assert len(reply.content.config_records) == 0
    assert "user-" not in repr(reply.content)


def test_epsilon_composes_across_rounds_through_context_state(data_path: Path) -> None:
    ctx = _context(data_path)
    eps = [app(_train_message(r), ctx).content["metrics"]["epsilon"] for r in (1, 2, 3)]
    assert eps[0] < eps[1] < eps[2] <= 1.0 + 1e-9
    assert eps[2] > 0.9  # calibrated for the 3 rounds: the budget is (nearly) all spent
    saved = ctx.state.config_records[PRIVACY_STATE_KEY]
    sigma, rate = saved["noise"][0], saved["rate"][0]
    assert sum(saved["steps"]) == 3 * 2 * 2  # rounds x local epochs x ceil(15 users / 8)
    assert eps[2] == pytest.approx(compute_epsilon(sigma, rate, sum(saved["steps"]), 1e-5))
    # a client recreated with a fresh state would restart at round-1 ε: the state is what composes
    fresh = app(_train_message(4), _context(data_path)).content["metrics"]["epsilon"]
    assert fresh == pytest.approx(eps[0])


def test_evaluate_handler_needs_a_validation_split(data_path: Path) -> None:
    weights = get_weights(build_model(TaskConfig.from_run_config(RUN)))
    content = RecordDict({"arrays": weights_to_record(weights), "config": ConfigRecord()})
    with serverapp_identity():
        msg = Message(content, 1, "evaluate")
    reply = app(msg, _context(data_path, **{"validation-fraction": 0.34}))
    metrics = reply.content.metric_records["metrics"]
    assert metrics["num-examples"] == 15 and 0.0 <= metrics["ndcg-at-10"] <= 1.0
    with pytest.raises(FederatedDataError, match="validation-fraction"):
        app(msg, _context(data_path))


def test_missing_partition_config_is_a_clear_error(data_path: Path) -> None:
    ctx = _context(data_path)
    ctx.node_config = {"data-path": str(data_path)}
    with pytest.raises(FederatedDataError, match="partition-id"):
        app(_train_message(1), ctx)


def test_train_metrics_aggregate_max_epsilon_and_weighted_loss() -> None:
    def rec(n: int, loss: float, eps: float) -> RecordDict:
        return RecordDict(
            {
                "arrays": ArrayRecord(),
                "metrics": MetricRecord(
                    {
                        "num-examples": n,
                        "train-loss": loss,
                        "epsilon": eps,
                        "noise-multiplier": 2.0,
                        "sample-rate": 0.5,
                        "local-steps": 4,
                    }
                ),
            }
        )

    out = aggregate_train_metrics([rec(10, 1.0, 0.5), rec(30, 3.0, 0.8)], "num-examples")
    assert out["epsilon"] == 0.8 and out["num-examples"] == 40
    assert out["train-loss"] == pytest.approx(2.5)


def test_partitions_are_disjoint_and_cover_all_users() -> None:
    users = [f"u{i}" for i in range(11)]
    parts = assign_partitions(users + users[:3], 3, seed=1)
    assert set(parts) == set(users) and set(parts.values()) == {0, 1, 2}
    assert parts == assign_partitions(list(reversed(users)), 3, seed=1)
    with pytest.raises(FederatedDataError, match="cannot fill"):
        assign_partitions(["a"], 2, seed=1)


def test_bad_data_file_names_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pl.DataFrame({"user_id": ["a", "b"], "item_index": [1, 99]}).write_parquet(path)
    with pytest.raises(FederatedDataError, match=r"bad\.parquet: row 1"):
        load_partition(path, partition_id=0, num_partitions=1, num_items=12, seed=0)
    with pytest.raises(FederatedDataError, match="not found"):
        load_partition(
            tmp_path / "nope.parquet", partition_id=0, num_partitions=1, num_items=12, seed=0
        )


def _interactions(rng: np.random.Generator) -> pl.DataFrame:
    rows = [
        (f"u{u}", f"item-{(u % 3) * 4 + i}")
        for u in range(36)
        for i in rng.choice(4, size=3, replace=False)
    ]
    return pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")


def test_recommender_fit_recommend_save_load(tmp_path: Path, rng: np.random.Generator) -> None:
    df = _interactions(rng)
    model = create(
        "federated-dp",
        rounds=2,
        local_epochs=2,
        num_clients=2,
        embedding_dim=8,
        batch_size=8,
        show_progress=False,
        seed=3,
    )
    assert isinstance(model, FederatedRecommender)
    model.fit(df)
    report = model.privacy_report()
    assert set(report) >= {
        "epsilon",
        "delta",
        "privacy_unit",
        "accountant",
        "noise_multiplier",
        "max_grad_norm",
        "rounds",
        "sample_rate",
    }
    assert 0 < report["epsilon"] <= 1.0 and "user" in report["privacy_unit"]
    assert [r["round"] for r in model.round_history] == [1, 2]
    assert report["epsilon"] == model.round_history[-1]["epsilon"]

    recs = model.recommend(["u0", "u1"], k=3)
    assert recs.height == 6
    seen = set(df.filter(pl.col("user_id") == "u0")["item_id"])
    assert not seen & set(recs.filter(pl.col("user_id") == "u0")["item_id"])
    scores = model.score_history(["item-0", "unknown"], None, ["item-1", "nope"])
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert model.similar_items("item-0", k=2).height == 2

    model.save(tmp_path / "fed")
    loaded = load_model(tmp_path / "fed")
    assert isinstance(loaded, FederatedRecommender)
    np.testing.assert_allclose(loaded.score("u0", ["item-1"]), model.score("u0", ["item-1"]))
    assert loaded.privacy_report() == report


def test_recommender_is_seeded(rng: np.random.Generator) -> None:
    df = _interactions(rng)
    kwargs = dict(rounds=1, local_epochs=1, num_clients=2, embedding_dim=8, show_progress=False)
    a = create("federated", seed=5, **kwargs).fit(df).score("u0", ["item-1", "item-5"])
    b = create("federated", seed=5, **kwargs).fit(df).score("u0", ["item-1", "item-5"])
    np.testing.assert_array_equal(a, b)
    assert create("federated", seed=5, **kwargs).fit(df).privacy_report()["epsilon"] == float("inf")
