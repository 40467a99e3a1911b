"""Right to erasure: physically remove users' rows from every lake table that has a ``user_id``.

Tables are found by schema, not by a list (``USER_TABLES`` names the known ones): any Parquet file
of the lake whose schema has a ``user_id`` column is rewritten without the users, so a per-user
table added later cannot be forgotten. Model stores are swept by :mod:`models.purge`.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import polars as pl

from pipelines.lib.lake import table_dir

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


def erase_users(lake: Path, users: set[str], tables: tuple[str, ...] | None = None) -> int:
    """Rewrite every Parquet file holding rows of ``users`` without them (atomic per file).

    ``tables`` defaults to :func:`user_tables`. Returns the number of rows removed. Files left
    empty are deleted.
    """
    if not users:
        return 0
    removed = 0
    wanted = sorted(users)
    for table in tables if tables is not None else user_tables(lake):
        folder = table_dir(lake, table)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("**/*.parquet")):
            if "user_id" not in pl.read_parquet_schema(path):
                continue
            df = pl.read_parquet(path)
            keep = df.filter(~pl.col("user_id").is_in(wanted))
            if keep.height == df.height:
                continue
            removed += df.height - keep.height
            if keep.height == 0:
                path.unlink()
                continue
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            keep.write_parquet(tmp)
            os.replace(tmp, path)
    log.info("erasure removed %d rows for %d users", removed, len(users))
    return removed
