"""The stratified split reproduces Microsoft Recommenders' splitter row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.evaluation.splits import SplitError, stratified_split, temporal_split


def _frame(rng: np.random.Generator, n: int = 600) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": np.arange(n),
            "user_id": rng.integers(0, 40, n).astype(str),
            "item_id": rng.integers(0, 60, n).astype(str),
            "rating": rng.integers(1, 6, n).astype(float),
            "timestamp": rng.integers(0, 1_000, n),
        }
    )


def _microsoft_reference(df: pl.DataFrame, ratio: float, seed: int, col: str) -> set[int]:
    """Their ``_do_stratification(is_random=True)`` transcribed in pandas; returns train rows."""
    data = df.to_pandas()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values([col, "random"])
    groups = data.groupby(col)
    data["count"] = groups[col].transform("count")
    data["rank"] = groups.cumcount() + 1
    train = data[data["rank"] <= round(ratio * data["count"])]
    assert isinstance(train, pd.DataFrame)
    return set(train["row"].tolist())


@pytest.mark.parametrize(("filter_by", "col"), [("item", "item_id"), ("user", "user_id")])
def test_matches_microsoft_row_for_row(rng, filter_by: str, col: str) -> None:
    df = _frame(rng)
    train, test = stratified_split(df, ratio=0.75, seed=42, filter_by=filter_by)
    assert set(train["row"]) == _microsoft_reference(df, 0.75, 42, col)
    assert set(train["row"]).isdisjoint(set(test["row"]))
    assert train.height + test.height == df.height
    assert train.columns == df.columns


def test_group_sizes_round_half_to_even() -> None:
    # Item g has n rows; train keeps round_half_even(0.75 n): 1->1, 2->2 (1.5), 3->2 (2.25),
    # 4->3, 5->4 (3.75), 6->4 (4.5), 8->6.
    sizes = {"g1": 1, "g2": 2, "g3": 3, "g4": 4, "g5": 5, "g6": 6, "g8": 8}
    rows = [(f"u{n}", item) for item, size in sizes.items() for n in range(size)]
    df = pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")
    train, _ = stratified_split(df, ratio=0.75, seed=1)
    counts = dict(train.group_by("item_id").len().iter_rows())
    assert counts == {"g1": 1, "g2": 2, "g3": 2, "g4": 3, "g5": 4, "g6": 4, "g8": 6}


def test_seed_is_deterministic_and_matters(rng) -> None:
    df = _frame(rng)
    first, _ = stratified_split(df, seed=42)
    again, _ = stratified_split(df, seed=42)
    other, _ = stratified_split(df, seed=7)
    assert first.equals(again)
    assert not first.equals(other)


def test_min_rating_drops_small_groups() -> None:
    df = pl.DataFrame({"user_id": ["a", "b", "c", "a"], "item_id": ["x", "x", "x", "y"]})
    train, test = stratified_split(df, min_rating=2, filter_by="item")
    assert set(pl.concat([train, test])["item_id"]) == {"x"}


def test_bad_arguments_raise(rng) -> None:
    df = _frame(rng)
    with pytest.raises(SplitError, match="ratio"):
        stratified_split(df, ratio=1.0)
    with pytest.raises(SplitError, match="filter_by"):
        stratified_split(df, filter_by="title")  # type: ignore[arg-type]
    with pytest.raises(SplitError, match="missing columns"):
        stratified_split(df.drop("item_id"))
    with pytest.raises(SplitError, match="timestamp"):
        temporal_split(df.drop("timestamp"))


def test_temporal_split_keeps_each_users_oldest_share() -> None:
    df = pl.DataFrame(
        {
            "user_id": ["a"] * 4 + ["b"] * 2,
            "item_id": ["i1", "i2", "i3", "i4", "j1", "j2"],
            "timestamp": [40, 10, 30, 20, 5, 5],
        }
    )
    train, test = temporal_split(df, ratio=0.75)
    # a: 4 rows -> 3 oldest (10, 20, 30) train, 40 test. b: 2 rows -> round(1.5) = 2, both train;
    # equal timestamps keep input order.
    assert sorted(train.filter(pl.col("user_id") == "a")["item_id"]) == ["i2", "i3", "i4"]
    assert test["item_id"].to_list() == ["i1"]
    assert train.filter(pl.col("user_id") == "b")["item_id"].to_list() == ["j1", "j2"]


@pytest.mark.realdata
@pytest.mark.slow
def test_ml100k_protocol_reproduces_published_anchors(shared_data) -> None:
    """Popularity and EASE on the Microsoft protocol land on the anchors measured by others."""
    from models.evaluation.evaluate import evaluate_model
    from models.registry import create

    ratings = pl.read_csv(
        shared_data / "movielens" / "ml-100k" / "u.data",
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
        schema_overrides={"user_id": pl.String, "item_id": pl.String},
    )
    train, test = stratified_split(ratings, ratio=0.75, seed=42, filter_by="item")
    assert (train.height, test.height) == (75066, 24933)
    train = train.select("user_id", "item_id").with_columns(pl.lit(1.0).alias("weight"))
    popularity = evaluate_model(create("popularity").fit(train), train, test, k=10)
    assert popularity["ndcg"] == pytest.approx(0.250, abs=0.01)
    ease = evaluate_model(create("ease").fit(train), train, test, k=10)
    assert ease["ndcg"] == pytest.approx(0.482, abs=0.01)
