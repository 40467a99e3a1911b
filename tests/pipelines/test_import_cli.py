"""`media-gateway import-history` end to end on a tiny file (typer CliRunner)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from core.lake import read_table, write_table
from media_gateway.cli import app


def _lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    write_table(
        lake,
        "titles",
        pl.DataFrame(
            {"title_id": ["movie:949"], "type": ["movie"], "title": ["Heat"], "year": [1995]}
        ),
    )
    return lake


def test_import_history_cli(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text('Title,Date\n"Heat","1/4/20"\n"Nope","1/5/20"\n')
    args = [
        "import-history",
        "--format",
        "netflix",
        "--user",
        "cli-user",
        "--lake",
        str(lake),
        str(path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "resolution rate" in result.output and "50.0%" in result.output
    events = read_table(lake, "watch_events")
    assert events.select("user_id", "title_id").rows() == [("cli-user", "movie:949")]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0
    assert read_table(lake, "watch_events").height == 1


def test_import_history_cli_bad_file(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    path = tmp_path / "ratings.csv"
    path.write_text("something,else\n1,2\n")
    result = CliRunner().invoke(
        app, ["import-history", "-f", "imdb", "-u", "u", "--lake", str(lake), str(path)]
    )
    assert result.exit_code == 2
    flat = " ".join(result.output.split())  # rich wraps long lines
    assert "import failed" in flat and "ratings.csv:1: missing column(s) Const" in flat


def _run(lake: Path, path: Path, *extra: str) -> tuple[int, str]:
    args = ["import-history", "-f", "netflix", "-u", "u", "--lake", str(lake), *extra, str(path)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def _lake_files(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))


def test_date_format_from_the_help_text_works(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text('Title,Date\n"Heat","04/01/20"\n')
    code, out = _run(lake, path, "--date-format", "%d/%m/%y")
    assert code == 0, out
    events = read_table(lake, "watch_events")
    assert events["event_date"].cast(pl.String).to_list() == ["2020-01-04"]
    code, out = _run(lake, path, "--date-format", "%B")
    assert code == 2 and "--date-format: unknown date format '%B'" in out


def test_everything_quarantined_fails_with_the_reason_and_writes_nothing(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    before = _lake_files(lake)
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text('Title,Date\n"Heat","31/31/23"\n"Dark","40-06-23"\n')
    code, out = _run(lake, path)
    assert code == 2
    assert "nothing to import: none of the 2 data rows is usable: 2 quarantined" in out
    assert "Date is not a M/D/YY date" in out
    assert "firstat" in out.replace(" ", "") and "NetflixViewingHistory.csv:2)" in out.replace(
        " ", ""
    )
    assert "resolution rate (incl. quarantined) │ 0.0%" in out
    assert _lake_files(lake) == before


def test_summary_counts_quarantined_rows_and_shows_warnings(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text('Title,Date\n"Heat","03-02-23"\n"Heat","02-01-23"\n"Bad","xx"\n')
    code, out = _run(lake, path)
    assert code == 0, out
    for row in ("read │ 3", "parsed │ 2", "quarantined │ 1", "resolved │ 2", "unresolved │ 0"):
        assert row in out
    assert "resolution rate (incl. quarantined) │ 66.7%" in out
    assert "warning:" in out and "read as D/M/YY" in out


def test_nothing_resolved_is_imported_with_a_warning(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text('Title,Date\n"Nope","1/4/20"\n')
    code, out = _run(lake, path)
    assert code == 0
    assert "warning: none of the 1 events matched a catalogue title (1 titles)" in out
    assert read_table(lake, "unresolved_events").height == 1
