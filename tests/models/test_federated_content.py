"""DP popularity rounds (additive, candidate re-count), the content model and its public vectors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.federated.config import TaskConfig
from models.federated.content import (
    PRIOR_SCALE,
    PUBLIC_POPULARITY,
    ContentFeatureError,
    load_item_vectors,
    public_item_vectors,
    public_popularity_prior,
    with_public_popularity,
)
from models.federated.noise import AccountantState
from models.federated.task import (
    build_model,
    get_weights,
    round_plan,
    score_histories,
    select_candidates,
    train_local,
)


def _popular(rng: np.random.Generator, users: int = 60, items: int = 12) -> np.ndarray:
    """Item i is held by a share of users decreasing with i (item 0 most popular)."""
    share = np.linspace(0.9, 0.05, items)
    return (rng.random((users, items)) < share).astype(np.float32)


def _bias_cfg(**kw: object) -> TaskConfig:
    base = dict(
        num_items=12,
        dp=True,
        batch_size=10_000,
        rounds=2,
        bias_rounds=2,
        bias_local_epochs=1,
        bias_learning_rate=10.0,
        freeze_encoder=True,
        embedding_dim=4,
        dropout=0.0,
        noise_multiplier=1e-6,
    )
    return TaskConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_bias_round_is_a_fresh_count_added_to_the_received_bias(
    rng: np.random.Generator,
) -> None:
    x = _popular(rng)
    cfg = _bias_cfg()
    start = get_weights(build_model(cfg))
    start["decoder.bias"] = np.full(12, 3.0, dtype=np.float32)
    out = train_local(start, x, cfg, round_seed=1, accountant=AccountantState(), bias_only=True)
    estimate = out.weights["decoder.bias"] - 3.0
    # starting from uniform, one step ranks items by their (normalised) counts
    counts = (x / np.linalg.norm(x, axis=1, keepdims=True)).sum(axis=0)
    assert np.corrcoef(estimate, counts)[0, 1] > 0.99
    changed = {k for k in start if not np.array_equal(start[k], out.weights[k])}
    assert changed == {"decoder.bias"}


def test_candidate_round_recounts_only_the_top_items(rng: np.random.Generator) -> None:
    x = _popular(rng)
    cfg = _bias_cfg(candidate_items=4, noise_multiplier=50.0)
    start = get_weights(build_model(cfg))
    received = np.array([5, 9, 1, 8, 2, 7, 0, 3, 4, 6, 10, 11], dtype=np.float32)
    start["decoder.bias"] = received
    assert round_plan(start, cfg, 1) == (True, None)  # round 1 counts the whole catalogue
    bias_only, candidates = round_plan(start, cfg, 2)
    assert bias_only and len(candidates) == cfg.candidate_items
    np.testing.assert_array_equal(candidates, [1, 3, 10, 11])  # top-4 received bias
    np.testing.assert_array_equal(select_candidates(start, cfg), candidates)
    out = train_local(
        start,
        x,
        cfg,
        round_seed=3,
        accountant=AccountantState(),
        bias_only=True,
        candidates=candidates,
    ).weights["decoder.bias"]
    rest = np.setdiff1d(np.arange(12), candidates)
    # huge noise, yet none reaches the other items: they keep their order, below every candidate
    assert out[rest].max() <= out[candidates].min()
    np.testing.assert_allclose(out[rest] - out[rest].max(), received[rest] - received[rest].max())
    with pytest.raises(ValueError, match="bias-only"):
        train_local(start, x, cfg, round_seed=3, accountant=AccountantState(), candidates=rest)


def _content_setup(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, TaskConfig]:
    """Two taste groups over 12 items; public vectors put items 0-5 and 6-11 in two directions."""
    x = np.zeros((40, 12), dtype=np.float32)
    for u in range(40):
        group = u % 2
        x[u, group * 6 + rng.choice(6, size=3, replace=False)] = 1.0
    vectors = np.zeros((12, 2), dtype=np.float32)
    vectors[:6, 0] = 1.0
    vectors[6:, 1] = 1.0
    cfg = TaskConfig(
        num_items=12,
        content_dim=2,
        dp=True,
        batch_size=10_000,
        rounds=1,
        local_epochs=20,
        optimizer="adam",
        learning_rate=0.3,
        noise_multiplier=0.5,
        max_grad_norm=1.0,
    )
    return x, vectors, cfg


def test_content_model_learns_only_the_similarity_weight(rng: np.random.Generator) -> None:
    x, vectors, cfg = _content_setup(rng)
    start = get_weights(build_model(cfg))
    assert set(start) == {"scale.weight", "mixing.weight", "decoder.weight", "decoder.bias"}
    start["decoder.weight"] = vectors
    result = train_local(start, x, cfg, round_seed=5, accountant=AccountantState())
    changed = {k for k in start if not np.array_equal(start[k], result.weights[k])}
    assert changed == {"scale.weight", "decoder.bias"}  # public vectors never move
    assert result.weights["scale.weight"].item() > 0.5 and result.epsilon > 0
    # a group-0 user now scores unseen group-0 items above every group-1 item
    scores = score_histories(result.weights, x[:1], cfg)[0]
    unseen = [i for i in range(6) if x[0, i] == 0]
    assert scores[unseen].min() > scores[6:].max()
    # an empty history scores by the bias alone
    empty = score_histories(result.weights, np.zeros((1, 12), np.float32), cfg)[0]
    np.testing.assert_allclose(empty, result.weights["decoder.bias"], rtol=1e-6)


def test_public_item_vectors_align_and_reduce() -> None:
    rng = np.random.default_rng(0)
    features = pl.DataFrame(
        {"item_id": ["a", "b", "c", "d", "zz"], "vector": rng.normal(size=(5, 6)).tolist()}
    )
    out = public_item_vectors(features, ["a", "b", "c", "d", "new"], dim=3)
    assert out.shape == (5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[:4], axis=1), 1.0, rtol=1e-5)
    assert not out[4].any()  # no features: zero vector
    again = public_item_vectors(features.reverse(), ["a", "b", "c", "d", "new"], dim=3)
    np.testing.assert_allclose(np.abs(again), np.abs(out), atol=1e-5)  # row order irrelevant


@pytest.mark.parametrize(
    "frame,match",
    [
        (pl.DataFrame({"item_id": ["a"]}), "missing columns"),
        (pl.DataFrame({"item_id": ["a", "a"], "vector": [[1.0, 0.0], [0.0, 1.0]]}), "row 1"),
        (pl.DataFrame({"item_id": ["a", "b"], "vector": [[1.0, 0.0], [1.0]]}), "row 1"),
        (pl.DataFrame({"item_id": ["q"], "vector": [[1.0, 0.0]]}), "none of the"),
    ],
)
def test_bad_item_features_raise_typed_errors(frame: pl.DataFrame, match: str) -> None:
    with pytest.raises(ContentFeatureError, match=match):
        public_item_vectors(frame, ["a", "b"], dim=2)


def test_item_vectors_file_is_checked(tmp_path) -> None:
    path = tmp_path / "vectors.npy"
    np.save(path, np.ones((4, 2), dtype=np.float32))
    assert load_item_vectors(path, 4, 2).shape == (4, 2)
    with pytest.raises(ContentFeatureError, match=r"vectors\.npy: shape"):
        load_item_vectors(path, 5, 2)
    with pytest.raises(ContentFeatureError, match="not found"):
        load_item_vectors(tmp_path / "missing.npy", 4, 2)


def test_dp_recommender_uses_public_features_when_given(tmp_path, rng) -> None:
    from models.registry import create, load_model

    rows = [
        (f"u{u}", f"item-{(u % 2) * 6 + i}")
        for u in range(40)
        for i in rng.choice(6, size=3, replace=False)
    ]
    df = pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")
    features = pl.DataFrame(
        {
            "item_id": [f"item-{i}" for i in range(12)],
            "vector": [[1.0, 0.0, 0.1 * i] if i < 6 else [0.0, 1.0, 0.1 * i] for i in range(12)],
        }
    )
    model = create("federated-dp", num_clients=2, seed=3, show_progress=False)
    model.fit(df, item_features=features)
    assert model.params["content_dim"] == 2  # 3 features, but centred rank 2
    assert model.params["rounds"] == 3 and "scale.weight" in model.weights  # 2 bias + 1 content
    assert model.params["local_epochs"] == 10 and model.params["bias_budget"] == 0.95
    assert 0 < model.privacy_report()["epsilon"] <= 1.0
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.score("u0", ["item-1"]), model.score("u0", ["item-1"]))
    plain = create("federated-dp", num_clients=2, seed=3, show_progress=False).fit(df)
    assert plain.params["content_dim"] == 0 and plain.params["rounds"] == 2
    with pytest.raises(ValueError, match="needs item_features"):
        create("federated-dp", content_dim=8, show_progress=False).fit(df)


def test_public_popularity_prior_orders_known_items_above_unknown_ones() -> None:
    features = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "vector": [[1.0, 0.0]] * 4,
            PUBLIC_POPULARITY: [10.0, 1000.0, None, 0.0],
        }
    )
    prior = public_popularity_prior(features, ["a", "b", "c", "d", "e"])
    assert prior is not None and prior.dtype == np.float32
    assert list(np.argsort(-prior, kind="stable")) == [1, 0, 3, 2, 4]  # null and absent last
    assert prior.max() == pytest.approx(PRIOR_SCALE) and prior[2] == prior[4] < prior[3]
    assert public_popularity_prior(features.drop(PUBLIC_POPULARITY), ["a"]) is None
    with pytest.raises(ContentFeatureError, match=">= 0"):
        public_popularity_prior(features.with_columns(pl.lit(-1.0).alias(PUBLIC_POPULARITY)), ["a"])
    with pytest.raises(ContentFeatureError, match="none of the"):
        public_popularity_prior(features, ["x", "y"])


def test_public_prior_restricts_already_the_first_bias_round(rng: np.random.Generator) -> None:
    cfg = _bias_cfg(rounds=1, bias_rounds=1, candidate_items=4, public_prior=True)
    start = get_weights(build_model(cfg))
    start["decoder.bias"] = np.linspace(1e-3, 0.0, 12, dtype=np.float32)[::-1].copy()
    bias_only, candidates = round_plan(start, cfg, 1)
    assert bias_only
    np.testing.assert_array_equal(candidates, [8, 9, 10, 11])  # top-4 of the public prior
    assert round_plan(start, _bias_cfg(candidate_items=4), 1) == (True, None)  # without prior


def test_dp_recommender_uses_the_public_popularity_prior_when_asked(rng) -> None:
    from models.registry import create

    rows = [
        (f"u{u}", f"item-{(u % 2) * 6 + i}")
        for u in range(40)
        for i in rng.choice(6, size=3, replace=False)
    ]
    df = pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")
    features = pl.DataFrame(
        {
            "item_id": [f"item-{i}" for i in range(12)],
            "vector": [[1.0, 0.0, 0.1 * i] if i < 6 else [0.0, 1.0, 0.1 * i] for i in range(12)],
            PUBLIC_POPULARITY: [float(100 - i) for i in range(12)],
        }
    )
    model = create(
        "federated-dp",
        num_clients=2,
        seed=3,
        show_progress=False,
        candidate_items=4,
        public_prior=True,
    )
    model.fit(df, item_features=features)
    assert model.params["public_prior"] and model.params["bias_rounds"] == 1
    assert model.params["rounds"] == 3  # one bias round, two content rounds
    assert 0 < model.privacy_report()["epsilon"] <= 1.0
    bias = model.weights["decoder.bias"]
    index = model.items.index()
    outside = [index[f"item-{i}"] for i in range(4, 12)]  # not among the prior's top 4
    # items outside the candidates keep the public order, below every candidate
    assert list(np.argsort(-bias[outside], kind="stable")) == list(range(8))
    assert bias[outside].max() <= bias[[index[f"item-{i}"] for i in range(4)]].min()
    off = create("federated-dp", num_clients=2, seed=3, show_progress=False)  # opt-in only
    assert not off.fit(df, item_features=features).params["public_prior"]
    with pytest.raises(ValueError, match="public_prior=True needs"):
        create("federated-dp", public_prior=True, show_progress=False).fit(
            df, item_features=features.drop(PUBLIC_POPULARITY)
        )


def test_catalogue_vote_counts_become_the_public_popularity_column() -> None:
    features = pl.DataFrame({"item_id": ["t1", "t2", "t3"], "vector": [[1.0, 0.0]] * 3})
    titles = pl.DataFrame(
        {"title_id": ["t2", "t1", "t9"], "vote_count": [50, None, 7], "title": ["b", "a", "z"]}
    )
    out = with_public_popularity(features, titles)
    assert out["item_id"].to_list() == ["t1", "t2", "t3"]
    assert out[PUBLIC_POPULARITY].to_list() == [None, 50.0, None]
    prior = public_popularity_prior(out, out["item_id"].to_list())
    assert prior is not None and int(np.argmax(prior)) == 1
    with pytest.raises(ContentFeatureError, match="vote_count"):
        with_public_popularity(features, titles.drop("vote_count"))
