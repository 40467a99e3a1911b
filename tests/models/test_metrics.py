"""Hand-checked ranking metrics (each expected value is worked out in the comments)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from models.evaluation.metrics import (
    MetricInputError,
    average_recommendation_popularity,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    per_user_metrics,
    popularity_bias,
    precision_at_k,
    recall_at_k,
)

LOG2_3 = math.log2(3)


def _recs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["user_id", "item_id", "rank"], orient="row")


@pytest.fixture
def recs() -> pl.DataFrame:
    # u1: a b c d; u2: p q; u4 has recommendations but no truth (excluded); u3 has none.
    return _recs(
        [
            ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u1", "d", 4),
            ("u2", "p", 1), ("u2", "q", 2),
            ("u4", "a", 1),
        ]
    )  # fmt: skip


@pytest.fixture
def truth() -> pl.DataFrame:
    # u1 relevant {a, c, x}; u2 {q}; u3 {z} (gets no recommendations).
    return pl.DataFrame(
        {"user_id": ["u1", "u1", "u1", "u2", "u3"], "item_id": ["a", "c", "x", "q", "z"]}
    )


def test_per_user_values_at_3(recs: pl.DataFrame, truth: pl.DataFrame) -> None:
    per_user = {r["user_id"]: r for r in per_user_metrics(recs, truth, k=3).iter_rows(named=True)}
    assert set(per_user) == {"u1", "u2", "u3"}  # u4 has no truth
    u1, u2, u3 = per_user["u1"], per_user["u2"], per_user["u3"]
    # u1 top-3 = a b c, hits a@1 and c@3 out of |R| = 3.
    assert u1["precision"] == pytest.approx(2 / 3)
    assert u1["recall"] == pytest.approx(2 / 3)
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/2 (min(|R|, k) = 3 slots).
    assert u1["ndcg"] == pytest.approx(1.5 / (1.5 + 1 / LOG2_3))
    # AP = (1/1 + 2/3) / min(3, 3) = 5/9.
    assert u1["ap"] == pytest.approx(5 / 9)
    # u2 top = p q (only two returned), hit q@2, |R| = 1: precision still divides by k = 3.
    assert u2["precision"] == pytest.approx(1 / 3)
    assert u2["recall"] == pytest.approx(1.0)
    assert u2["ndcg"] == pytest.approx(1 / LOG2_3)  # DCG 1/log2(3), IDCG 1
    assert u2["ap"] == pytest.approx(1 / 2)  # (1/2) / min(1, 3)
    # u3 has truth but no recommendations: zero everywhere.
    assert (u3["hits"], u3["ndcg"], u3["precision"], u3["recall"], u3["ap"], u3["hit"]) == (
        0, 0.0, 0.0, 0.0, 0.0, 0.0,
    )  # fmt: skip


def test_means_over_users_with_truth(recs: pl.DataFrame, truth: pl.DataFrame) -> None:
    ndcg_u1 = 1.5 / (1.5 + 1 / LOG2_3)
    assert ndcg_at_k(recs, truth, 3) == pytest.approx((ndcg_u1 + 1 / LOG2_3 + 0) / 3)
    assert precision_at_k(recs, truth, 3) == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert recall_at_k(recs, truth, 3) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert map_at_k(recs, truth, 3) == pytest.approx((5 / 9 + 1 / 2 + 0) / 3)
    assert hit_rate_at_k(recs, truth, 3) == pytest.approx(2 / 3)


def test_truncation_at_k(recs: pl.DataFrame, truth: pl.DataFrame) -> None:
    # k = 1: u1 keeps only a (a hit: nDCG 1, AP 1/min(3,1) = 1); u2 keeps p (miss); u3 nothing.
    assert ndcg_at_k(recs, truth, 1) == pytest.approx(1 / 3)
    assert map_at_k(recs, truth, 1) == pytest.approx(1 / 3)
    assert precision_at_k(recs, truth, 1) == pytest.approx(1 / 3)
    # recall@1: u1 1/3, u2 0, u3 0.
    assert recall_at_k(recs, truth, 1) == pytest.approx(1 / 9)


def test_rank_column_decides_order_not_row_order() -> None:
    shuffled = _recs([("u", "miss", 2), ("u", "hit", 1)])
    truth = pl.DataFrame({"user_id": ["u"], "item_id": ["hit"]})
    assert ndcg_at_k(shuffled, truth, 1) == pytest.approx(1.0)


def test_duplicate_truth_and_recommendation_rows_count_once() -> None:
    recs = _recs([("u", "a", 1), ("u", "a", 2), ("u", "b", 3)])
    truth = pl.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "a"]})
    # Deduplicated list is a(1) b(2); |R| = 1: precision@2 = 1/2, recall 1, nDCG 1.
    assert precision_at_k(recs, truth, 2) == pytest.approx(0.5)
    assert recall_at_k(recs, truth, 2) == pytest.approx(1.0)
    assert ndcg_at_k(recs, truth, 2) == pytest.approx(1.0)


def test_empty_truth_gives_nan(recs: pl.DataFrame) -> None:
    empty = pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String})
    for metric in (ndcg_at_k, precision_at_k, recall_at_k, map_at_k, hit_rate_at_k):
        assert math.isnan(metric(recs, empty, 10))


def test_bad_inputs_raise(recs: pl.DataFrame, truth: pl.DataFrame) -> None:
    with pytest.raises(MetricInputError, match="k must be >= 1"):
        ndcg_at_k(recs, truth, 0)
    with pytest.raises(MetricInputError, match="rank"):
        ndcg_at_k(recs.drop("rank"), truth, 5)
    with pytest.raises(MetricInputError, match="n_items"):
        catalog_coverage(recs, 0)


def test_coverage_and_popularity(recs: pl.DataFrame) -> None:
    # Distinct recommended items a b c d p q = 6 of 12.
    assert catalog_coverage(recs, 12) == pytest.approx(0.5)
    # Training popularity: a 3 users, b 2, c 1 -> percentile ranks 3/3, 2/3, 1/3.
    train = pl.DataFrame(
        {
            "user_id": ["x", "y", "z", "x", "y", "x", "x"],
            "item_id": ["a", "a", "a", "b", "b", "c", "c"],
        }
    )
    few = _recs([("u", "a", 1), ("u", "b", 2), ("v", "z", 1)])
    # z is not in training -> 0: (1 + 2/3 + 0) / 3 rows.
    assert popularity_bias(few, train) == pytest.approx((1 + 2 / 3) / 3)
    # ARP: u mean(3, 2) = 2.5, v mean(0) = 0 -> 1.25.
    assert average_recommendation_popularity(few, train) == pytest.approx(1.25)
    assert math.isnan(popularity_bias(few.clear(), train))


# ---- evaluate_model / metrics_by_activity ----------------------------------------------------
def _toy_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    # Popularity in train: i1 (3 users), i2 (2), i3 (2), i4 (1).
    train = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "c", "d", "e"],
            "item_id": ["i1", "i2", "i1", "i2", "i1", "i3", "i4", "i3"],
        }
    ).with_columns(pl.lit(1.0).alias("weight"))
    # "new" is unknown to training and must be skipped.
    test = pl.DataFrame({"user_id": ["a", "c", "d", "new"], "item_id": ["i3", "i2", "i1", "i1"]})
    return train, test


def test_evaluate_model_on_popularity() -> None:
    from models.collaborative.popularity import PopularityRecommender
    from models.evaluation.evaluate import evaluate_model

    train, test = _toy_split()
    model = PopularityRecommender().fit(train)
    result = evaluate_model(model, train, test, k=1)
    # Top-1 unseen by popularity: a -> i3 (hit), c -> i2 (hit), d -> i1 (hit).
    assert result["ndcg"] == pytest.approx(1.0)
    assert result["precision"] == pytest.approx(1.0)
    assert (result["users_evaluated"], result["users_skipped"]) == (3.0, 1.0)
    assert result["coverage"] == pytest.approx(3 / 4)  # i1 i2 i3 of 4 training items


def test_metrics_by_activity_buckets() -> None:
    from models.collaborative.popularity import PopularityRecommender
    from models.evaluation.evaluate import metrics_by_activity

    train, test = _toy_split()
    model = PopularityRecommender().fit(train)
    frame = metrics_by_activity(model, train, test, k=1, buckets=(1, 2))
    # Test users: d has 1 training item, a and c have 2; nobody has more.
    assert frame["bucket"].to_list() == ["1-1", "2-2", ">2"]
    assert frame["users"].to_list() == [1, 2, 0]
    assert frame["ndcg"][0] == pytest.approx(1.0) and math.isnan(frame["ndcg"][2])
    with pytest.raises(ValueError, match="increasing"):
        metrics_by_activity(model, train, test, buckets=(5, 5))


def test_evaluation_refuses_models_fitted_on_other_data() -> None:
    from models.collaborative.popularity import PopularityRecommender
    from models.evaluation.evaluate import EvaluationError, evaluate_model

    train, test = _toy_split()
    # Fitted without a's i1, so the model may recommend i1 to a although it is in `train`.
    model = PopularityRecommender().fit(
        train.filter(~((pl.col("user_id") == "a") & (pl.col("item_id") == "i1")))
    )
    with pytest.raises(EvaluationError, match="training items"):
        evaluate_model(model, train, test, k=3)
