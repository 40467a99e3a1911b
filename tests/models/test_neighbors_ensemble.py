"""RP3beta, ItemKNN and the ensemble against brute-force references on small random data, plus
the benchmark's tuning helpers (validation split carved from train only, λ scaling, weight grid)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest

from models.collaborative.ensemble import EnsembleRecommender, standardise
from models.collaborative.neighbors import ItemKNNRecommender, RP3betaRecommender, top_k_rows
from models.registry import create


def _load_tuning() -> ModuleType:
    """benchmarks/ is a script folder, not a package; putting it on sys.path would shadow the
    ``serving`` package with ``benchmarks/serving.py``, so the module is loaded from its file."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_tuning.py"
    spec = importlib.util.spec_from_file_location("benchmarks_tuning", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_tuning = _load_tuning()


def _random_frame(users: int = 30, items: int = 25, density: float = 0.3) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    dense = rng.random((users, items)) < density
    dense[np.arange(users), np.arange(users) % items] = True  # every user and item appears
    dense[np.arange(items) % users, np.arange(items)] = True
    u, i = np.nonzero(dense)
    return pl.DataFrame(
        {
            "user_id": [f"u{x:03d}" for x in u],
            "item_id": [f"i{x:03d}" for x in i],
            "weight": np.ones(len(u)),
        }
    )


def _dense(model) -> tuple[np.ndarray, np.ndarray]:
    return model.data.matrix.toarray().astype(np.float64), model.weights.toarray()


def _prune(full: np.ndarray, topk: int) -> np.ndarray:
    full = full.copy()
    np.fill_diagonal(full, 0.0)
    out = np.zeros_like(full)
    for r, row in enumerate(full):
        keep = np.argsort(-row, kind="stable")[:topk]
        keep = keep[row[keep] > 0]
        out[r, keep] = row[keep]
    return out


def test_rp3beta_matches_the_random_walk_formula() -> None:
    model = RP3betaRecommender(alpha=0.7, beta=0.4, topk=1000).fit(_random_frame())
    x, w = _dense(model)
    p_ui = x / x.sum(axis=1, keepdims=True)
    p_iu = x.T / x.T.sum(axis=1, keepdims=True)
    expected = (p_iu**0.7) @ (p_ui**0.7) / (x.sum(axis=0) ** 0.4)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)


def test_top_k_pruning_keeps_the_largest_entries_per_row() -> None:
    model = RP3betaRecommender(alpha=1.0, beta=0.0, topk=4).fit(_random_frame())
    unpruned = RP3betaRecommender(alpha=1.0, beta=0.0, topk=1000).fit(_random_frame())
    _, w = _dense(model)
    _, full = _dense(unpruned)
    assert ((w > 0).sum(axis=1) <= 4).all()
    kept = w > 0
    np.testing.assert_allclose(w[kept], full[kept], rtol=1e-6)  # kept entries are unchanged
    # the kept values are the 4 largest of each row (which of several tied entries is free)
    expected = _prune(full, 4)
    np.testing.assert_allclose(np.sort(w, axis=1), np.sort(expected, axis=1), rtol=1e-6)


def test_top_k_rows_zeroes_the_diagonal_of_an_offset_block() -> None:
    block = np.array([[5.0, 1.0, 2.0, 3.0], [4.0, 9.0, 1.0, 0.0]])
    pruned = top_k_rows(block, first_row=2, topk=2).toarray()
    np.testing.assert_array_equal(pruned, [[5.0, 0, 0, 3.0], [4.0, 9.0, 0, 0]])


def test_itemknn_is_shrunk_cosine() -> None:
    model = ItemKNNRecommender(topk=1000, shrink=5.0).fit(_random_frame())
    x, w = _dense(model)
    norms = np.linalg.norm(x, axis=0)
    expected = (x.T @ x) / (norms[:, None] * norms[None, :] + 5.0)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0}, {"beta": -0.1}, {"topk": 0}],
)
def test_rp3beta_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RP3betaRecommender(**kwargs)


def test_standardise_uses_unseen_finite_entries_only() -> None:
    scores = np.array([[100.0, 1.0, 2.0, 3.0, np.nan]])
    seen = np.array([[True, False, False, False, False]])
    out = standardise(scores, seen)
    np.testing.assert_allclose(out[0, 1:4], [-1.224745, 0.0, 1.224745], rtol=1e-5)
    assert out[0, 0] == 0.0 and out[0, 4] == 0.0


def test_single_member_ensemble_ranks_like_the_member() -> None:
    frame = _random_frame()
    users = sorted(frame["user_id"].unique().to_list())
    member = create("rp3beta", alpha=0.8, beta=0.3).fit(frame)
    ensemble = EnsembleRecommender(
        [{"model": "rp3beta", "params": {"alpha": 0.8, "beta": 0.3}, "weight": 2.0}]
    ).fit(frame)
    a = member.recommend(users, k=5)
    b = ensemble.recommend(users, k=5)
    assert a.select("user_id", "item_id").equals(b.select("user_id", "item_id"))


@pytest.mark.parametrize(
    "members",
    [
        [],
        [{"model": "ease", "weight": 0.0}],
        [{"model": "ease", "weight": -1.0}],
        [{"weight": 1.0}],
        [{"model": "ensemble", "weight": 1.0}],
        [{"model": "ease", "weight": 1.0, "extra": 1}],
    ],
)
def test_ensemble_rejects_bad_members(members: list) -> None:
    with pytest.raises(ValueError):
        EnsembleRecommender(members)


def test_weight_grid_covers_the_simplex() -> None:
    grid = _tuning.weight_grid(3, step=0.1)
    assert len(grid) == 66
    assert all(abs(w.sum() - 1) < 1e-12 and (w >= 0).all() for w in grid)


def test_validation_split_is_carved_from_train_only() -> None:
    rng = np.random.default_rng(3)
    raw = pl.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 20, 400)],
            "item_id": [f"i{i}" for i in rng.integers(0, 30, 400)],
            "rating": rng.integers(1, 6, 400).astype(float),
            "timestamp": rng.integers(0, 10_000, 400),
        }
    ).unique(["user_id", "item_id"])
    for split in ("stratified", "temporal"):
        sub, val = _tuning.validation_split(raw, split, seed=42)
        pairs = set(raw.select("user_id", "item_id").iter_rows())
        sub_pairs = set(sub.select("user_id", "item_id").iter_rows())
        val_pairs = set(val.select("user_id", "item_id").iter_rows())
        assert sub_pairs | val_pairs == pairs and not sub_pairs & val_pairs
        assert set(sub["weight"].to_list()) == {1.0}


def test_full_data_params_scale_only_ease_lambda() -> None:
    assert _tuning.full_data_params("ease", {"l2": 300.0}, 4 / 3) == {"l2": 400.0}
    assert _tuning.full_data_params("rp3beta", {"alpha": 0.6}, 4 / 3) == {"alpha": 0.6}
    hybrid = _tuning._for_full("hybrid", {"base_params": {"l2": 300.0}}, 2.0)
    assert hybrid == {"base_params": {"l2": 600.0}}
