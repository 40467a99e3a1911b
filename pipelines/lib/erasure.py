"""Right to erasure: physically remove users' rows from the lake's per-user tables."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import polars as pl

from pipelines.lib.lake import table_dir

log = logging.getLogger(__name__)

USER_TABLES = ("watch_events", "unresolved_events", "quarantine")


def erase_users(lake: Path, users: set[str], tables: tuple[str, ...] = USER_TABLES) -> int:
    """Rewrite every Parquet file holding rows of ``users`` without them (atomic per file).

    Returns the number of rows removed. Files left empty are deleted.
    """
    if not users:
        return 0
    removed = 0
    wanted = sorted(users)
    for table in tables:
        folder = table_dir(lake, table)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("**/*.parquet")):
            df = pl.read_parquet(path)
            if "user_id" not in df.columns:
                continue
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
