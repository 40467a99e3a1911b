"""Plain-torch task functions: config casting, local training, DP clipping/noise, weights."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from models.evaluation.metrics import ndcg_at_k
from models.federated.config import FederatedConfigError, TaskConfig
from models.federated.noise import AccountantState
from models.federated.task import (
    build_model,
    evaluate_local,
    get_weights,
    multinomial_loss,
    ranking_frames,
    record_to_weights,
    score_histories,
    set_weights,
    train_local,
    weights_to_record,
)


def _blocks(rng: np.random.Generator, users: int = 24, items: int = 12) -> np.ndarray:
    """Users in 3 taste blocks of 4 items each; every user has 3 of their block's items."""
    x = np.zeros((users, items), dtype=np.float32)
    for u in range(users):
        block = u % 3
        x[u, block * 4 + rng.choice(4, size=3, replace=False)] = 1.0
    return x


def _loss(weights: dict[str, np.ndarray], x: np.ndarray, cfg: TaskConfig) -> float:
    logits = torch.from_numpy(score_histories(weights, x, cfg))
    return float(multinomial_loss(logits, torch.from_numpy(x)))


def test_run_config_is_cast_once_from_kebab_case() -> None:
    cfg = TaskConfig.from_run_config(
        {
            "num-items": 12,
            "embedding-dim": 8,
            "dp": True,
            "target-epsilon": 2,
            "noise-multiplier": -1.0,
        }
    )
    assert (cfg.num_items, cfg.embedding_dim, cfg.dp, cfg.target_epsilon) == (12, 8, True, 2.0)
    assert cfg.noise_multiplier is None  # negative means "calibrate"
    with pytest.raises(FederatedConfigError, match="num-items"):
        TaskConfig.from_run_config({"embedding-dim": 8})
    with pytest.raises(FederatedConfigError, match="'dp'"):
        TaskConfig.from_run_config({"num-items": 12, "dp": "yes"})
    with pytest.raises(FederatedConfigError, match="'rounds'"):
        TaskConfig.from_run_config({"num-items": 12, "rounds": 2.5})


def test_local_training_reduces_loss(rng: np.random.Generator) -> None:
    x = _blocks(rng)
    cfg = TaskConfig(
        num_items=12,
        embedding_dim=8,
        dropout=0.0,
        learning_rate=0.05,
        local_epochs=20,
        batch_size=8,
    )
    start = get_weights(build_model(cfg))
    result = train_local(start, x, cfg, round_seed=1)
    assert result.num_examples == 24 and result.epsilon == 0.0
    assert _loss(result.weights, x, cfg) < 0.8 * _loss(start, x, cfg)
    # it learned the blocks: for a user of block 0, unseen block-0 items outrank other blocks
    scores = score_histories(result.weights, x[:1], cfg)[0]
    unseen_block = [i for i in range(4) if x[0, i] == 0]
    assert scores[unseen_block].min() > scores[4:].max()


def _dp_cfg(noise: float) -> TaskConfig:
    return TaskConfig(
        num_items=12,
        embedding_dim=8,
        dropout=0.0,
        learning_rate=0.5,
        optimizer="sgd",
        local_epochs=1,
        batch_size=64,  # >= users: sample rate 1, every user in the (single) batch
        dp=True,
        max_grad_norm=0.01,
        noise_multiplier=noise,
    )


def _update_norm(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before)))


def test_dp_step_clips_per_user_gradients(rng: np.random.Generator) -> None:
    x = _blocks(rng)
    plain = TaskConfig(**{**vars(_dp_cfg(0.0)), "dp": False})
    start = get_weights(build_model(plain))
    unclipped = _update_norm(start, train_local(start, x, plain, round_seed=3).weights)
    clipped = train_local(start, x, _dp_cfg(1e-9), round_seed=3, accountant=AccountantState())
    # one SGD step of the mean of per-user gradients each clipped to 0.01: norm <= lr * 0.01
    assert _update_norm(start, clipped.weights) <= 0.5 * 0.01 * 1.001
    assert unclipped > 10 * 0.5 * 0.01


