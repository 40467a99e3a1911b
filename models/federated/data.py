"""Client data: partition users disjointly across clients and load one client's history matrix.

The federation's data file is Parquet with columns ``user_id`` (string), ``item_index`` (int,
``0 <= item_index < num_items``: the public catalogue index) and optionally ``weight`` (float > 0,
default 1). Each client (SuperNode) reads the same file *locally* (its path comes from the node or
run config, never from a message) and keeps only the users of its partition: users are assigned to
partitions by a seeded permutation of the sorted distinct user ids, split into near-equal parts, so
every client computes the same assignment without talking to anyone and partitions are disjoint
(which is what the parallel-composition argument of the privacy report needs).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user_id", "item_index")


class FederatedDataError(ValueError):
    """The federation's data file or partition settings are invalid (message names the file)."""


@dataclass(frozen=True)
class ClientData:
    """One client's users and their histories (dense users x items, float32)."""

    user_ids: list[str]
    train: np.ndarray
    """Histories used for training (and fold-in when evaluating)."""
    heldout: np.ndarray
    """Items held out per user for federated evaluation (all zero when no validation split)."""

    @property
    def num_users(self) -> int:
        return len(self.user_ids)


def assign_partitions(user_ids: list[str], num_partitions: int, seed: int) -> dict[str, int]:
    """Map each distinct user id to a partition in ``0..num_partitions-1`` (deterministic)."""
    if num_partitions < 1:
        raise FederatedDataError(f"num-partitions must be >= 1, got {num_partitions}")
    users = sorted(set(user_ids))
    if len(users) < num_partitions:
        raise FederatedDataError(
            f"{len(users)} users cannot fill {num_partitions} partitions (one user at least each)"
        )
    order = np.random.default_rng(seed).permutation(len(users))
    out: dict[str, int] = {}
    for part, chunk in enumerate(np.array_split(order, num_partitions)):
        for idx in chunk:
            out[users[int(idx)]] = part
    return out


def check_frame(df: pl.DataFrame, num_items: int, source: str) -> pl.DataFrame:
    """Validate and normalise an interactions frame; errors name ``source`` (file or 'frame')."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FederatedDataError(f"{source}: missing columns {missing} (have {df.columns})")
    if "weight" not in df.columns:
        df = df.with_columns(pl.lit(1.0).alias("weight"))
    try:
        out = df.select(
            pl.col("user_id").cast(pl.String),
            pl.col("item_index").cast(pl.Int64, strict=True),
            pl.col("weight").cast(pl.Float64, strict=True),
        )
    except pl.exceptions.InvalidOperationError as exc:
        raise FederatedDataError(f"{source}: column types are wrong: {exc}") from exc
    out = out.with_row_index("row")
    bad = out.filter(
        pl.any_horizontal(pl.all().is_null())
        | (pl.col("item_index") < 0)
        | (pl.col("item_index") >= num_items)
        | (pl.col("weight") <= 0)
    )
    if bad.height:
        first = bad.row(0, named=True)
        raise FederatedDataError(
            f"{source}: row {first['row']} is invalid ({bad.height} bad rows): user_id, "
            f"item_index in [0, {num_items}) and weight > 0 are required; got {first}"
        )
    return out.drop("row")


def split_heldout(
    df: pl.DataFrame, fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Hold out ``fraction`` of each user's interactions (at least one left for training)."""
    if not 0.0 <= fraction < 1.0:
        raise FederatedDataError(f"validation-fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0 or df.height == 0:
        return df, df.clear()
    rnd = np.random.default_rng(seed).random(df.height)
    ranked = df.with_columns(pl.Series("_r", rnd)).with_columns(
        pl.col("_r").rank("ordinal").over("user_id").alias("_rank"),
        pl.len().over("user_id").alias("_n"),
    )
    n_out = (pl.col("_n") * fraction).floor().clip(upper_bound=pl.col("_n") - 1)
    held = ranked.filter(pl.col("_rank") <= n_out)
    kept = ranked.filter(pl.col("_rank") > n_out)
    cols = ["user_id", "item_index", "weight"]
    return kept.select(cols), held.select(cols)


def _matrix(df: pl.DataFrame, users: list[str], num_items: int) -> np.ndarray:
    out = np.zeros((len(users), num_items), dtype=np.float32)
    if df.height:
        index = {u: i for i, u in enumerate(users)}
        rows = np.fromiter((index[u] for u in df["user_id"].to_list()), dtype=np.int64)
        np.add.at(out, (rows, df["item_index"].to_numpy()), df["weight"].to_numpy())
    return out


def client_data_from_frame(
    df: pl.DataFrame,
    *,
    partition_id: int,
    num_partitions: int,
    num_items: int,
    seed: int,
    validation_fraction: float = 0.0,
    source: str = "frame",
) -> ClientData:
    """The users of one partition with their (train, held-out) history matrices."""
    if not 0 <= partition_id < num_partitions:
        raise FederatedDataError(
            f"partition-id {partition_id} is outside 0..{num_partitions - 1} for {source}"
        )
    checked = check_frame(df, num_items, source)
    parts = assign_partitions(checked["user_id"].to_list(), num_partitions, seed)
    mine = sorted(u for u, p in parts.items() if p == partition_id)
    local = checked.filter(pl.col("user_id").is_in(mine))
    train, held = split_heldout(local, validation_fraction, seed + partition_id)
    logger.info(
        "client partition loaded",
        extra={"partition_id": partition_id, "users": len(mine), "source": source},
    )
    return ClientData(mine, _matrix(train, mine, num_items), _matrix(held, mine, num_items))


@functools.lru_cache(maxsize=8)
def _load_cached(
    path: str,
    mtime_ns: int,
    size: int,
    partition_id: int,
    num_partitions: int,
    num_items: int,
    seed: int,
    validation_fraction: float,
) -> ClientData:
    try:
        df = pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise FederatedDataError(f"{path}: cannot read Parquet: {exc}") from exc
    return client_data_from_frame(
        df,
        partition_id=partition_id,
        num_partitions=num_partitions,
        num_items=num_items,
        seed=seed,
        validation_fraction=validation_fraction,
        source=path,
    )


def load_partition(
    path: str | Path,
    *,
    partition_id: int,
    num_partitions: int,
    num_items: int,
    seed: int,
    validation_fraction: float = 0.0,
) -> ClientData:
    """Read the Parquet file and return this client's partition (cached while the file is unchanged)."""
    file = Path(path)
    if not file.is_file():
        raise FederatedDataError(f"federation data file not found: {file}")
    stat = file.stat()
    return _load_cached(
        str(file.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        partition_id,
        num_partitions,
        num_items,
        seed,
        validation_fraction,
    )
