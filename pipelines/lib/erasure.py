"""Right to erasure in the lake: physically remove erased users' rows from every per-user table.

Tables are found by schema, not by a list (``USER_TABLES`` names the known ones): any Parquet file
of the lake whose schema has a ``user_id`` column is rewritten without the erased rows, so a
per-user table added later cannot be forgotten. Model stores are swept by :mod:`mlops.purge`.

Erasure is time-bounded (decision, see :mod:`core.feedback`): a row of an erased user
survives only if it is API feedback (``source == "feedback"``) received *after* the user's latest
erasure; every other row of theirs (imported histories, unresolved rows, quarantined lines, and
feedback sent before the erasure) is erased. :func:`drop_erased` applies that rule to a frame
(training, serving and notebooks use it), :func:`erase_users` to the Parquet files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import polars as pl

from core.atomic import atomic_path
from core.lake import table_dir

log = logging.getLogger(__name__)

USER_TABLES = ("watch_events", "unresolved_events", "quarantine")


def user_tables(lake: Path) -> list[str]:
    """Lake tables with a ``user_id`` column in any of their files (plus the known ones)."""
    found = set(USER_TABLES)
    lake = Path(lake)
    if lake.is_dir():
        for folder in lake.iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                for path in folder.glob("**/*.parquet"):
                    if "user_id" in pl.read_parquet_schema(path):
                        found.add(folder.name)
                        break
    return sorted(found)


def _erasure_frame(erasures: Mapping[str, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": list(erasures), "erased_at": list(erasures.values())},
        schema={"user_id": pl.String, "erased_at": pl.Datetime("us", "UTC")},
    )


def erased_mask(df: pl.DataFrame, erasures: Mapping[str, datetime]) -> pl.Series:
    """True for the rows of ``df`` the erasures remove (see module docstring)."""
    if not erasures or "user_id" not in df.columns or df.height == 0:
        return pl.Series("erased", [False] * df.height, dtype=pl.Boolean)
    joined = (
        df.select("user_id")
        .with_row_index("_row")
        .join(_erasure_frame(erasures), on="user_id", how="left")
    )
    kept_feedback = pl.lit(False)
    if "source" in df.columns and "event_time" in df.columns:
        times = df["event_time"]
        if times.dtype == pl.Datetime and times.dtype.time_zone is None:  # type: ignore[union-attr]
            times = times.dt.replace_time_zone("UTC")
        joined = joined.with_columns(
            source=df["source"],
            event_time=times.dt.cast_time_unit("us").dt.convert_time_zone("UTC"),
        )
        kept_feedback = (pl.col("source") == "feedback") & (
            pl.col("event_time") > pl.col("erased_at")
        )
    mask = joined.sort("_row").select(
        (pl.col("erased_at").is_not_null() & ~kept_feedback.fill_null(False)).alias("erased")
    )
    return mask["erased"]


def drop_erased(df: pl.DataFrame, erasures: Mapping[str, datetime]) -> pl.DataFrame:
    """``df`` without the rows the erasures remove."""
    if not erasures or df.height == 0:
        return df
    return df.filter(~erased_mask(df, erasures))


def erase_users(
    lake: Path, erasures: Mapping[str, datetime], tables: tuple[str, ...] | None = None
) -> int:
    """Rewrite every Parquet file holding erased rows without them (atomic per file).

    ``tables`` defaults to :func:`user_tables`. Returns the number of rows removed. Files left
    empty are deleted. Idempotent.
    """
    if not erasures:
        return 0
    removed = 0
    for table in tables if tables is not None else user_tables(lake):
        folder = table_dir(lake, table)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("**/*.parquet")):
            if "user_id" not in pl.read_parquet_schema(path):
                continue
            df = pl.read_parquet(path)
            keep = drop_erased(df, erasures)
            if keep.height == df.height:
                continue
            removed += df.height - keep.height
            if keep.height == 0:
                path.unlink()
                continue
            with atomic_path(path) as tmp:
                keep.write_parquet(tmp)
    log.info("erasure removed %d rows for %d users", removed, len(erasures))
    return removed