def test_dp_step_adds_calibrated_noise(rng: np.random.Generator) -> None:
    x = _blocks(rng)
    cfg = _dp_cfg(1.0)
    start = get_weights(build_model(cfg))
    a = train_local(start, x, cfg, round_seed=1, accountant=AccountantState())
    b = train_local(start, x, cfg, round_seed=2, accountant=AccountantState())
    diff = _update_norm(a.weights, b.weights)
    n_params = sum(v.size for v in start.values())
    # difference of two noise draws: std lr * sigma * C / B * sqrt(2) per coordinate
    expected = 0.5 * 1.0 * 0.01 / 24 * np.sqrt(2 * n_params)
    assert 0.7 * expected < diff < 1.3 * expected
    assert a.epsilon > 0 and a.noise_multiplier == 1.0 and a.sample_rate == 1.0


def test_weights_round_trip_without_opacus_prefix(rng: np.random.Generator) -> None:
    x = _blocks(rng)
    cfg = _dp_cfg(1.0)
    start = get_weights(build_model(cfg))
    out = train_local(start, x, cfg, round_seed=1, accountant=AccountantState()).weights
    assert (
        set(out)
        == set(start)
        == {"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"}
    )
    fresh = build_model(cfg)
    set_weights(fresh, out)  # strict load: fails on "_module." keys
    back = record_to_weights(weights_to_record(get_weights(fresh)))
    for key, value in out.items():
        np.testing.assert_array_equal(back[key], value)


def test_shape_mismatch_is_a_clear_error() -> None:
    cfg = TaskConfig(num_items=12, embedding_dim=8)
    with pytest.raises(ValueError, match=r"users x 12"):
        train_local(get_weights(build_model(cfg)), np.ones((3, 5), np.float32), cfg, round_seed=0)


def test_ndcg_hand_checked() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    seen = np.array([[1, 0, 0, 0], [0, 0, 0, 0]])
    held = np.array([[0, 0, 1, 0], [0, 0, 0, 0]])  # second user has no truth: skipped
    recs, truth = ranking_frames(scores, seen, held, k=3)
    # user 0 ranking (item 0 excluded): 1, 3, 2 -> relevant item at rank 3
    assert recs.filter(pl.col("user_id") == 0)["item_id"].to_list() == [1, 3, 2]
    assert recs.filter(pl.col("user_id") == 1)["item_id"].to_list() == [3, 2, 1]
    assert ndcg_at_k(recs, truth, k=3) == pytest.approx(1 / np.log2(4))


def test_evaluate_local_scores_heldout_with_the_shared_metric() -> None:
    cfg = TaskConfig(num_items=4, content_dim=2)
    weights = get_weights(build_model(cfg))
    weights["decoder.bias"] = np.array([4.0, 3.0, 2.0, 1.0], np.float32)  # rank by bias
    train = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], np.float32)
    held = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], np.float32)
    loss, ndcg, users = evaluate_local(weights, train, held, cfg, k=3)
    assert users == 2  # the third user has nothing held out
    # user 0: ranking 1, 2, 3 -> hit at rank 2; user 1: 0, 1, 2 -> hit at rank 2
    assert ndcg == pytest.approx(1 / np.log2(3))
    assert np.isfinite(loss) and loss > 0


def test_bias_only_round_and_frozen_encoder_train_only_their_parameters(
    rng: np.random.Generator,
) -> None:
    x = _blocks(rng)
    cfg = TaskConfig(**{**vars(_dp_cfg(1.0)), "freeze_encoder": True})
    start = get_weights(build_model(cfg))
    assert not start["decoder.weight"].any()  # frozen-encoder mode starts from uniform scores
    bias_only = train_local(
        start, x, cfg, round_seed=1, accountant=AccountantState(), bias_only=True
    )
    changed = {k for k in start if not np.array_equal(start[k], bias_only.weights[k])}
    assert changed == {"decoder.bias"}
    full = train_local(start, x, cfg, round_seed=1, accountant=AccountantState())
    changed = {k for k in start if not np.array_equal(start[k], full.weights[k])}
    assert changed == {"decoder.weight", "decoder.bias"}
    with pytest.raises(FederatedConfigError, match="optimizer"):
        train_local(
            start,
            x,
            TaskConfig(**{**vars(cfg), "optimizer": "rmsprop"}),
            round_seed=1,
            accountant=AccountantState(),
        )
