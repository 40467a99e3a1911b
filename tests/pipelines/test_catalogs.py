"""Platform catalogue reading (quarantine with file and line), TMDB matching, real catalogues."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from core.schemas import validate
from pipelines.lib import catalogs

HEADER = "show_id,type,title,director,cast,country,date_added,release_year,rating,duration,listed_in,description\n"  # noqa: E501
NETFLIX = (
    HEADER
    + 's1,Movie,The Matrix,"Lana Wachowski, Lilly Wachowski","Keanu Reeves, Carrie-Anne Moss",United States,2021-09-25,1999,R,136 min,"Action & Adventure, Sci-Fi & Fantasy","A hacker learns the truth.\nA second line of description."\n'  # noqa: E501
    + "s2,TV Show,Dark,,Louis Hofmann,Germany,2021-06-01,2020,TV-MA,3 Seasons,International TV Shows,Time travel in a small town.\n"  # noqa: E501
    + "s3,Movie,Broken Row,Someone,Somebody,US,2021-01-01,2001,PG\n"
    + "s4,Documentary,Odd Type,,,US,2021-01-01,2001,PG,90 min,Docs,Weird.\n"
    + "s5,Movie,No Year,,,US,2021-01-01,soon,PG,90 min,Drama,Bad year.\n"
    + "s1,Movie,Duplicate,,,US,2021-01-01,2001,PG,90 min,Drama,Same id.\n"
    + 's6,Movie,Amélie,Jean-Pierre Jeunet,Audrey Tautou,France,"April 2, 2021",2001,R,122 min,Romantic Movies,A waitress.\n'  # noqa: E501
)
HULU = HEADER + "s9,Movie,Odd Indie,,,US,2021-10-01,2015,R,90 min,Drama,Only here.\n"
AMAZON = (
    "show_id,type,title,director,cast,country,date_added,release_year,rating,duration,genre\n"
    's7,Movie,Matrix,,,US,"March 30, 2021",2000,R,136 min,Action\n'
    's8,Movie,Odd Indie,,,US,"March 30, 2021",2015,R,90 min,Drama\n'
)


def write_catalogs(folder: Path, netflix: str = NETFLIX) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "netflix_titles.csv").write_text(netflix, encoding="utf-8")
    (folder / "amazon_prime_titles.csv").write_text(AMAZON, encoding="utf-8")
    (folder / "disney_plus_titles.csv").write_text(HEADER, encoding="utf-8")
    (folder / "hulu_titles.csv").write_text(HULU, encoding="utf-8")
    return folder


def tmdb_titles() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "title_id": ["movie:603", "tv:70523", "movie:194", "movie:9999"],
            "tmdb_id": [603, 70523, 194, 9999],
            "type": ["movie", "series", "movie", "movie"],
            "title": ["The Matrix", "Dark", "Amélie", "The Matrix"],
            "original_title": [
                "The Matrix",
                "Dark",
                "Le Fabuleux Destin d'Amélie Poulain",
                "The Matrix",
            ],
            "year": [1999, 2017, 2001, 2021],
            "popularity": [80.0, 70.0, 30.0, 50.0],
        }
    )


def test_bad_rows_are_quarantined_with_file_and_line(tmp_path):
    path = write_catalogs(tmp_path) / "netflix_titles.csv"
    load = catalogs.read_catalog(path, catalogs.SERVICES[0], import_batch="b1")
    validate(load.titles, "titles")
    validate(load.quarantine, "quarantine")
    assert load.rows_read == {"netflix_titles.csv": 7}
    assert load.titles["title_id"].to_list() == [
        "catalog:netflix:s1",
        "catalog:netflix:s2",
        "catalog:netflix:s6",
    ]
    # line 2-3 is s1 (a two-line quoted description), so s3 is on line 5
    got = dict(load.quarantine.select("line", "reason").iter_rows())
    assert got.keys() == {5, 6, 7, 8}
    assert "expected 12 fields, found 9" in got[5]
    assert "type 'Documentary'" in got[6]
    assert "release_year 'soon'" in got[7]
    assert "duplicate show_id 's1'" in got[8]
    assert set(load.quarantine["file"]) == {str(path)}
    assert set(load.quarantine["import_batch"]) == {"b1"}
    assert (
        load.quarantine.filter(pl.col("line") == 5)["raw"].item().startswith("s3,Movie,Broken Row")
    )


def test_rows_become_titles_and_us_flatrate_offers(tmp_path):
    load = catalogs.read_catalog(
        write_catalogs(tmp_path) / "netflix_titles.csv", catalogs.SERVICES[0]
    )
    matrix = load.titles.row(0, named=True)
    assert matrix["type"] == "movie" and matrix["year"] == 1999 and matrix["runtime"] == 136
    assert matrix["directors"] == ["Lana Wachowski", "Lilly Wachowski"]
    assert matrix["genres"] == ["Action & Adventure", "Sci-Fi & Fantasy"]
    assert matrix["source"] == "catalog:netflix" and len(matrix["content_hash"]) == 64
    assert load.titles.row(1, named=True)["type"] == "series"
    assert load.titles.row(1, named=True)["runtime"] is None
    offers = load.availability
    validate(offers, "availability")
    assert offers.select("country", "provider_id", "monetization", "source").unique().rows() == [
        ("US", "netflix", "FLATRATE", "catalog")
    ]
    assert offers["deep_link"].is_null().all()
    assert offers["last_seen"].dt.date().unique().to_list() == [date(2021, 9, 25)]


def test_raise_mode_names_file_and_line(tmp_path):
    path = write_catalogs(tmp_path) / "netflix_titles.csv"
    with pytest.raises(
        catalogs.CatalogFormatError, match=r"netflix_titles\.csv:5: expected 12 fields"
    ):
        catalogs.read_catalog(path, catalogs.SERVICES[0], on_bad_row="raise")


def test_missing_columns_are_an_error(tmp_path):
    path = tmp_path / "netflix_titles.csv"
    path.write_text("show_id,title\ns1,X\n")
    with pytest.raises(catalogs.CatalogFormatError, match=r"netflix_titles\.csv:1: missing column"):
        catalogs.read_catalog(path, catalogs.SERVICES[0])


def test_matching_by_normalised_title_and_year():
    platform = pl.DataFrame(
        {
            "title_id": ["c:1", "c:2", "c:3", "c:4", "c:5", "c:6"],
            "title": ["Matrix, The", "the matrix", "THE MATRIX", "Dark", "Dark", "Amelie"],
            "year": [2000, 2003, 1999, 2020, 2015, 2001],
            "type": ["movie", "movie", "series", "series", "series", "movie"],
        }
    )
    got = dict(catalogs.match_to_tmdb(platform, tmdb_titles()).iter_rows())
    assert got == {
        "c:1": "movie:603",  # trailing article, year +1
        "c:4": "tv:70523",  # series dated by a later season
        "c:6": "movie:194",  # accents stripped
    }  # c:2 is 4 years off, c:3 is a series, c:5 predates the series


def test_attach_maps_offers_to_tmdb_and_collapses_unmatched_duplicates(tmp_path):
    load = catalogs.load_catalogs(write_catalogs(tmp_path))
    extra, availability, quarantine = catalogs.attach_to_tmdb(load, tmdb_titles())
    assert quarantine.height == 4
    offered = {(r["title_id"], r["provider_id"]) for r in availability.iter_rows(named=True)}
    assert ("movie:603", "netflix") in offered and ("movie:603", "amazonprime") in offered
    assert ("tv:70523", "netflix") in offered and ("movie:194", "netflix") in offered
    # "Odd Indie" is on Prime Video and Hulu but unknown to TMDB: one title, two offers
    assert extra["title_id"].to_list() == ["catalog:amazonprime:s8"]
    assert ("catalog:amazonprime:s8", "hulu") in offered
    assert not any(t.startswith("catalog:hulu:") for t, _ in offered)


@pytest.mark.realdata
def test_real_catalogues_read_and_match_tmdb_5000(shared_data):
    load = catalogs.load_catalogs(shared_data / "catalogs")
    assert load.rows_read == {
        "netflix_titles.csv": 8786,
        "amazon_prime_titles.csv": 9668,
        "disney_plus_titles.csv": 1444,
        "hulu_titles.csv": 2219,
    }
    assert load.titles.height + load.quarantine.height == 8786 + 9668 + 1444 + 2219
    tmdb = pl.read_csv(shared_data / "tmdb" / "tmdb_5000_movies.csv", infer_schema_length=0).select(
        pl.format("movie:{}", "id").alias("title_id"),
        pl.col("id").cast(pl.Int64).alias("tmdb_id"),
        pl.lit("movie").alias("type"),
        "title",
        "original_title",
        pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False).alias("year"),
        pl.col("popularity").cast(pl.Float64),
    )
    matched = catalogs.match_to_tmdb(load.titles, tmdb)
    movies = load.titles.filter(pl.col("type") == "movie").height
    rate = matched.height / movies
    # 3,000 mostly big-studio TMDB movies against ~15,900 catalogue movies: measured 6.4%
    assert 0.04 < rate < 0.10, f"match rate {rate:.3f} ({matched.height}/{movies})"
    assert matched["catalog_title_id"].is_unique().all()


def _platform(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "title_id": pl.String,
            "type": pl.String,
            "title": pl.String,
            "year": pl.Int32,
            "cast": pl.List(pl.String),
            "directors": pl.List(pl.String),
            "source": pl.String,
        },
        orient="row",
    )


def test_one_work_on_several_services_becomes_one_title():
    platform = _platform(
        [
            ("catalog:netflix:s1", "series", "Star Trek: The Next Generation", 1994,
             ["Patrick Stewart", "Brent Spiner"], [], "catalog:netflix"),
            ("catalog:amazonprime:s2", "series", "Vikings", 2020, ["Alexander Ludwig"], [],
             "catalog:amazonprime"),
            ("catalog:hulu:s3", "series", "Star Trek: The Next Generation", 1993,
             ["PATRICK STEWART"], [], "catalog:hulu"),
            ("catalog:hulu:s4", "series", "Vikings", 2011, [], [], "catalog:hulu"),
            # same name, both list people, none shared: two different series
            ("catalog:netflix:s5", "series", "The Office", 2005, ["Steve Carell"], [],
             "catalog:netflix"),
            ("catalog:hulu:s6", "series", "The Office", 2001, ["Ricky Gervais"], [],
             "catalog:hulu"),
            # films: close years merge, a remake 20 years later does not
            ("catalog:netflix:s7", "movie", "Odd Indie", 2015, [], [], "catalog:netflix"),
            ("catalog:hulu:s8", "movie", "Odd Indie", 2016, [], [], "catalog:hulu"),
            ("catalog:hulu:s9", "movie", "Odd Indie", 2036, [], [], "catalog:hulu"),
            # a shared director bridges a three-year gap
            ("catalog:netflix:s10", "movie", "Roma", 2018, [], ["Alfonso Cuarón"],
             "catalog:netflix"),
            ("catalog:disneyplus:s11", "movie", "Roma", 2021, [], ["Alfonso Cuaron"],
             "catalog:disneyplus"),
            # one service never lists one work twice: two rows of a service stay two works
            ("catalog:netflix:s12", "movie", "Twin", 2010, [], [], "catalog:netflix"),
            ("catalog:netflix:s13", "movie", "Twin", 2011, [], [], "catalog:netflix"),
        ]
    )  # fmt: skip
    got = dict(catalogs.work_clusters(platform).iter_rows())
    assert got["catalog:hulu:s3"] == got["catalog:netflix:s1"] == "catalog:netflix:s1"
    assert got["catalog:hulu:s4"] == got["catalog:amazonprime:s2"] == "catalog:amazonprime:s2"
    assert got["catalog:hulu:s6"] == "catalog:hulu:s6" != got["catalog:netflix:s5"]
    assert got["catalog:hulu:s8"] == "catalog:netflix:s7"
    assert got["catalog:hulu:s9"] == "catalog:hulu:s9"
    assert got["catalog:disneyplus:s11"] == "catalog:netflix:s10"
    assert got["catalog:netflix:s13"] == "catalog:netflix:s13"
    # a TMDB match of one row is the match of the whole work
    merged = dict(
        catalogs.merge_works(
            platform,
            pl.DataFrame({"catalog_title_id": ["catalog:hulu:s4"], "title_id": ["tv:44217"]}),
        ).iter_rows()
    )
    assert merged["catalog:amazonprime:s2"] == merged["catalog:hulu:s4"] == "tv:44217"
    assert merged["catalog:netflix:s1"] == "catalog:netflix:s1"
