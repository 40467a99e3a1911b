"""Letterboxd export merge: one event per watch, rating-only and watched-only films too."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.letterboxd import parse_letterboxd

DIARY = """Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date
2024-01-03,Heat,1995,https://boxd.it/aaa1,4.5,,,2024-01-02
2024-02-10,Heat,1995,https://boxd.it/aaa2,,Yes,,2024-02-09
2024-03-01,Dune,2021,https://boxd.it/aaa3,3,,,2024-03-01
2024-03-05,Broken,20x1,https://boxd.it/aaa4,3,,,2024-03-05
"""
RATINGS = """Date,Name,Year,Letterboxd URI,Rating
2024-02-10,Heat,1995,https://boxd.it/f1,4
2024-03-01,Dune,2021,https://boxd.it/f2,3
2023-12-01,Alien,1979,https://boxd.it/f3,5
2023-12-02,Bad Rating,1990,https://boxd.it/f4,7
"""
WATCHED = """Date,Name,Year,Letterboxd URI
2024-01-03,Heat,1995,https://boxd.it/f1
2023-12-01,Alien,1979,https://boxd.it/f3
2023-11-11,Tenet,2020,https://boxd.it/f5
"""


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "letterboxd-export"
    folder.mkdir()
    (folder / "diary.csv").write_text(DIARY)
    (folder / "ratings.csv").write_text(RATINGS)
    (folder / "watched.csv").write_text(WATCHED)
    return folder


def _check(result) -> None:
    ev = result.events.sort("event_time")
    assert ev.select("raw_title", "rating", "rewatch").rows() == [
        ("Tenet", None, False),  # watched only
        ("Alien", 5.0, False),  # rating only (its watched row merged)
        ("Heat", 4.5, False),  # diary with its own rating
        ("Heat", 4.0, True),  # diary rewatch without rating: the film's rating
        ("Dune", 3.0, False),  # diary + rating = one event
    ]
    assert ev["event_time"][2] == datetime(2024, 1, 2, tzinfo=UTC)  # Watched Date, not Date
    assert ev["rating_scale"].to_list() == [None, 5.0, 5.0, 5.0, 5.0]
    assert set(ev["title_type"].to_list()) == {"movie"}
    q = result.quarantine.sort("line")
    assert q.select("line", "reason").rows() == [
        (5, "Year is not a number"),
        (5, "Rating not in 0.5-5 half stars"),
    ]
    assert dict(result.dropped) == {
        "rating merged into diary entry": 2,
        "watched merged into diary/rating": 2,
    }
    assert result.rows_read == 4 + 4 + 3


def test_folder_merge(tmp_path: Path) -> None:
    _check(parse_letterboxd([_folder(tmp_path)], "u"))


def test_zip_merge_ignores_deleted_entries(tmp_path: Path) -> None:
    archive = tmp_path / "letterboxd-u-2024.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("diary.csv", DIARY)
        zf.writestr("ratings.csv", RATINGS)
        zf.writestr("watched.csv", WATCHED)
        zf.writestr("deleted/diary.csv", DIARY.replace("Heat", "Deleted Film"))
    result = parse_letterboxd([archive], "u")
    _check(result)
    assert result.quarantine["file"][0].endswith(".zip!diary.csv") or result.quarantine["file"][
        0
    ].endswith(".zip!ratings.csv")
    assert "Deleted Film" not in result.events["raw_title"].to_list()


def test_event_ids_do_not_depend_on_the_container(tmp_path: Path) -> None:
    from pipelines.lib.histories.common import with_event_ids

    folder = with_event_ids(parse_letterboxd([_folder(tmp_path)], "u").events)
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in (
            ("diary.csv", DIARY),
            ("ratings.csv", RATINGS),
            ("watched.csv", WATCHED),
        ):
            zf.writestr(name, text)
    zipped = with_event_ids(parse_letterboxd([archive], "u").events)
    assert sorted(folder["event_id"].to_list()) == sorted(zipped["event_id"].to_list())
    assert folder["event_id"].n_unique() == folder.height


def test_not_an_export(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HistoryImportError, match="no diary.csv"):
        parse_letterboxd([empty], "u")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(HistoryImportError, match="notes.txt:1: missing column.s. Date, Name"):
        parse_letterboxd([text], "u")


def test_only_ratings_file(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "ratings.csv").write_text(RATINGS)
    ev = parse_letterboxd([folder], "u").events
    assert ev.filter(pl.col("raw_title") == "Heat")["rating"].to_list() == [4.0]
    assert ev.height == 3
