"""Late resolution: waiting history rows looked up on TMDB (search by title and year, find by IMDb
id) through the recorded TMDB source (the catalogue's in the sample), then moved to ``watch_events``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from core.lake import read_table
from core.schemas import conform
from core.settings import Settings
from pipelines.defs.catalog.assets import tmdb_late_titles
from pipelines.defs.resources import resources_for
from pipelines.lib import late_resolution, sources
from pipelines.lib.histories.importer import import_files
from tests.conftest import write_tmp_overlay

NETFLIX = """Title,Date
"Nosferatu","2/1/25"
"Narcos: Meksyk: Sezon 1: Camelot","3/1/25"
"Grandma's 80th Birthday: The Movie","4/1/25"
"Inception","5/1/25"
"""
IMDB = (
    "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,"
    "Num Votes,Release Date,Directors\n"
    "tt0013442,6,2024-03-03,Nosferatu,https://www.imdb.com/title/tt0013442/,Movie,7.8,94,1922,"
    '"Fantasy, Horror",2100,1922-02-16,F.W. Murnau\n'
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The sample's TMDB titles as the nightly fetches them (recorded mode)."""
    from core.settings import load_settings, workspace_paths

    root = tmp_path_factory.mktemp("late")
    settings = load_settings(
        "configs/sample.yaml", overrides={"paths": workspace_paths(root / "var")}
    )
    with sources.tmdb_client(settings) as client:
        return sources.fetch_tmdb_titles(client, settings.sources.tmdb.discover_pages)


def _import_waiting_rows(lake: Path, folder: Path, catalogue: pl.DataFrame) -> None:
    (folder / "NetflixViewingHistory.csv").write_text(NETFLIX, encoding="utf-8")
    (folder / "ratings.csv").write_text(IMDB, encoding="utf-8")
    netflix = import_files(
        "netflix", "pl-user", [folder / "NetflixViewingHistory.csv"], lake, titles=catalogue
    )
    imdb = import_files("imdb", "pl-user", [folder / "ratings.csv"], lake, titles=catalogue)
    assert (netflix.resolved, netflix.unresolved, imdb.unresolved) == (1, 3, 1)


def test_tmdb_finds_what_the_catalogue_lacks_and_waiting_rows_resolve(
    settings: Settings, catalogue: pl.DataFrame, tmp_path: Path
) -> None:
    lake = settings.paths.lake
    _import_waiting_rows(lake, tmp_path, catalogue)
    waiting = read_table(lake, "unresolved_events")
    assert set(waiting["reason"]) == {"no title match", "no title match (ids not in catalogue)"}

    found = sources.fetch_late_titles(partial(sources.tmdb_client, settings), waiting, None)
    assert sorted(found.titles["title_id"]) == ["movie:426063", "movie:653", "tv:80968"]
    assert found.rows_waiting == 4 and found.queries_asked == 6  # a bare title: film and series
    late = late_resolution.merge_late_titles(lake, found.titles)
    counts = late_resolution.resolve_waiting(
        lake, pl.concat([conform(catalogue, "titles"), late]), "2026-12-02-late"
    )
    assert counts == {"waiting": 4, "resolved": 3, "still_unresolved": 1}

    events = read_table(lake, "watch_events")
    got = dict(
        events.filter(pl.col("raw_title") == "Nosferatu").select("source", "title_id").iter_rows()
    )
    # a bare "Nosferatu" watched in 2025 is the 2024 film, not the 1922 one (found by IMDb id)
    assert got["netflix"] == "movie:426063" and got["imdb"] == "movie:653"
    narcos = events.filter(pl.col("raw_title") == "Narcos: Meksyk")  # its Polish translation
    assert narcos["title_id"].to_list() == ["tv:80968"]
    assert (narcos["season"].item(), narcos["episode_title"].item()) == (1, "Camelot")
    rated = events.filter(pl.col("title_id") == "movie:653").row(0, named=True)
    assert (rated["rating"], rated["rating_scale"]) == (6.0, 10.0)
    assert rated["weight"] == pytest.approx(0.1 + 0.9 * 0.6 / 0.7)
    assert rated["import_batch"] == "2026-12-02-late"
    # what TMDB does not know stays waiting with its reason; nothing is in both tables
    left = read_table(lake, "unresolved_events")
    assert left.select("raw_title", "reason").rows() == [
        ("Grandma's 80th Birthday: The Movie", "no title match")
    ]
    assert not set(left["event_id"]) & set(events["event_id"])

    # the next night does not ask again (logged), and nothing moves twice
    again = sources.fetch_late_titles(partial(sources.tmdb_client, settings), left, found.lookups)
    assert (again.queries_asked, again.queries_skipped, again.titles.height) == (0, 2, 0)
    with sources.tmdb_client(settings) as client:
        month_later = late_resolution.lookup_missing_titles(
            client, left, found.lookups, now=datetime.now(UTC) + timedelta(days=31)
        )
    assert (month_later.queries_asked, month_later.titles.height) == (2, 0)
    assert late_resolution.resolve_waiting(
        lake, pl.concat([conform(catalogue, "titles"), late]), "2026-12-03-late"
    ) == {"waiting": 1, "resolved": 0, "still_unresolved": 1}
    assert read_table(lake, "watch_events").height == events.height


