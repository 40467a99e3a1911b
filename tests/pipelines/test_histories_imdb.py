"""IMDb ratings.csv: 1-10 scale, title types, malformed rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.lib.histories.common import implicit_weight
from pipelines.lib.histories.imdb import parse_imdb

HEADER = (
    "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,"
    "Num Votes,Release Date,Directors,Original Title\n"
)
ROWS = [
    'tt0113277,9,2023-05-01,Heat,u,Movie,8.3,170,1995,"Action, Crime",700000,1995-12-15,Michael Mann,Heat',
    "tt5753856,8,2023-05-02,Dark,u,TV Series,8.7,60,2017,Drama,400000,2017-12-01,,Dark",
    "tt2301451,10,2023-05-03,Ozymandias,u,TV Episode,10,47,2013,Drama,200000,2013-09-15,R J,Ozymandias",
    "tt0211915,3,2023-05-04,Amélie,u,movie,8.3,122,2001,Comedy,700000,2001-04-25,J-P J,"
    "Le fabuleux destin d'Amélie Poulain",
    "tt1234567,8,2023-05-05,The Last of Us Part II,u,Video Game,9,,2020,Action,1000,2020-06-19,,TLOU2",
    "tt7654321,11,2023-05-06,Too High,https://x,Movie,5,90,2000,Drama,10,2000-01-01,,Too High",
    "nm0000001,7,2023-05-07,Not a title,https://x,Movie,5,90,2000,Drama,10,2000-01-01,,x",
]


def test_imdb_ratings(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    result = parse_imdb([path], "u")
    ev = result.events
    assert ev.select("imdb_id", "title_type", "rating", "rating_scale").rows() == [
        ("tt0113277", "movie", 9.0, 10.0),
        ("tt5753856", "series", 8.0, 10.0),
        ("tt2301451", "episode", 10.0, 10.0),
        ("tt0211915", "movie", 3.0, 10.0),
    ]
    assert ev["original_title"].to_list() == [
        None,
        None,
        None,
        "Le fabuleux destin d'Amélie Poulain",
    ]
    assert dict(result.dropped) == {"not a film or series (Video Game)": 1}
    assert result.quarantine.select("line", "reason").rows() == [
        (7, "Your Rating outside 1-10"),
        (8, "Const is not a tt id"),
    ]
    # 9/10 is a liked title (weight > 1), 3/10 a small positive weight
    weights = ev.with_columns(implicit_weight())["weight"].to_list()
    assert weights[0] > 1.5 and 0.1 < weights[3] < 0.6


def test_older_export_without_original_title(tmp_path: Path) -> None:
    header = HEADER.replace(",Original Title", "")
    path = tmp_path / "ratings.csv"
    path.write_text(header + ROWS[0].rsplit(",", 1)[0] + "\n", encoding="utf-8")
    ev = parse_imdb([path], "u").events
    assert ev["raw_title"].to_list() == ["Heat"] and ev["year"].to_list() == [1995]
    assert ev.schema["year"] == pl.Int32
