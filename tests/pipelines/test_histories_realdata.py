"""The importers on the real reference data sets (../shared/data; marker ``realdata``)."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from core.schemas import empty
from pipelines.lib.histories.importer import parse_and_resolve

pytestmark = pytest.mark.realdata


def tmdb5000_titles(shared: Path) -> pl.DataFrame:
    """A small catalogue from the TMDB 5000 movies file (a test-local loader)."""
    df = pl.read_csv(shared / "tmdb" / "tmdb_5000_movies.csv", infer_schema=False)
    return df.select(
        title_id=pl.lit("movie:") + pl.col("id"),
        tmdb_id=pl.col("id").cast(pl.Int64),
        type=pl.lit("movie"),
        title="title",
        original_title="original_title",
        year=pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False),
        source=pl.lit("tmdb"),
    )


def netflix_catalog_titles(shared: Path) -> pl.DataFrame:
    """Titles of the Netflix platform catalogue snapshot (movies and series)."""
    df = pl.read_csv(shared / "catalogs" / "netflix_titles.csv", infer_schema=False)
    return df.select(
        title_id=pl.lit("catalog:netflix:") + pl.col("show_id"),
        tmdb_id=pl.lit(None, pl.Int64),
        type=pl.when(pl.col("type") == "TV Show").then(pl.lit("series")).otherwise(pl.lit("movie")),
        title="title",
        original_title=pl.lit(None, pl.String),
        year=pl.col("release_year").cast(pl.Int32, strict=False),
        source=pl.lit("catalog:netflix"),
    )


def test_ml_latest_small_all_events_resolve(shared_data: Path) -> None:
    start = time.perf_counter()
    events, unresolved, quarantine, summary = parse_and_resolve(
        "movielens", "ml", [shared_data / "movielens" / "ml-latest-small"], empty("titles")
    )
    elapsed = time.perf_counter() - start
    assert events.height == 100_836
    assert events["user_id"].n_unique() == 610
    assert unresolved.height == 0 and quarantine.height == 0
    assert summary.resolution_rate == 1.0
    assert events["event_id"].n_unique() == 100_836
    # 9,724 rated movieIds; two of them link to the same TMDB id (4912)
    assert events["title_id"].n_unique() == 9_723
    print(f"ml-latest-small: {events.height} events in {elapsed:.2f} s")


def test_ml_100k_events_and_catalogue_matches(shared_data: Path) -> None:
    catalogue = tmdb5000_titles(shared_data)
    events, unresolved, quarantine, _summary = parse_and_resolve(
        "movielens-100k", "k", [shared_data / "movielens" / "ml-100k"], catalogue
    )
    assert events.height == 99_999 and unresolved.height == 0 and quarantine.height == 0
    assert events["user_id"].n_unique() == 943
    matched = events.filter(pl.col("title_id").str.starts_with("movie:"))
    items = matched["title_id"].n_unique()
    print(f"ml-100k: {items} items matched to TMDB 5000 by title+year ({matched.height} events)")
    assert 250 < items < 1_682  # the 1990s titles present in a 3,000-movie TMDB sample


def test_netflix_profile_against_tmdb_and_platform_catalogue(shared_data: Path) -> None:
    catalogue = pl.concat([tmdb5000_titles(shared_data), netflix_catalog_titles(shared_data)])
    path = shared_data / "viewing-history" / "netflix" / "NetflixViewingHistory_profile_a.csv"
    tmdb_only = parse_and_resolve("netflix", "a", [path], tmdb5000_titles(shared_data))[3]
    events, _unresolved, _, summary = parse_and_resolve("netflix", "a", [path], catalogue)
    print(
        f"netflix profile_a: TMDB 5000 alone {tmdb_only.resolution_rate:.1%}; "
        f"+ Netflix catalogue {summary.resolution_rate:.1%} "
        f"({summary.resolved}/{summary.resolved + summary.unresolved}); "
        f"unresolved reasons {summary.unresolved_reasons}"
    )
    # Mostly TV episodes, which TMDB 5000 (movies only) cannot resolve.
    assert 0.02 < tmdb_only.resolution_rate < 0.3
    assert 0.4 < summary.resolution_rate <= 1.0
    assert summary.resolution_rate > tmdb_only.resolution_rate
    series = events.filter(
        pl.col("title_id").str.starts_with("catalog:netflix:") & pl.col("season").is_not_null()
    )
    assert series.height > 300  # episodes resolved to their series


@pytest.mark.parametrize(
    ("style", "encoding"),
    [("%d-%m-%y", "utf-8"), ("%d.%m.%Y", "utf-8"), ("%d/%m/%Y", "utf-16"), ("%Y-%m-%d", "cp1252")],
)
def test_netflix_profile_in_other_locales_resolves_the_same(
    shared_data: Path, tmp_path: Path, style: str, encoding: str
) -> None:
    """The real profile re-written in another locale's date form and encoding imports exactly
    like the US original: nothing quarantined, the same events resolved."""
    catalogue = pl.concat([tmdb5000_titles(shared_data), netflix_catalog_titles(shared_data)])
    path = shared_data / "viewing-history" / "netflix" / "NetflixViewingHistory_profile_a.csv"
    us_events, _, us_quarantine, us = parse_and_resolve("netflix", "a", [path], catalogue)
    rows = pl.read_csv(path, infer_schema=False).with_columns(
        pl.col("Date").str.to_date("%m/%d/%y").dt.strftime(style)
    )
    local = tmp_path / "NetflixViewingHistory.csv"
    text = rows.write_csv(quote_style="always").replace("\n", "\r\n")
    local.write_bytes(text.encode(encoding, errors="replace"))
    events, _, quarantine, summary = parse_and_resolve("netflix", "a", [local], catalogue)
    print(
        f"netflix profile_a as {style} {encoding}: resolution {summary.resolution_rate:.1%} "
        f"(US original {us.resolution_rate:.1%}); quarantined {quarantine.height}"
    )
    assert quarantine.height == us_quarantine.height
    assert summary.resolved == us.resolved and summary.unresolved == us.unresolved
    assert events["event_date"].sort().to_list() == us_events["event_date"].sort().to_list()
