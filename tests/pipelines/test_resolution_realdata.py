"""Resolution of the real Netflix profile before and after one work per title and the watch-date
rules, against catalogues built from ../shared/data (marker ``realdata``).

Kept apart from ``test_histories_realdata.py`` (the importers on real data): this file measures
catalogue matching. Figures are printed (``-s``) and stated in README.md.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from core.schemas import conform
from pipelines.lib import catalogs
from pipelines.lib.histories.importer import parse_and_resolve

pytestmark = pytest.mark.realdata

PROFILE = Path("viewing-history") / "netflix" / "NetflixViewingHistory_profile_a.csv"


def tmdb5000_titles(shared: Path) -> pl.DataFrame:
    """TMDB 5000 movies as TITLES rows (with popularity: platform rows match the most popular)."""
    df = pl.read_csv(shared / "tmdb" / "tmdb_5000_movies.csv", infer_schema=False)
    return conform(
        df.select(
            title_id=pl.lit("movie:") + pl.col("id"),
            tmdb_id=pl.col("id").cast(pl.Int64),
            type=pl.lit("movie"),
            title="title",
            original_title="original_title",
            year=pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False),
            release_date=pl.col("release_date").str.to_date(strict=False),
            popularity=pl.col("popularity").cast(pl.Float64),
            source=pl.lit("tmdb"),
        ),
        "titles",
    )


def merged_catalogue(shared: Path) -> pl.DataFrame:
    """TMDB 5000 + the four platform catalogues through the pipeline's own code: rows matched to
    TMDB, one work per real title (:func:`pipelines.lib.catalogs.merge_works`)."""
    tmdb = tmdb5000_titles(shared)
    extra, _availability, _quarantine = catalogs.attach_to_tmdb(
        catalogs.load_catalogs(shared / "catalogs"), tmdb
    )
    return pl.concat([tmdb, extra])


def test_netflix_profile_before_and_after_merging(shared_data: Path) -> None:
    path = shared_data / PROFILE
    tmdb = tmdb5000_titles(shared_data)
    tmdb_only = parse_and_resolve("netflix", "a", [path], tmdb)[3]
    load = catalogs.load_catalogs(shared_data / "catalogs")
    netflix_rows = load.titles.filter(pl.col("source") == "catalog:netflix")
    raw = parse_and_resolve("netflix", "a", [path], pl.concat([tmdb, netflix_rows]))[3]
    # the four catalogues' rows as they are, without matching or merging
    four_raw = parse_and_resolve("netflix", "a", [path], pl.concat([tmdb, load.titles]))[3]
    events, _unresolved, _, summary = parse_and_resolve(
        "netflix", "a", [path], merged_catalogue(shared_data)
    )
    print(
        f"\nnetflix profile_a ({summary.resolved + summary.unresolved} views): "
        f"TMDB 5000 alone {tmdb_only.resolution_rate:.1%} ({tmdb_only.resolved}); "
        f"+ Netflix catalogue rows {raw.resolution_rate:.1%} ({raw.resolved}); "
        f"+ four catalogues unmerged {four_raw.resolution_rate:.1%} ({four_raw.resolved}, "
        f"unresolved reasons {four_raw.unresolved_reasons}); "
        f"+ four catalogues merged {summary.resolution_rate:.1%} ({summary.resolved}); "
        f"matched by {summary.matched_by}; unresolved reasons {summary.unresolved_reasons}"
    )
    assert 0.02 < tmdb_only.resolution_rate < 0.3  # mostly episodes: TMDB 5000 has only movies
    assert summary.resolution_rate > four_raw.resolution_rate >= raw.resolution_rate
    assert raw.resolution_rate > tmdb_only.resolution_rate
    # one work per title: ambiguity is left to genuinely different works (two "Little Women")
    ambiguous = sum(n for r, n in summary.unresolved_reasons.items() if r.startswith("ambiguous"))
    assert ambiguous < 0.01 * (summary.resolved + summary.unresolved)
    assert sum(n for r, n in four_raw.unresolved_reasons.items() if r.startswith("ambiguous")) > (
        ambiguous
    )
    series = events.filter(
        pl.col("title_id").str.starts_with("catalog:") & pl.col("season").is_not_null()
    )
    assert series.height > 300  # episodes resolved to their series


def test_one_work_per_title_across_the_four_catalogues(shared_data: Path) -> None:
    catalogue = merged_catalogue(shared_data)
    for name in ("Star Trek: The Next Generation", "Vikings"):
        rows = catalogue.filter((pl.col("title") == name) & (pl.col("type") == "series"))
        assert rows.height == 1, rows.select("title_id", "year")
