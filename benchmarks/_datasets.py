"""Loaders for the MovieLens reference sets (read in place from the shared data folder).

Both return the rows in file order (the order the Microsoft splitter's random draw depends on) with
columns ``user_id`` (str), ``item_id`` (str), ``rating`` (f64), ``timestamp`` (i64).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from core import PROJECT_ROOT

DEFAULT_DATA_DIR = (PROJECT_ROOT.parent / "shared" / "data").resolve()
DATASETS = ("ml-100k", "ml-latest-small")


class DatasetNotFoundError(FileNotFoundError):
    """A reference data file is absent from the data folder."""


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found (pass --data-dir pointing at shared/data)")
    return path


def _normalise(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("rating").cast(pl.Float64),
        pl.col("timestamp").cast(pl.Int64),
    )


def load_ml100k(data_dir: Path = DEFAULT_DATA_DIR) -> pl.DataFrame:
    """MovieLens 100K ``u.data`` (tab separated: user item rating timestamp, no header)."""
    path = _need(Path(data_dir) / "movielens" / "ml-100k" / "u.data")
    df = pl.read_csv(
        path,
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
        schema_overrides={"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float64},
    )
    return _normalise(df)


def load_ml_latest_small(data_dir: Path = DEFAULT_DATA_DIR) -> pl.DataFrame:
    """MovieLens latest-small ``ratings.csv`` (userId,movieId,rating,timestamp)."""
    path = _need(Path(data_dir) / "movielens" / "ml-latest-small" / "ratings.csv")
    df = pl.read_csv(path).rename({"userId": "user_id", "movieId": "item_id"})
    return _normalise(df)


def load_dataset(name: str, data_dir: Path = DEFAULT_DATA_DIR) -> pl.DataFrame:
    """Load one of :data:`DATASETS` by name."""
    loaders = {"ml-100k": load_ml100k, "ml-latest-small": load_ml_latest_small}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return loaders[name](data_dir)
