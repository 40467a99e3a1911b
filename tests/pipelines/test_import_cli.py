"""`media-gateway import-history` end to end on a tiny file (typer CliRunner)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from media_gateway.cli import app
from pipelines.lib.lake import read_table, write_table


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
