"""Lake repair after a process was killed in the middle of a write (fast, real files)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import polars as pl

from core.lake import read_table, recover_lake, write_partition, write_table
from pipelines.lib.erasure import erase_users, user_tables


def test_a_table_swapped_aside_but_not_replaced_is_restored(tmp_path) -> None:
    frame = pl.DataFrame({"title_id": ["movie:1", "movie:2"]})
    write_table(tmp_path, "tmdb_titles", frame)
    # the kill happened between write_table's two renames: only the old copy exists
    os.replace(tmp_path / "tmdb_titles", tmp_path / ".tmdb_titles.abc.old")
    (tmp_path / ".tmdb_titles.def.staging").mkdir()
    torn = tmp_path / "watch_events" / ".batch=1.parquet.123.tmp"
    torn.parent.mkdir()
    torn.write_bytes(b"PAR1 half a file")
    done = recover_lake(tmp_path)
    assert "tmdb_titles restored" in done and len(done) == 3
    assert read_table(tmp_path, "tmdb_titles").equals(frame)
    assert not torn.exists() and not list(tmp_path.glob(".*"))
    assert recover_lake(tmp_path) == []  # nothing left to repair


def test_erasure_finds_every_table_with_a_user_id(tmp_path) -> None:
    write_partition(tmp_path, "custom_log", "a", pl.DataFrame({"user_id": ["x", "y"], "n": [1, 2]}))
    write_table(tmp_path, "titles_like", pl.DataFrame({"title_id": ["movie:1"]}))
    assert "custom_log" in user_tables(tmp_path) and "titles_like" not in user_tables(tmp_path)
    assert erase_users(tmp_path, {"x": datetime.now(UTC)}) == 1
    assert read_table(tmp_path, "custom_log")["user_id"].to_list() == ["y"]
