"""Evaluate a fitted recommender on a held-out split (Microsoft Recommenders protocol).

The model is asked for the top k of every test user it knows, with training items excluded
(``exclude_seen=True``); every test row is relevant. Users absent from training are skipped (they
have no history to recommend from) and counted in ``users_skipped``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

import polars as pl

from models.base import Recommender
from models.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    per_user_metrics,
    popularity_bias,
    precision_at_k,
    recall_at_k,
)

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (10, 20, 50, 100, 200)
"""Upper bounds (inclusive) of training-interaction counts for ``metrics_by_activity``."""


class EvaluationError(RuntimeError):
    """The model broke the evaluation contract (e.g. recommended an item seen in training)."""


def _ids(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))


def recommend_for_test(
    model: Recommender, train: pl.DataFrame, test: pl.DataFrame, k: int
) -> pl.DataFrame:
    """Top-k for the test users present in ``train``; raises if a training item is recommended."""
    train_ids, test_ids = _ids(train), _ids(test)
    known = set(train_ids["user_id"].unique().to_list())
    users = sorted(u for u in test_ids["user_id"].unique().to_list() if u in known)
    recs = model.recommend(users, k=k, exclude_seen=True)
    leaked = recs.join(train_ids.unique(), on=["user_id", "item_id"], how="semi")
    if leaked.height:
        row = leaked.row(0, named=True)
        raise EvaluationError(
            f"{type(model).__name__} recommended {leaked.height} training items despite "
            f"exclude_seen=True (first: user {row['user_id']!r}, item {row['item_id']!r}); "
            "was it fitted on a different frame than `train`?"
        )
    return recs


def evaluate_model(
    model: Recommender, train: pl.DataFrame, test: pl.DataFrame, k: int = 10
) -> dict[str, float]:
    """All metrics at ``k`` for a model fitted on ``train``.

    Returns ``ndcg, precision, recall, map, hit_rate`` (over test users known to the model),
    ``coverage`` (distinct recommended items / training catalogue), ``popularity_bias`` (mean
    popularity percentile of recommended items), ``users_evaluated`` and ``users_skipped``.
    """
    recs = recommend_for_test(model, train, test, k)
    test_ids = _ids(test)
    evaluated = set(recs["user_id"].unique().to_list())
    all_test_users = set(test_ids["user_id"].unique().to_list())
    known = set(_ids(train)["user_id"].unique().to_list())
    truth = test_ids.filter(pl.col("user_id").is_in(sorted(all_test_users & known)))
    n_items = _ids(train)["item_id"].n_unique()
    result = {
        "ndcg": ndcg_at_k(recs, truth, k),
        "precision": precision_at_k(recs, truth, k),
        "recall": recall_at_k(recs, truth, k),
        "map": map_at_k(recs, truth, k),
        "hit_rate": hit_rate_at_k(recs, truth, k),
        "coverage": catalog_coverage(recs, n_items) if n_items else math.nan,
        "popularity_bias": popularity_bias(recs, train),
        "users_evaluated": float(len(evaluated)),
        "users_skipped": float(len(all_test_users - known)),
    }
    log.info("evaluated %s", type(model).__name__, extra={"k": k, "ndcg": result["ndcg"]})
    return result


def _bucket_labels(buckets: Sequence[int]) -> list[str]:
    labels, low = [], 1
    for high in buckets:
        labels.append(f"{low}-{high}")
        low = high + 1
    labels.append(f">{buckets[-1]}")
    return labels


def metrics_by_activity(
    model: Recommender,
    train: pl.DataFrame,
    test: pl.DataFrame,
    k: int = 10,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
) -> pl.DataFrame:
    """nDCG@k per activity bucket: users grouped by their number of training interactions.

    ``buckets`` are increasing inclusive upper bounds; ``(10, 20)`` gives buckets ``1-10``,
    ``11-20`` and ``>20``. Returns ``bucket, min_interactions, users, ndcg`` in bucket order;
    empty buckets are kept with ``users = 0`` and ``ndcg = nan``.
    """
    if not buckets or any(b <= a for a, b in itertools.pairwise(buckets)):
        raise ValueError(f"buckets must be a non-empty increasing sequence, got {buckets}")
    if buckets[0] < 1:
        raise ValueError(f"bucket bounds must be >= 1, got {buckets}")
    recs = recommend_for_test(model, train, test, k)
    train_ids = _ids(train)
    truth = _ids(test).filter(pl.col("user_id").is_in(train_ids["user_id"].unique().to_list()))
    per_user = per_user_metrics(recs, truth, k).select("user_id", "ndcg")
    activity = train_ids.unique().group_by("user_id").agg(pl.len().alias("n_train"))
    labels = _bucket_labels(buckets)
    lows = [1, *(b + 1 for b in buckets)]
    bounds = list(buckets)
    per_user = per_user.join(activity, on="user_id", how="left").with_columns(
        pl.col("n_train")
        .cut(bounds, labels=labels, left_closed=False)
        .cast(pl.String)
        .alias("bucket")
    )
    stats = per_user.group_by("bucket").agg(
        pl.len().alias("users"), pl.col("ndcg").mean().alias("ndcg")
    )
    order = pl.DataFrame({"bucket": labels, "min_interactions": lows})
    return (
        order.join(stats, on="bucket", how="left")
        .with_columns(
            pl.col("users").fill_null(0).cast(pl.Int64),
            pl.col("ndcg").cast(pl.Float64).fill_null(math.nan),
        )
        .select("bucket", "min_interactions", "users", "ndcg")
    )