def test_the_late_titles_asset_asks_tmdb_in_a_dagster_run(
    catalogue: pl.DataFrame, tmp_path: Path
) -> None:
    from core.settings import load_settings

    overlay = write_tmp_overlay(tmp_path)
    settings = load_settings("configs/sample.yaml", str(overlay))
    _import_waiting_rows(settings.paths.lake, tmp_path, catalogue)
    resources = resources_for(f"configs/sample.yaml,{overlay}")
    result = dg.materialize([tmdb_late_titles], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("tmdb_late_titles")[0].metadata
    assert meta["titles_added"].value == 3 and meta["tmdb_queries"].value == 6
    lake = settings.paths.lake
    assert read_table(lake, "tmdb_late_titles").height == 3
    assert read_table(lake, "tmdb_lookups").height == 6
    # a rerun asks nothing and keeps the titles
    again = dg.materialize([tmdb_late_titles], resources=resources)
    meta = again.asset_materializations_for_node("tmdb_late_titles")[0].metadata
    assert meta["tmdb_queries"].value == 0 and meta["rows"].value == 3


def test_rows_with_a_tmdb_id_are_fetched_by_id(settings: Settings) -> None:
    waiting = conform(
        pl.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "raw_title": ["Narcos: Mexico", "Deleted Film", "Nosferatu"],
                "title_type": ["series", "movie", "movie"],
                "tmdb_id": [80968, 999_999_999, None],
                "reason": ["no title match (ids not in catalogue)"] * 2
                + ["ambiguous: 2 candidates"],
                "event_time": [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
            }
        ),
        "unresolved_events",
    )
    with sources.tmdb_client(settings) as client:
        found = late_resolution.lookup_missing_titles(client, waiting)
    # by id, no search; a TMDB id that is gone (404) finds nothing; ambiguity is not a lookup
    assert found.titles["title_id"].to_list() == ["tv:80968"]
    assert sorted(found.lookups["query"]) == ["details:movie:999999999", "details:tv:80968"]
    assert dict(found.lookups.select("query", "titles_kept").iter_rows()) == {
        "details:movie:999999999": 0,
        "details:tv:80968": 1,
    }


def test_partitions_from_before_the_new_columns_are_read_and_upgraded(
    catalogue: pl.DataFrame, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    folder = lake / "unresolved_events"
    folder.mkdir(parents=True)
    old_columns = ["event_id", "user_id", "raw_title", "year", "source", "event_time", "reason"]
    old = conform(
        pl.DataFrame(
            {
                "event_id": ["old1", "old2"],
                "user_id": ["u", "u"],
                "raw_title": ["Inception", "Grandma's 80th Birthday: The Movie"],
                "source": ["netflix", "netflix"],
                "event_time": [datetime(2020, 1, 1, tzinfo=UTC)] * 2,
                "reason": ["no title match"] * 2,
            }
        ),
        "unresolved_events",
    ).select(*old_columns, "import_batch")
    old.write_parquet(folder / "batch=2020-01-01-a.parquet")
    new = conform(old.tail(1).with_columns(event_id=pl.lit("new1")), "unresolved_events")
    new.write_parquet(folder / "batch=2026-12-01-b.parquet")
    assert read_table(lake, "unresolved_events").height == 3  # mixed schemas read as one table
    counts = late_resolution.resolve_waiting(lake, catalogue, "2026-12-02-late")
    assert counts == {"waiting": 3, "resolved": 1, "still_unresolved": 2}
    assert read_table(lake, "watch_events")["title_id"].to_list() == ["movie:27205"]
    for path in folder.glob("*.parquet"):  # every partition is in the current schema now
        assert pl.read_parquet(path).columns == list(conform(old, "unresolved_events").columns)
