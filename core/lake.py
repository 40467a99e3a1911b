"""Atomic Parquet reads and writes in the lake folder (``<lake>/<table>/``).

A table is a folder of Parquet files. ``write_table`` replaces the whole table atomically: files
are written into a temporary sibling folder which is then swapped in with ``os.replace``; readers
see either the old or the new table. ``write_partition`` replaces one partition file atomically.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl

from core.atomic import atomic_path, staged_dir
from core.schemas import SCHEMAS, conform, empty


def table_dir(lake: Path, table: str) -> Path:
    return Path(lake) / table


def read_table(lake: Path, table: str) -> pl.DataFrame:
    """Read every Parquet file of a table; an absent table is an empty frame with its schema."""
    folder = table_dir(lake, table)
    files = sorted(folder.glob("**/*.parquet")) if folder.is_dir() else []
    if not files:
        if table in SCHEMAS:
            return empty(table)
        raise FileNotFoundError(f"lake table {table!r} not found under {lake}")
    try:
        df = pl.read_parquet(files)
    except (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError):
        # partitions written before a column was added (schemas only grow, additively)
        df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    return conform(df, table) if table in SCHEMAS else df


def read_columns(lake: Path, table: str, columns: list[str]) -> pl.DataFrame:
    """Only ``columns`` of a schema table, scanned (not the whole table in memory).

    Like :func:`read_table`, partitions written before a column was added read it as null, and
    columns a partition has beyond ``columns`` are ignored: old and new partitions mix freely.
    """
    schema = {name: SCHEMAS[table][name] for name in columns}
    folder = table_dir(lake, table)
    files = sorted(folder.glob("**/*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.scan_parquet(
        files, schema=schema, missing_columns="insert", extra_columns="ignore"
    ).collect()


def _atomic_parquet(df: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def write_table(lake: Path, table: str, df: pl.DataFrame) -> Path:
    """Replace ``table`` with ``df`` (one file), atomically. Returns the table folder."""
    if table in SCHEMAS:
        df = conform(df, table)
    folder = table_dir(lake, table)
    with staged_dir(folder) as staging:
        df.write_parquet(staging / "part-0.parquet")
    return folder


def write_partition(lake: Path, table: str, partition: str, df: pl.DataFrame) -> Path:
    """Replace one partition (``<lake>/<table>/<partition>.parquet``) atomically."""
    if table in SCHEMAS:
        df = conform(df, table)
    path = table_dir(lake, table) / f"{partition}.parquet"
    _atomic_parquet(df, path)
    return path


def recover_lake(lake: Path) -> list[str]:
    """Repair what a process killed in the middle of a write left behind; returns what it did.

    ``write_table`` swaps ``<table>`` aside to ``.<table>.<id>.old`` and then moves the staged
    folder in; a kill between the two leaves no ``<table>`` folder: the complete ``.old`` folder is
    moved back (the rerun recomputes the table). Staging folders and ``.tmp`` files of unfinished
    writes are deleted (they were never visible to readers). Call only while no writer runs.
    """
    lake = Path(lake)
    if not lake.is_dir():
        return []
    done: list[str] = []
    for old in sorted(lake.glob(".*.old")):
        table = old.name[1:].rsplit(".", 2)[0]
        if not (lake / table).exists():
            os.replace(old, lake / table)
            done.append(f"{table} restored")
        else:
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"{old.name} removed")
    for staging in sorted(lake.glob(".*.staging")):
        shutil.rmtree(staging, ignore_errors=True)
        done.append(f"{staging.name} removed")
    for tmp in sorted(lake.glob("**/.*.tmp")):
        tmp.unlink(missing_ok=True)
        done.append(f"{tmp.relative_to(lake)} removed")
    return done
