"""MovieLens parsers and titles on tiny hand-made datasets (both layouts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.movielens import (
    movielens_titles,
    parse_movielens,
    parse_movielens_100k,
    split_movielens_title,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", None, 1995)),
        ("Usual Suspects, The (1995)", ("The Usual Suspects", None, 1995)),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ("The City of Lost Children", "La Cité des enfants perdus", 1995),
        ),
        ("Auberge espagnole, L' (2002)", ("L'Auberge espagnole", None, 2002)),
        ("Babylon 5", ("Babylon 5", None, None)),
        ("Justice League: Doom (2012) ", ("Justice League: Doom", None, 2012)),
        ("Stranger Things (2016-)", ("Stranger Things", None, 2016)),
    ],
)
def test_split_movielens_title(raw: str, expected: tuple) -> None:
    assert split_movielens_title(raw) == expected


def _latest(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,2,0.5,964982704\r\n"
        "2,1,6.0,964982705\r\n2,x,3.0,964982706\r\n3,2,3.5,964982707\r\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n"
        '2,"Usual Suspects, The (1995)",(no genres listed)\r\n'
    )
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\r\n1,0114709,862\r\n2,0114814,\r\n")
    return folder


def test_latest_ratings_and_titles(tmp_path: Path) -> None:
    folder = _latest(tmp_path)
    result = parse_movielens([folder / "ratings.csv"], "ml")
    ev = result.events
    assert ev.select(
        "user_id", "raw_identity", "rating", "tmdb_id", "imdb_id", "native_id"
    ).rows() == [
        ("ml-1", "ml:1", 4.0, 862, "tt0114709", "movie:862"),
        ("ml-1", "ml:2", 0.5, None, "tt0114814", "ml:2"),
        ("ml-3", "ml:2", 3.5, None, "tt0114814", "ml:2"),
    ]
    assert ev["event_time"][0] == datetime.fromtimestamp(964982703, tz=UTC)
    assert result.quarantine.select("line", "reason").rows() == [
        (4, "rating outside 0.5-5"),
        (5, "movieId is not an integer"),
    ]
    titles = movielens_titles(folder)
    assert titles.select("title_id", "title", "year", "genres", "source").rows() == [
        ("movie:862", "Toy Story", 1995, ["Adventure", "Animation"], "movielens"),
        ("ml:2", "The Usual Suspects", 1995, [], "movielens"),
    ]
    assert titles["content_hash"].null_count() == 0


def _ml100k(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text(
        "196\t1\t3\t881250949\n186\t2\t5\t891717742\n22\t2\t9\t878887116\n"
    )
    flags = "|".join(["0"] * 3 + ["1"] + ["0"] * 15)
    (folder / "u.item").write_bytes(
        (
            f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{flags}\n"
            f"2|Cité, La (1996)|01-Jan-1996||http://x|{flags}\n"
        ).encode("latin-1")
    )
    return folder


def test_ml100k_items_match_catalogue_by_title_and_year(tmp_path: Path) -> None:
    folder = _ml100k(tmp_path)
    catalogue = pl.DataFrame(
        {"title_id": ["movie:862"], "type": ["movie"], "title": ["Toy Story"], "year": [1995]}
    )
    titles = movielens_titles(folder, catalogue)
    assert titles.select("title_id", "title", "genres").rows() == [
        ("movie:862", "Toy Story", ["Animation"]),
        ("ml100k:2", "La Cité", ["Animation"]),
    ]
    result = parse_movielens_100k([folder], "k", catalogue)
    assert result.events.select("user_id", "native_id", "rating").rows() == [
        ("k-196", "movie:862", 3.0),
        ("k-186", "ml100k:2", 5.0),
    ]
    assert result.quarantine.select("line", "reason").rows() == [(3, "rating outside 1-5")]


def test_missing_sibling_file_is_named(tmp_path: Path) -> None:
    folder = _latest(tmp_path)
    (folder / "links.csv").unlink()
    with pytest.raises(HistoryImportError, match=r"links\.csv: missing MovieLens file"):
        parse_movielens([folder], "ml")
