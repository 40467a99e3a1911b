"""import_files / parse_and_resolve: resolution, idempotent appends, late resolution, errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rich.table import Table

from core.lake import read_columns, read_table, write_table
from core.schemas import validate
from pipelines.lib.histories.importer import (
    HistoryImportError,
    import_files,
    parse_and_resolve,
)

HISTORY = (
    "Title,Date\n"
    '"Dark: Season 1: Secrets","1/2/20"\n'
    '"Dark: Season 1: Lies","1/3/20"\n'
    '"Heat","1/4/20"\n'
    '"Some Unknown Film","1/5/20"\n'
    '"Broken line","99/99/99"\n'
)


def _titles(with_unknown: bool = False) -> pl.DataFrame:
    rows = [
        ("tv:70523", 70523, "series", "Dark", 2017, 55),
        ("movie:949", 949, "movie", "Heat", 1995, 170),
    ]
    if with_unknown:
        rows.append(("movie:5", 5, "movie", "Some Unknown Film", 2010, 100))
    return pl.DataFrame(
        rows,
        schema={
            "title_id": pl.String,
            "tmdb_id": pl.Int64,
            "type": pl.String,
            "title": pl.String,
            "year": pl.Int32,
            "runtime": pl.Int32,
        },
        orient="row",
    )


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text(HISTORY)
    return path


def _files(lake: Path) -> dict[str, int]:
    return {str(p.relative_to(lake)): p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}


def test_import_resolves_and_reimport_adds_nothing(tmp_path: Path, history: Path) -> None:
    lake = tmp_path / "lake"
    first = import_files("netflix", "alice", [history], lake, titles=_titles())
    assert (first.read, first.resolved, first.unresolved, first.quarantined) == (5, 3, 1, 1)
    assert first.added == {"watch_events": 3, "unresolved_events": 1, "quarantine": 1}
    assert first.unresolved_reasons == {"no title match": 1}
    assert first.parsed == 4
    assert first.resolution_rate == pytest.approx(3 / 5)  # the quarantined row counts as a miss
    events = read_table(lake, "watch_events")
    validate(events, "watch_events")
    assert sorted(events["title_id"].to_list()) == ["movie:949", "tv:70523", "tv:70523"]
    assert set(events["import_batch"].to_list()) == {first.batch_id}
    q = read_table(lake, "quarantine").row(0, named=True)
    assert (q["line"], q["file"]) == (6, str(history))
    before = _files(lake)
    assert set(before) == {
        f"{t}/batch={first.batch_id}.parquet"
        for t in ("watch_events", "unresolved_events", "quarantine")
    }

    second = import_files("netflix", "alice", [history], lake, titles=_titles())
    assert second.added == {"watch_events": 0, "unresolved_events": 0, "quarantine": 0}
    assert second.duplicates_skipped == 4
    assert _files(lake) == before  # nothing rewritten, no empty files
    assert read_table(lake, "watch_events").height == 3


def test_late_resolution_moves_event_out_of_unresolved(tmp_path: Path, history: Path) -> None:
    lake = tmp_path / "lake"
    import_files("netflix", "alice", [history], lake, titles=_titles(), batch_id="day1")
    later = import_files("netflix", "alice", [history], lake, titles=_titles(True), batch_id="day2")
    assert later.added["watch_events"] == 1 and later.added["unresolved_events"] == 0
    assert read_table(lake, "unresolved_events").is_empty()
    assert not (lake / "unresolved_events" / "batch=day1.parquet").exists()
    events = read_table(lake, "watch_events")
    assert events.height == 4 and events["event_id"].n_unique() == 4


def test_rerun_with_same_batch_id_merges(tmp_path: Path, history: Path) -> None:
    lake = tmp_path / "lake"
    import_files("netflix", "alice", [history], lake, titles=_titles(), batch_id="b1")
    other = tmp_path / "other.csv"
    other.write_text('Title,Date\n"Heat","2/4/20"\n')
    import_files("netflix", "alice", [other], lake, titles=_titles(), batch_id="b1")
    part = pl.read_parquet(lake / "watch_events" / "batch=b1.parquet")
    assert part.height == 4


def test_titles_default_to_the_lake_table(tmp_path: Path, history: Path) -> None:
    lake = tmp_path / "lake"
    write_table(lake, "titles", _titles())
    summary = import_files("netflix", "bob", [history], lake)
    assert summary.resolved == 3


def test_parse_and_resolve_writes_nothing_and_derives_completion(tmp_path: Path) -> None:
    path = tmp_path / "ViewingActivity.csv"
    path.write_text(
        "Profile Name,Start Time,Duration,Attributes,Title,Supplemental Video Type,Device Type,"
        "Bookmark,Latest Bookmark,Country\n"
        "Ann,2021-07-11 18:04:01,01:25:00,,Heat,,TV,01:25:00,,US\n"
        "Ann,2021-07-12 18:04:01,00:02:00,,Heat: Trailer,TRAILER,TV,00:02:00,,US\n"
    )
    events, unresolved, quarantine, summary = parse_and_resolve(
        "netflix-activity", "fam", [path], _titles(), profile="Ann"
    )
    validate(events, "watch_events")
    validate(unresolved, "unresolved_events")
    validate(quarantine, "quarantine")
    row = events.row(0, named=True)
    assert row["user_id"] == "fam" and row["title_id"] == "movie:949"
    assert row["completion"] == pytest.approx(85 / 170)
    assert row["weight"] == pytest.approx(0.25 + 0.75 * 0.5)
    assert summary.dropped_reasons == {"supplemental video (TRAILER)": 1}
    assert not list(tmp_path.rglob("*.parquet"))
    assert isinstance(summary.as_table(), Table)
    meta = summary.as_metadata()
    assert meta["dropped"] == 1 and meta["dropped[supplemental video (TRAILER)]"] == 1
    assert all(isinstance(v, int | float | str) for v in meta.values())


def test_movielens_titles_are_written_for_the_pipeline(tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n2,2,1.0,964982704\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Heat (1995),Action\n2,Obscure (1990),Drama\n"
    )
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0113277,949\n2,0000002,\n")
    lake = tmp_path / "lake"
    summary = import_files("movielens", "ml", [folder], lake, titles=_titles())
    assert (summary.resolved, summary.unresolved, summary.users) == (2, 0, 2)
    events = read_table(lake, "watch_events").sort("user_id")
    assert events.select("user_id", "title_id").rows() == [("ml-1", "movie:949"), ("ml-2", "ml:2")]
    ml_titles = pl.read_parquet(lake / "movielens_titles" / "source=movielens.parquet")
    assert sorted(ml_titles["title_id"].to_list()) == ["ml:2", "movie:949"]
    again = import_files("movielens", "ml", [folder], lake, titles=_titles())
    assert again.added["watch_events"] == 0


def test_bad_inputs_raise_typed_errors_naming_the_file(tmp_path: Path, history: Path) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(HistoryImportError, match="unknown format 'myspace'"):
        import_files("myspace", "u", [history], lake, titles=_titles())
    with pytest.raises(HistoryImportError, match="missing.csv: no such file"):
        import_files("netflix", "u", [tmp_path / "missing.csv"], lake, titles=_titles())
    with pytest.raises(
        HistoryImportError,
        match=r"NetflixViewingHistory\.csv: looks like a Netflix viewing history CSV .* "
        r"not an IMDb ratings\.csv; use --format netflix",
    ):
        import_files("imdb", "u", [history], lake, titles=_titles())
    with pytest.raises(HistoryImportError, match="no netflix files"):
        import_files("netflix", "u", [], lake, titles=_titles())
    assert not lake.exists() or not list(lake.rglob("*.parquet"))


# unresolved_events and quarantine columns as written before late resolution and erasure added some
OLD_UNRESOLVED = [
    "event_id",
    "user_id",
    "raw_title",
    "year",
    "source",
    "event_time",
    "reason",
    "import_batch",
]
OLD_QUARANTINE = ["file", "line", "source", "raw", "reason", "import_batch"]


def test_imports_on_a_lake_with_partitions_that_predate_new_columns(
    tmp_path: Path, history: Path
) -> None:
    """An upgraded CLI importing twice before the first upgraded nightly: old-schema partitions
    and the new ones the first import wrote must be read together (missing columns as null)."""
    scratch = tmp_path / "scratch"
    import_files("netflix", "alice", [history], scratch, titles=_titles(), batch_id="s")
    lake = tmp_path / "lake"
    for table, columns in (("unresolved_events", OLD_UNRESOLVED), ("quarantine", OLD_QUARANTINE)):
        old = pl.read_parquet(scratch / table / "batch=s.parquet").select(columns)
        (lake / table).mkdir(parents=True)
        old.write_parquet(lake / table / "batch=2026-01-01-old.parquet")  # sorts first

    other = tmp_path / "other.csv"
    other.write_text('Title,Date\n"Another Unknown Film","2/4/20"\n"Bad","99/99/99"\n')
    first = import_files("netflix", "alice", [other], lake, titles=_titles(), batch_id="2026-02-a")
    assert first.added == {"watch_events": 0, "unresolved_events": 1, "quarantine": 1}

    second = import_files(
        "netflix", "alice", [history], lake, titles=_titles(), batch_id="2026-02-b"
    )
    # the old partitions' rows are recognised: neither the unresolved nor the bad row comes twice
    assert second.added == {"watch_events": 3, "unresolved_events": 0, "quarantine": 0}
    unresolved = read_table(lake, "unresolved_events").sort("raw_title")
    assert unresolved["raw_title"].to_list() == ["Another Unknown Film", "Some Unknown Film"]
    assert unresolved["original_title"].to_list()[1] is None  # predates the column
    assert read_table(lake, "quarantine").height == 2


@pytest.mark.parametrize("old_name", ["batch=a-old", "batch=z-old"])
def test_read_columns_mixes_old_and_new_partitions_in_either_order(
    tmp_path: Path, old_name: str
) -> None:
    folder = tmp_path / "unresolved_events"
    folder.mkdir()
    pl.DataFrame({"event_id": ["old"], "reason": ["no title match"]}).write_parquet(
        folder / f"{old_name}.parquet"
    )
    new = pl.DataFrame({"event_id": ["new"], "reason": ["x"], "tmdb_id": [7]})
    new.write_parquet(folder / "batch=m-new.parquet")
    got = read_columns(tmp_path, "unresolved_events", ["event_id", "tmdb_id"]).sort("event_id")
    assert got.rows() == [("new", 7), ("old", None)]
    assert got.schema == {"event_id": pl.String, "tmdb_id": pl.Int64}
    empty = read_columns(tmp_path / "nowhere", "unresolved_events", ["event_id"])
    assert empty.is_empty() and empty.columns == ["event_id"]
