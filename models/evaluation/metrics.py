"""Top-k ranking metrics, LensKit style: one small typed function per metric.

Inputs are a recommendations frame (``user_id, item_id, rank[, score]``, as returned by
``Recommender.recommend``) and a truth frame (``user_id, item_id``; extra columns ignored).

Definitions follow Microsoft Recommenders (``recommenders/evaluation/python_evaluation.py``) with
binary relevance: every truth row is relevant, whatever its rating. For a user with truth set ``R``
and top-k list ``L`` (the ``k`` rows with the smallest ``rank``; positions ``1..|L|``):

* ``precision@k = |L ∩ R| / k`` (divided by ``k`` even when fewer than ``k`` items were returned)
* ``recall@k = |L ∩ R| / |R|``
* ``nDCG@k = Σ_{i ∈ L∩R} 1/log2(1+pos_i) / Σ_{j=1..min(|R|,k)} 1/log2(1+j)`` (the log base cancels;
  Microsoft's default natural log gives identical values)
* ``AP@k = Σ_{hit at pos p} (hits within 1..p)/p / min(|R|, k)``; ``MAP@k`` is its mean (Microsoft's
  current ``map_at_k``; their older ``map`` divided by ``|R|`` instead)
* ``hit_rate@k = 1 if |L ∩ R| > 0 else 0``

Averaging: over users **with truth** (non-empty ``R``). A user with truth but no recommendation rows
scores 0 on every metric; a user with recommendations but no truth is excluded (their per-user value
would be undefined). When no user has truth the mean is ``nan``. Microsoft averages over users
present in both frames; the two agree whenever every truth user receives recommendations, which
:func:`models.evaluation.evaluate.evaluate_model` guarantees.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

METRICS = ("ndcg", "precision", "recall", "map", "hit_rate")


class MetricInputError(ValueError):
    """A metric input frame lacks required columns or k is not positive."""


def _require(df: pl.DataFrame, columns: set[str], what: str) -> None:
    missing = columns - set(df.columns)
    if missing:
        raise MetricInputError(f"{what} frame is missing columns {sorted(missing)}")


def _top_k(recs: pl.DataFrame, k: int) -> pl.DataFrame:
    """The ``k`` best rows per user with their 1-based position (ties in rank keep row order)."""
    if k < 1:
        raise MetricInputError(f"k must be >= 1, got {k}")
    _require(recs, {"user_id", "item_id", "rank"}, "recommendations")
    return (
        recs.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String), "rank")
        .with_row_index("_row")
        .sort(["user_id", "rank", "_row"])
        .unique(["user_id", "item_id"], keep="first", maintain_order=True)
        .with_columns((pl.int_range(pl.len()).over("user_id") + 1).alias("pos"))
        .filter(pl.col("pos") <= k)
        .select("user_id", "item_id", "pos")
    )


def _truth_sets(truth: pl.DataFrame) -> pl.DataFrame:
    _require(truth, {"user_id", "item_id"}, "truth")
    return truth.select(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String)
    ).unique()


def per_user_metrics(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> pl.DataFrame:
    """One row per user with truth: ``user_id, n_truth, hits, ndcg, precision, recall, ap, hit``."""
    top = _top_k(recs, k)
    rel = _truth_sets(truth)
    n_truth = rel.group_by("user_id").agg(pl.len().alias("n_truth"))
    hits = top.join(rel, on=["user_id", "item_id"], how="inner").sort(["user_id", "pos"])
    hits = hits.with_columns((pl.int_range(pl.len()).over("user_id") + 1).alias("hit_no"))
    per_hit = hits.group_by("user_id").agg(
        pl.len().alias("hits"),
        (1.0 / (pl.col("pos") + 1).log(2)).sum().alias("dcg"),
        (pl.col("hit_no") / pl.col("pos")).sum().alias("prec_sum"),
    )
    # Ideal DCG: the first min(|R|, k) positions are all hits.
    ideal = pl.DataFrame(
        {
            "_denom": np.arange(1, k + 1, dtype=np.int64),
            "idcg": np.cumsum(1.0 / np.log2(np.arange(2, k + 2))),
        }
    )
    out = (
        n_truth.join(per_hit, on="user_id", how="left")
        .with_columns(
            pl.col("hits").fill_null(0).cast(pl.Int64),
            pl.col("dcg").fill_null(0.0),
            pl.col("prec_sum").fill_null(0.0),
            pl.col("n_truth").clip(upper_bound=k).cast(pl.Int64).alias("_denom"),
        )
        .join(ideal, on="_denom", how="left")
    )
    return out.select(
        "user_id",
        "n_truth",
        "hits",
        (pl.col("dcg") / pl.col("idcg")).alias("ndcg"),
        (pl.col("hits") / k).alias("precision"),
        (pl.col("hits") / pl.col("n_truth")).alias("recall"),
        (pl.col("prec_sum") / pl.col("_denom")).alias("ap"),
        (pl.col("hits") > 0).cast(pl.Float64).alias("hit"),
    ).sort("user_id")


def _mean(recs: pl.DataFrame, truth: pl.DataFrame, k: int, column: str) -> float:
    values = per_user_metrics(recs, truth, k)[column]
    return float(values.mean()) if values.len() else math.nan


def ndcg_at_k(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> float:
    """Mean binary nDCG@k over users with truth (``nan`` if none)."""
    return _mean(recs, truth, k, "ndcg")


def precision_at_k(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> float:
    """Mean hits/k over users with truth (``nan`` if none)."""
    return _mean(recs, truth, k, "precision")


def recall_at_k(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> float:
    """Mean hits/|truth| over users with truth (``nan`` if none)."""
    return _mean(recs, truth, k, "recall")


def map_at_k(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> float:
    """Mean average precision@k, AP normalised by min(|truth|, k) (``nan`` if no user has truth)."""
    return _mean(recs, truth, k, "ap")


def hit_rate_at_k(recs: pl.DataFrame, truth: pl.DataFrame, k: int = 10) -> float:
    """Share of users with truth who have at least one relevant item in their top k."""
    return _mean(recs, truth, k, "hit")


def catalog_coverage(recs: pl.DataFrame, n_items: int) -> float:
    """Distinct recommended items divided by the catalogue size ``n_items``."""
    if n_items < 1:
        raise MetricInputError(f"n_items must be >= 1, got {n_items}")
    _require(recs, {"item_id"}, "recommendations")
    return recs["item_id"].n_unique() / n_items


def item_popularity_percentile(train: pl.DataFrame) -> pl.DataFrame:
    """``item_id, n_users, percentile`` for every training item.

    ``n_users`` counts distinct training users per item; ``percentile`` is the item's average-tie
    rank by ``n_users`` divided by the number of items, in (0, 1] (1 = most popular).
    """
    _require(train, {"user_id", "item_id"}, "train")
    counts = (
        train.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
        .unique()
        .group_by("item_id")
        .agg(pl.len().alias("n_users"))
    )
    return counts.with_columns(
        (pl.col("n_users").rank("average") / pl.len()).alias("percentile")
    ).sort("item_id")


def popularity_bias(recs: pl.DataFrame, train: pl.DataFrame) -> float:
    """Mean popularity percentile of recommended items (over all recommendation rows).

    0.5 is what recommending uniformly from the catalogue gives on average; values near 1 mean the
    model recommends blockbusters. Items absent from ``train`` count as percentile 0. ``nan`` when
    ``recs`` is empty.
    """
    _require(recs, {"item_id"}, "recommendations")
    if recs.height == 0:
        return math.nan
    pop = item_popularity_percentile(train).select("item_id", "percentile")
    joined = recs.select(pl.col("item_id").cast(pl.String)).join(pop, on="item_id", how="left")
    return float(joined["percentile"].fill_null(0.0).mean())


def average_recommendation_popularity(recs: pl.DataFrame, train: pl.DataFrame) -> float:
    """ARP (Abdollahpouri et al.): per user, mean training user-count of the recommended items,
    averaged over users (``nan`` when ``recs`` is empty)."""
    _require(recs, {"user_id", "item_id"}, "recommendations")
    if recs.height == 0:
        return math.nan
    pop = item_popularity_percentile(train).select("item_id", "n_users")
    joined = recs.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String)).join(
        pop, on="item_id", how="left"
    )
    per_user = joined.group_by("user_id").agg(pl.col("n_users").fill_null(0).mean())
    return float(per_user["n_users"].mean())
