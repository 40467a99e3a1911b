"""Letterboxd export (the ZIP, the folder it unpacks to, or one of its files on its own):
``diary.csv``, ``ratings.csv`` and ``watched.csv``. A lone CSV is recognised by its name, else by
its header (``Watched Date``: diary; ``Rating``: ratings; otherwise watched). The ZIP is read
without extracting it, with the limits of :mod:`pipelines.lib.histories.files`.

Merged so that every watch is one event and nothing is counted twice:

* every diary row is one watch at its ``Watched Date`` (``Date``, the day it was logged, when the
  watched date is empty), with its rating, or - when the diary row has none - the film's rating
  from ``ratings.csv``; ``Rewatch = Yes`` marks a rewatch;
* a film with a rating but no diary entry is one event at the rating's ``Date``;
* a film only in ``watched.csv`` is one event at its ``Date``, without rating.

Rows folded into another event this way are counted in ``dropped`` ("rating merged into diary
entry", "watched merged into diary/rating"), so every row is accounted for.

Films are matched across the three files by (Name, Year) - the ``Letterboxd URI`` of a diary row
names the diary entry, not the film, so it cannot be used. Only the top-level files are read: the
``deleted/`` and ``orphaned/`` folders of an export hold entries the user removed. Ratings are on a
0.5-5 scale. Letterboxd logs films, so events have ``title_type="movie"``.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import polars as pl

from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    SourceTable,
    blank,
    clean,
    conform_events,
    parse_delimited,
    split_bad,
)
from pipelines.lib.histories.files import (
    ExportText,
    decode_export,
    encoding_warning,
    open_zip,
    read_export,
    read_zip_member,
)

SOURCE = "letterboxd"
RATING_SCALE = 5.0
FILES = {
    "diary.csv": ("Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch", "Watched Date"),
    "ratings.csv": ("Date", "Name", "Year", "Letterboxd URI", "Rating"),
    "watched.csv": ("Date", "Name", "Year", "Letterboxd URI"),
}


def _zip_texts(path: Path) -> dict[str, tuple[str, ExportText]]:
    out: dict[str, tuple[str, ExportText]] = {}
    with open_zip(path) as archive:
        members = {m.filename: m for m in archive.infolist() if not m.is_dir()}
        for name in FILES:
            found = sorted(
                (m for m in members if m.casefold() == name or m.casefold().endswith("/" + name)),
                key=lambda m: m.count("/"),
            )
            found = [m for m in found if m.split("/")[-2:-1] not in (["deleted"], ["orphaned"])]
            if found:
                display = f"{path}!{found[0]}"
                data = read_zip_member(archive, members[found[0]], display)
                out[name] = (display, decode_export(data, display))
    return out


def _lone_csv_kind(path: Path, text: str) -> str:
    """Which of the three files a lone Letterboxd CSV is: by name, else by its header."""
    if path.name.casefold() in FILES:
        return path.name.casefold()
    header = {" ".join(c.split()).casefold() for c in text.split("\n", 1)[0].split(",")}
    if "watched date" in header:
        return "diary.csv"
    return "ratings.csv" if "rating" in header else "watched.csv"


def _read_export(path: Path) -> tuple[dict[str, SourceTable], pl.DataFrame, list[str]]:
    """The tables present in the export by file name, the rows of wrong width, and warnings."""
    path = Path(path)
    texts: dict[str, tuple[str, ExportText]] = {}  # name -> (display file, text)
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.iterdir()):
            if child.name.casefold() in FILES:
                texts[child.name.casefold()] = (str(child), read_export(child))
    elif path.is_file() and not path.is_symlink() and zipfile.is_zipfile(path):
        texts = _zip_texts(path)
    else:
        text = read_export(path)  # refuses links, devices, huge and binary files
        texts[_lone_csv_kind(path, text.text)] = (str(path), text)
    if not texts:
        raise HistoryImportError(path, f"no {', '.join(FILES)} in this Letterboxd export")
    out: dict[str, SourceTable] = {}
    bad = []
    warnings = []
    for name, (display, text) in texts.items():
        table, width_bad = parse_delimited(
            text.text, display, required=FILES[name], optional=("Tags",), source=SOURCE
        )
        out[name] = table
        bad.append(width_bad)
        if warning := encoding_warning(text, display):
            warnings.append(warning)
    return out, pl.concat(bad), warnings


def _checked(
    table: SourceTable, has_rating: bool, watched_col: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = table.rows.with_columns(
        name=clean("Name"),
        year=clean("Year").cast(pl.Int32, strict=False),
        date=clean("Date").str.to_date("%Y-%m-%d", strict=False),
        rating=clean("Rating").cast(pl.Float64, strict=False)
        if has_rating
        else pl.lit(None, pl.Float64),
        watched=(
            clean(watched_col).str.to_date("%Y-%m-%d", strict=False)
            if watched_col
            else pl.lit(None, pl.Date)
        ),
    )
    checks = [
        (blank("Name"), "empty Name"),
        (~blank("Year") & pl.col("year").is_null(), "Year is not a number"),
        (pl.col("date").is_null(), "Date is not YYYY-MM-DD"),
    ]
    if has_rating:
        checks += [
            (~blank("Rating") & pl.col("rating").is_null(), "Rating is not a number"),
            (
                (pl.col("rating") < 0.5)
                | (pl.col("rating") > 5)
                | ((pl.col("rating") * 2) % 1 != 0),
                "Rating not in 0.5-5 half stars",
            ),
        ]
    if watched_col:
        checks.append(
            (~blank(watched_col) & pl.col("watched").is_null(), f"{watched_col} is not YYYY-MM-DD")
        )
    good, bad = split_bad(rows, checks)
    return good, table.quarantine(bad, SOURCE)


def _key() -> pl.Expr:
    return pl.concat_str(
        [pl.col("name"), pl.lit(" ("), pl.col("year").cast(pl.String).fill_null("?"), pl.lit(")")]
    )


def parse_letterboxd(paths: list[Path], user_id: str) -> ParseResult:
    """Letterboxd exports -> raw events (merge rules in the module docstring)."""
    results = []
    for path in paths:
        tables, width_bad, warnings = _read_export(path)
        quarantine = [width_bad]
        frames: dict[str, pl.DataFrame] = {}
        for name, table in tables.items():
            good, bad = _checked(
                table,
                has_rating=name != "watched.csv",
                watched_col="Watched Date" if name == "diary.csv" else None,
            )
            frames[name] = good.with_columns(key=_key(), file=pl.lit(table.file))
            quarantine.append(bad)
        empty = pl.DataFrame(schema={"key": pl.String, "rating": pl.Float64})
        diary = frames.get("diary.csv")
        ratings = frames.get("ratings.csv")
        watched = frames.get("watched.csv")
        film_rating = (
            ratings.group_by("key").agg(film_rating=pl.col("rating").last())
            if ratings is not None
            else empty.rename({"rating": "film_rating"})
        )
        parts = []
        dropped: Counter[str] = Counter()
        seen: set[str] = set()
        if diary is not None:
            parts.append(
                diary.join(film_rating, on="key", how="left").with_columns(
                    event_date=pl.coalesce("watched", "date"),
                    rating=pl.coalesce("rating", "film_rating"),
                    rewatch=clean("Rewatch")
                    .str.to_lowercase()
                    .is_in(["yes", "true"])
                    .fill_null(False),
                )
            )
            seen |= set(diary["key"].to_list())
        if ratings is not None:
            only = ratings.filter(~pl.col("key").is_in(list(seen)))
            parts.append(only.with_columns(event_date="date", rewatch=pl.lit(False)))
            if ratings.height > only.height:
                dropped["rating merged into diary entry"] += ratings.height - only.height
            seen |= set(ratings["key"].to_list())
        if watched is not None:
            only = watched.filter(~pl.col("key").is_in(list(seen)))
            parts.append(only.with_columns(event_date="date", rewatch=pl.lit(False)))
            if watched.height > only.height:
                dropped["watched merged into diary/rating"] += watched.height - only.height
        cols = ["name", "year", "key", "event_date", "rating", "rewatch", "file", "line"]
        merged = pl.concat([p.select(cols) for p in parts])
        events = merged.select(
            user_id=pl.lit(user_id),
            source=pl.lit(SOURCE),
            raw_title="name",
            raw_identity="key",
            year="year",
            title_type=pl.lit("movie"),
            event_time=pl.col("event_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            rating="rating",
            rating_scale=pl.when(pl.col("rating").is_not_null()).then(pl.lit(RATING_SCALE)),
            rewatch="rewatch",
            file="file",
            line="line",
        )
        results.append(
            ParseResult(conform_events(events), pl.concat(quarantine), dropped, warnings)
        )
    return ParseResult.combine(results)
