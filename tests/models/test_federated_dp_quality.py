"""Federated-dp on real ML-100k: above the DP-popularity floor, and the same seed gives the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.evaluation.evaluate import evaluate_model
from models.evaluation.splits import stratified_split
from models.registry import create
from models.train import to_weights


def _ml100k(shared_data: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    ratings = pl.read_csv(
        shared_data / "movielens" / "ml-100k" / "u.data",
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
    ).with_columns(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
    train, test = stratified_split(ratings, ratio=0.75, seed=42, filter_by="item")
    return to_weights(train), test


@pytest.mark.realdata
@pytest.mark.slow
def test_dp_model_beats_dp_popularity_floor_and_is_reproducible(shared_data: Path) -> None:
    train, test = _ml100k(shared_data)
    a = create("federated-dp", seed=42, show_progress=False).fit(train)
    b = create("federated-dp", seed=42, show_progress=False).fit(train)
    for key, value in a.weights.items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(value, b.weights[key])  # type: ignore[attr-defined]
    report = a.privacy_report()  # type: ignore[attr-defined]
    assert 0.9 < report["epsilon"] <= 1.0 and report["delta"] == 1e-5
    assert "user" in report["privacy_unit"]
    ndcg = evaluate_model(a, train, test, k=10)["ndcg"]
    # one-shot Gaussian item counts at ε=1 (the private popularity model) score ~0.215-0.22
    assert ndcg >= 0.22
