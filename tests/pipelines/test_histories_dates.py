"""Netflix locale dates (issue 12.1): generated histories written in every locale's date form."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.dates import (
    DateFormatError,
    detect_date_order,
    parse_date_format,
)
from pipelines.lib.histories.netflix import parse_netflix_history


def _views(seed: int, n: int = 40, small_days: bool = False) -> list[date]:
    """Newest first, as the export lists them; ``small_days``: every day <= 12 (ambiguous)."""
    rng = random.Random(seed)
    day = date(2024, 11, 30)
    out = []
    while len(out) < n:
        day -= timedelta(days=rng.randint(0, 9))
        if not small_days or day.day <= 12:
            out.append(day)
    return out


def _render(d: date, style: str) -> str:
    return {
        "us": f"{d.month}/{d.day}/{d:%y}",  # 6/28/23
        "uk": f"{d:%d/%m/%Y}",  # 28/06/2023
        "dashed": f"{d:%d-%m-%y}",  # 28-06-23 (Netherlands, Poland)
        "dotted": f"{d.day}.{d.month}.{d:%y}",  # 28.6.23 (Germany)
        "iso": f"{d:%Y-%m-%d}",  # 2023-06-28 (Sweden)
        "hungarian": f"{d:%Y. %m. %d.}",  # 2023. 06. 28.
    }[style]


def _history(tmp_path: Path, dates: list[date], style: str, name: str = "h.csv") -> Path:
    titles = ["Safe", "Mar de sangre", "Dark: Staffel 1: Geheimnisse", "Heat"]
    body = "".join(f'"{titles[i % 4]}","{_render(d, style)}"\n' for i, d in enumerate(dates))
    path = tmp_path / name
    path.write_text("Title,Date\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize("style", ["us", "uk", "dashed", "dotted", "iso", "hungarian"])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_locale_form_is_read_without_quarantine(
    tmp_path: Path, style: str, seed: int
) -> None:
    dates = _views(seed)
    result = parse_netflix_history([_history(tmp_path, dates, style)], "u")
    assert result.quarantine.is_empty()
    assert result.events["event_time"].dt.date().to_list() == dates
    assert result.warnings == []  # a day above 12 decided (or the form is year-first)


def test_the_issue_rows_dashed_day_first(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text('Title,Date\n"Safe","28-06-23"\n"Mar de sangre","11-08-23"\n')
    result = parse_netflix_history([path], "u")
    assert result.events["event_time"].dt.date().to_list() == [
        date(2023, 6, 28),
        date(2023, 8, 11),
    ]
    assert result.quarantine.is_empty()


@pytest.mark.parametrize(("style", "seed"), [("uk", 3), ("us", 4), ("dashed", 5)])
def test_an_ambiguous_file_takes_the_order_in_which_dates_run_and_warns(
    tmp_path: Path, style: str, seed: int
) -> None:
    dates = _views(seed, small_days=True)
    path = _history(tmp_path, dates, style)
    result = parse_netflix_history([path], "u")
    assert result.events["event_time"].dt.date().to_list() == dates
    (warning,) = result.warnings
    assert str(path) in warning and "no date has a day above 12" in warning
    assert "--date-format" in warning


def test_an_ambiguous_two_row_file_falls_back_on_the_separator() -> None:
    lines = pl.Series([2, 3])
    dashed = detect_date_order(pl.Series(["03-04-23", "03-04-23"]), "f", lines)
    slashed = detect_date_order(pl.Series(["03/04/23", "03/04/23"]), "f", lines)
    assert (dashed.order, slashed.order) == ("DMY", "MDY")
    assert dashed.warning and "day-first" in dashed.warning
    same = detect_date_order(pl.Series(["3/3/23", "1/1/23"]), "f", lines)
    assert same.warning is None  # day = month everywhere: both orders agree


def test_day_first_and_month_first_in_one_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text('Title,Date\n"A","13/01/20"\n"B","01/13/20"\n')
    with pytest.raises(HistoryImportError, match=r"lines 2 and 3.*--date-format"):
        parse_netflix_history([path], "u")


@pytest.mark.parametrize(
    ("fmt", "order"),
    [
        ("%d/%m/%y", "DMY"),
        ("%m/%d/%Y", "MDY"),
        ("%Y-%m-%d", "YMD"),
        ("%-d.%-m.%y", "DMY"),
        ("D/M/YY", "DMY"),
        ("M/D/YY", "MDY"),
        ("DD.MM.YY", "DMY"),
        ("YYYY-MM-DD", "YMD"),
    ],
)
def test_date_format_spellings(fmt: str, order: str) -> None:
    assert parse_date_format(fmt) == order


@pytest.mark.parametrize("fmt", ["%B %d", "%d/%m", "nonsense", "%H:%M"])
def test_bad_date_formats(fmt: str) -> None:
    with pytest.raises(DateFormatError, match="unknown date format"):
        parse_date_format(fmt)


def test_explicit_order_overrides_an_ambiguous_guess(tmp_path: Path) -> None:
    dates = _views(6, small_days=True)
    path = _history(tmp_path, dates, "uk")
    forced = parse_netflix_history([path], "u", date_format="%m/%d/%Y")
    assert forced.warnings == []
    swapped = [date(d.year, d.day, d.month) for d in dates]
    assert forced.events["event_time"].dt.date().to_list() == swapped


def test_a_mostly_iso_file_does_not_misread_its_other_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text('Title,Date\n"A","2023-06-28"\n"B","2023-06-27"\n"C","28/06/23"\n')
    result = parse_netflix_history([path], "u")
    assert result.events["event_time"].dt.date().to_list() == [
        date(2023, 6, 28),
        date(2023, 6, 27),
    ]
    assert result.quarantine["reason"].to_list() == ["Date is not a YYYY-MM-DD date"]
