"""normalize_title and TitleResolver on a hand-made catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.lib.matching import CatalogueError, TitleResolver, normalize_title


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
    assert resolver.resolve_one("Dark").reason == "ambiguous: 2 candidates"


def test_titles_released_after_the_watch_are_excluded(resolver: TitleResolver) -> None:
    assert resolver.resolve_one("Dumbo", watched_year=2015).title_id == "movie:9"
    assert resolver.resolve_one("Dumbo", watched_year=2020).reason == "ambiguous: 2 candidates"


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
