"""normalize_title and TitleResolver on a hand-made catalogue."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from pipelines.lib.matching import CatalogueError, TitleResolver, normalize_title, title_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "The Lord of the Rings: The Return of the King",
            "lord of the rings the return of the king",
        ),
        ("Usual Suspects, The", "usual suspects"),
        ("Amélie", "amelie"),
        ("Léon: The Professional", "leon the professional"),
        ("Marley & Me", "marley and me"),
        ("Don't Look Up", "dont look up"),
        ("To All the Boys I’ve Loved Before", "to all the boys ive loved before"),
        ("  An   Officer and a Gentleman ", "officer and a gentleman"),
        ("A", "a"),
        ("Ｆｕｌｌ Ｍｅｔａｌ", "full metal"),
        ("Straße", "strasse"),
        ("鬼滅の刃: シーズン", "鬼滅の刃 シーズン"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_title(raw: str | None, expected: str) -> None:
    assert normalize_title(raw) == expected


def _catalogue() -> pl.DataFrame:
    rows = [
        ("movie:1", 1, "tt001", "movie", "Dune", None, 1984, "tmdb"),
        ("movie:2", 2, "tt002", "movie", "Dune", None, 2021, "tmdb"),
        ("movie:3", 3, None, "movie", "Heat", None, 1995, "tmdb"),
        ("tv:3", 3, None, "series", "Dark", None, 2017, "tmdb"),
        ("movie:4", 4, None, "movie", "Dark", None, 2005, "tmdb"),
        (
            "movie:5",
            5,
            None,
            "movie",
            "Amélie",
            "Le Fabuleux Destin d'Amélie Poulain",
            2001,
            "tmdb",
        ),
        ("catalog:netflix:s1", None, None, "movie", "Amelie", None, 2001, "catalog:netflix"),
        ("movie:6", 6, None, "movie", "Alone", None, 2020, "tmdb"),
        ("movie:7", 7, None, "movie", "Alone", None, 2020, "tmdb"),
        ("ml:99", None, None, "movie", "Obscure Film", None, 1999, "movielens"),
        ("movie:8", 8, None, "movie", "Dumbo", None, 2019, "tmdb"),
        ("movie:9", 9, None, "movie", "Dumbo", None, 1941, "tmdb"),
        ("movie:10", 10, None, "movie", "Crash", None, 1996, "tmdb"),
        ("movie:11", 11, None, "movie", "Crash", None, 2004, "tmdb"),
        ("tv:12", 12, None, "series", "The Five", None, 2016, "tmdb"),
        ("movie:13", 13, None, "movie", "The Gift", None, 2005, "tmdb"),
        ("movie:14", 14, None, "movie", "The Gift", None, 2025, "tmdb"),
        ("catalog:hulu:s2", None, None, "series", "Vikings", None, 2020, "catalog:hulu"),
    ]
    cols = ["title_id", "tmdb_id", "imdb_id", "type", "title", "original_title", "year", "source"]
    return pl.DataFrame(rows, schema=cols, orient="row")


@pytest.fixture(scope="module")
def resolver() -> TitleResolver:
    return TitleResolver(_catalogue())


def test_ids_first_and_type_must_agree(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("whatever", tmdb_id=3, title_type="series").title_id == "tv:3"
    assert resolver.resolve_one("whatever", tmdb_id=3, title_type="movie").title_id == "movie:3"
    assert resolver.resolve_one("x", imdb_id="tt002").title_id == "movie:2"
    got = resolver.resolve_one("x", native_id="ml:99")
    assert (got.title_id, got.match) == ("ml:99", "native")


def test_title_and_year_exact_then_plus_minus_one(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Dune", year=2021).title_id == "movie:2"
    one_off = resolver.resolve_one("Dune", year=1985)
    assert (one_off.title_id, one_off.match) == ("movie:1", "title+year±1")
    assert resolver.resolve_one("Dune", year=2000).reason == "no title match in year 2000±1"


def test_title_alone_only_when_unique(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("heat").title_id == "movie:3"
    assert resolver.resolve_one("Dune").reason == "ambiguous: 2 candidates"
    assert resolver.resolve_one("Nothing Like It").reason == "no title match"


def test_series_only_match_series(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Dark", title_type="series").title_id == "tv:3"
    assert resolver.resolve_one("Dark", title_type="movie").title_id == "movie:4"
    # a bare title without an episode part is the film when there is one
    assert resolver.resolve_one("Dark").title_id == "movie:4"


def test_titles_released_after_the_watch_are_excluded(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Dumbo", watched_year=2015).title_id == "movie:9"
    # watched a year after the remake came out: the remake
    got = resolver.resolve_one("Dumbo", watched_year=2020)
    assert (got.title_id, got.match) == ("movie:8", "title, latest before watch")
    assert resolver.resolve_one("Heat", watched_year=1990).reason == (
        "no title match released by 1990"
    )


def test_the_watch_date_picks_the_recent_release_never_a_later_one(
    resolver: TitleResolver,
) -> None:
    got = resolver.resolve_one("The Gift", watched_year=2025)
    assert (got.title_id, got.match) == ("movie:14", "title, latest before watch")
    assert resolver.resolve_one("The Gift", watched_year=2010).title_id == "movie:13"
    # the newest same-named film came out long before the watch: no guess
    assert resolver.resolve_one("Crash", watched_year=2019).reason == "ambiguous: 2 candidates"
    # a platform catalogue dates a series by its latest season: not excluded by the watch date
    assert resolver.resolve_one("Vikings", watched_year=2015).title_id == "catalog:hulu:s2"


def test_a_leading_article_is_part_of_the_title(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Five").reason == "no title match"
    assert resolver.resolve_one("The Five").title_id == "tv:12"
    assert resolver.resolve_one("Five, The").title_id == "tv:12"
    assert title_key("Five, The") == title_key("the five") != title_key("Five")


def test_same_work_from_two_sources_prefers_tmdb(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Amelie", year=2001).title_id == "movie:5"
    assert resolver.resolve_one("Le fabuleux destin d'Amelie Poulain").title_id == "movie:5"
    # two TMDB records with one title and year are different works: ambiguous
    assert resolver.resolve_one("Alone", year=2020).reason == "ambiguous: 2 candidates"


def test_unknown_ids_and_episodes_explain_themselves(resolver: TitleResolver) -> None:
    assert (
        resolver.resolve_one("Nope", tmdb_id=12345).reason
        == "no title match (ids not in catalogue)"
    )
    assert resolver.resolve_one("Heat", tmdb_id=12345, title_type="movie").title_id == "movie:3"
    assert resolver.resolve_one("Ozymandias", title_type="episode").reason == (
        "episode without series title"
    )
    assert resolver.resolve_one("  ").reason == "no title"


def test_resolve_frame_keeps_order_and_length(resolver: TitleResolver) -> None:
    events = pl.DataFrame(
        {
            "raw_title": ["Heat", "Dune", "Heat", None, "Dumbo"],
            "year": [None, 2021, None, None, None],
            "title_type": [None, "movie", None, None, None],
            "event_time": [datetime(2016, 1, 1, tzinfo=UTC)] * 5,
        },
        schema_overrides={"year": pl.Int32},
    )
    out = resolver.resolve(events)
    assert out.height == 5
    assert out["title_id"].to_list() == ["movie:3", "movie:2", "movie:3", None, "movie:9"]
    assert out["reason"].to_list()[3] == "no title"


def test_catalogue_without_required_columns_is_rejected() -> None:
    with pytest.raises(CatalogueError, match="type"):
        TitleResolver(pl.DataFrame({"title_id": ["a"], "title": ["A"]}))


def test_aliases_match_when_no_title_does() -> None:
    alias = pl.Struct({"country": pl.String, "language": pl.String, "title": pl.String})
    titles = pl.DataFrame(
        {
            "title_id": ["movie:76341", "tv:80968", "movie:1"],
            "type": ["movie", "series", "movie"],
            "title": ["Mad Max: Fury Road", "Narcos: Mexico", "Estrada"],
            "year": [2015, 2018, 1999],
            "aliases": [
                [{"country": "BR", "language": "pt", "title": "Mad Max: Estrada da Fúria"}],
                [
                    {"country": "PL", "language": "pl", "title": "Narcos: Meksyk"},
                    {"country": "PL", "language": None, "title": "Estrada"},
                ],
                None,
            ],
        },
        schema_overrides={"aliases": pl.List(alias), "year": pl.Int32},
    )
    resolver = TitleResolver(titles)
    got = resolver.resolve_one("Mad Max: Estrada da Furia", watched_year=2023)
    assert (got.title_id, got.match) == ("movie:76341", "alias title")
    got = resolver.resolve_one("Narcos: Meksyk", title_type="series")
    assert (got.title_id, got.match) == ("tv:80968", "alias title")
    # a real title wins over another work's alias
    assert resolver.resolve_one("Estrada").title_id == "movie:1"


def test_release_dates_decide_within_the_watch_year() -> None:
    titles = pl.DataFrame(
        {
            "title_id": ["movie:653", "movie:426063"],
            "type": ["movie", "movie"],
            "title": ["Nosferatu", "Nosferatu"],
            "year": [1922, 2024],
            "release_date": [date(1922, 2, 16), date(2024, 12, 25)],
        },
        schema_overrides={"year": pl.Int32},
    )
    resolver = TitleResolver(titles)
    # watched in June 2024: the Christmas 2024 film was not out yet
    got = resolver.resolve_one("Nosferatu", watched_on=date(2024, 6, 1))
    assert (got.title_id, got.match) == ("movie:653", "title")
    got = resolver.resolve_one("Nosferatu", watched_on=date(2025, 1, 10))
    assert (got.title_id, got.match) == ("movie:426063", "title, latest before watch")
    events = pl.DataFrame(
        {
            "raw_title": ["Nosferatu", "Nosferatu"],
            "event_time": [datetime(2024, 6, 1, tzinfo=UTC), datetime(2025, 1, 10, tzinfo=UTC)],
        }
    )
    assert resolver.resolve(events)["title_id"].to_list() == ["movie:653", "movie:426063"]
