"""Train/test splits of interaction frames, in pure polars.

``stratified_split`` mirrors Microsoft Recommenders' ``python_stratified_split``
(``recommenders/datasets/python_splitters.py``, function ``_do_stratification`` with
``is_random=True``), the protocol behind their published MovieLens-100k benchmark table
(``ratio=0.75, min_rating=1, filter_by="item", seed=42``). What their code does, and we mirror:

1. ``filter_by`` picks the grouping column: ``"user"`` -> ``user_id``, ``"item"`` -> ``item_id``.
   Both the ``min_rating`` filter (groups with fewer rows are dropped) *and* the stratification use
   that column; with ``filter_by="item"`` every item keeps ~``ratio`` of its ratings in train, so
   every test item also occurs in train. Users are not stratified.
2. ``np.random.seed(seed); random = np.random.rand(n_rows)`` draws one uniform number per row in
   the frame's current row order (we use ``np.random.RandomState(seed).rand``: the same stream).
3. Rows are ordered by (group, random); ``rank`` is the 1-based position within the group and
   ``count`` the group size.
4. Train is ``rank <= round(ratio * count)``, test the rest. Their ``round`` on a pandas Series is
   numpy's round-half-to-even (a group of 2 at ratio 0.75 -> round(1.5) = 2 -> both rows in train;
   a group of 6 -> round(4.5) = 4), reproduced with polars' ``half_to_even`` mode.

Given the same rows in the same order, the split is therefore row-for-row theirs. (Our ML-100k copy
is one line short of the published file, so published figures can only be approached, not matched
exactly.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

_GROUP = {"user": "user_id", "item": "item_id"}


class SplitError(ValueError):
    """The frame cannot be split as asked (missing columns, bad ratio or options)."""


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise SplitError(f"ratio must be strictly between 0 and 1, got {ratio}")


def _require(df: pl.DataFrame, columns: set[str]) -> None:
    missing = columns - set(df.columns)
    if missing:
        raise SplitError(f"frame is missing columns {sorted(missing)}; has {df.columns}")


def _split_by_order(
    df: pl.DataFrame, group: str, order: list[str], ratio: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Within each ``group``, rows sorted by ``order``; the first round(ratio*n) go to train."""
    ranked = df.with_row_index("_row").sort([group, *order, "_row"])
    ranked = ranked.with_columns(
        (pl.int_range(pl.len()).over(group) + 1).alias("_rank"),
        (pl.len().over(group) * ratio).round(0, mode="half_to_even").alias("_cut"),
    )
    in_train = pl.col("_rank") <= pl.col("_cut")
    drop = ["_row", "_rank", "_cut"]
    train = ranked.filter(in_train).sort("_row").drop(drop)
    test = ranked.filter(~in_train).sort("_row").drop(drop)
    return train, test


def stratified_split(
    df: pl.DataFrame,
    ratio: float = 0.75,
    seed: int = 42,
    filter_by: Literal["user", "item"] = "item",
    min_rating: int = 1,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random stratified split mirroring Microsoft Recommenders' ``python_stratified_split``.

    See the module docstring for the exact protocol. Returns ``(train, test)`` with the input's
    columns, each in the input's row order. Deterministic for a given ``seed`` and row order.
    """
    _check_ratio(ratio)
    if filter_by not in _GROUP:
        raise SplitError(f"filter_by must be 'user' or 'item', got {filter_by!r}")
    if min_rating < 1:
        raise SplitError(f"min_rating must be an integer >= 1, got {min_rating}")
    _require(df, {"user_id", "item_id"})
    group = _GROUP[filter_by]
    if min_rating > 1:
        df = df.filter(pl.len().over(group) >= min_rating)
    random = np.random.RandomState(seed).rand(df.height)
    with_random = df.with_columns(pl.Series("_random", random, dtype=pl.Float64))
    train, test = _split_by_order(with_random, group, ["_random"], ratio)
    return train.drop("_random"), test.drop("_random")


def temporal_split(df: pl.DataFrame, ratio: float = 0.75) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-user chronological split: each user's oldest round(ratio*n) interactions are train.

    Mirrors Microsoft Recommenders' ``python_chrono_split(filter_by="user")``. Ties in
    ``timestamp`` keep the input order; rounding is half-to-even as in ``stratified_split``.
    """
    _check_ratio(ratio)
    _require(df, {"user_id", "item_id", "timestamp"})
    if df["timestamp"].null_count():
        raise SplitError("timestamp contains nulls; temporal_split needs a time for every row")
    return _split_by_order(df, "user_id", ["timestamp"], ratio)
