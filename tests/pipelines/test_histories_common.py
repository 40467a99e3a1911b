"""Shared parser pieces: CSV lines, decoding errors, implicit weights, stable event ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.histories.common import (
    HistoryImportError,
    conform_events,
    implicit_weight,
    parse_delimited,
    with_event_ids,
)
from pipelines.lib.histories.files import read_export


def test_line_numbers_follow_quoted_newlines() -> None:
    text = 'Title,Date\n"A\nmultiline title","1/1/20"\n"B","1/2/20"\n"C"\n'
    table, bad = parse_delimited(text, "f.csv", required=("Title", "Date"), source="netflix")
    assert table.rows["line"].to_list() == [2, 4]
    assert table.rows["line_end"].to_list() == [3, 4]
    assert bad.select("line", "raw", "reason").rows() == [(5, '"C"', "expected 2 fields, found 1")]


def test_unterminated_quote_is_a_file_error() -> None:
    with pytest.raises(HistoryImportError, match=r"f\.csv:\d+: malformed CSV"):
        parse_delimited(
            'Title,Date\n"A,1/1/20\n"B","x"\n', "f.csv", required=("Title",), source="x"
        )


def test_empty_file_is_an_error() -> None:
    with pytest.raises(HistoryImportError, match="f.csv: file is empty"):
        parse_delimited("", "f.csv", required=("Title",), source="x")


def test_non_utf8_bytes_are_windows_1252_and_missing_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"Title,Date\nok,1/1/20\n\xc9lite,1/2/20\n")
    text = read_export(path)
    assert text.encoding == "cp1252" and text.text.split("\n")[2] == "Élite,1/2/20"
    with pytest.raises(HistoryImportError, match="missing.csv: no such file"):
        read_export(tmp_path / "missing.csv")


def _weights(rows: list[tuple]) -> list[float]:
    df = pl.DataFrame(
        rows,
        schema={
            "rating": pl.Float64,
            "rating_scale": pl.Float64,
            "completion": pl.Float64,
            "rewatch": pl.Boolean,
        },
        orient="row",
    )
    return [round(w, 4) for w in df.select(implicit_weight())["weight"].to_list()]


def test_implicit_weight_is_documented_function() -> None:
    assert _weights(
        [
            (None, None, None, None),  # no rating -> 1
            (5.0, 5.0, None, False),  # top rating -> 2
            (3.5, 5.0, None, False),  # 70 % -> 1
            (7.0, 10.0, None, False),  # same share on another scale -> same weight
            (0.5, 5.0, None, False),  # lowest -> small positive
            (None, None, 0.0, False),  # abandoned -> a quarter
            (None, None, 0.5, True),  # half watched rewatch
        ]
    ) == [1.0, 2.0, 1.0, 1.0, 0.2286, 0.25, 0.7812]


def test_weight_is_monotone_in_rating() -> None:
    ws = _weights([(r / 2, 5.0, None, False) for r in range(1, 11)])
    assert ws == sorted(ws) and ws[0] > 0


def _events(**overrides) -> pl.DataFrame:
    base = {
        "user_id": ["u"],
        "source": ["netflix"],
        "raw_identity": ["Dark: Season 1: Secrets"],
        "event_time": [datetime(2020, 1, 1, tzinfo=UTC)],
        "season": [1],
        "episode": [None],
    }
    base.update(overrides)
    return conform_events(pl.DataFrame(base))


def test_event_id_is_stable_and_sensitive_to_identity() -> None:
    first = with_event_ids(_events())["event_id"][0]
    assert first == with_event_ids(_events(line=[99], file=["other.csv"]))["event_id"][0]
    assert len(first) == 64
    for change in (
        {"user_id": ["v"]},
        {"source": ["trakt"]},
        {"raw_identity": ["Dark: Season 1: Lies"]},
        {"event_time": [datetime(2020, 1, 2, tzinfo=UTC)]},
        {"season": [2]},
        {"episode": [1]},
    ):
        assert with_event_ids(_events(**change))["event_id"][0] != first, change


def test_header_only_file_has_no_rows_and_repeated_columns_are_an_error() -> None:
    table, bad = parse_delimited("Title,Date\n", "f.csv", required=("Title", "Date"), source="x")
    assert table.rows.is_empty() and bad.is_empty()
    assert table.rows.columns == ["Title", "Date", "line", "line_end"]
    with pytest.raises(HistoryImportError, match="f.csv:1: header repeats column"):
        parse_delimited("Title,Title\na,b\n", "f.csv", required=("Title",), source="x")
