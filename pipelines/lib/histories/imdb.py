"""IMDb ``ratings.csv`` export: Const (tt id), Your Rating (1-10), Date Rated, Title, URL, Title Type,
IMDb Rating, Runtime (mins), Year, Genres, Num Votes, Release Date, Directors (newer exports add
Original Title).

Each row is one rated title at its ``Date Rated`` (midnight UTC), rating on a 1-10 scale, resolved
by its IMDb id first. ``Title Type`` maps to the event type: movie, tvMovie, short, video, tvSpecial
and tvShort are movies; tvSeries and tvMiniSeries are series; a tvEpisode names only the episode
(its series is not in the export), so it is kept as an ``episode`` event that resolves only by id.
Video games and podcasts are not watched titles: dropped and counted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from pipelines.lib.histories.common import (
    ParseResult,
    blank,
    clean,
    conform_events,
    parse_delimited,
    read_text,
    split_bad,
)

SOURCE = "imdb"
RATING_SCALE = 10.0
REQUIRED = ("Const", "Your Rating", "Date Rated", "Title", "Title Type", "Year")
TYPE_MAP = {
    "movie": "movie",
    "tvmovie": "movie",
    "short": "movie",
    "video": "movie",
    "tvspecial": "movie",
    "tvshort": "movie",
    "tvseries": "series",
    "tvminiseries": "series",
    "tvepisode": "episode",
}
NOT_WATCHED = ("videogame", "podcastseries", "podcastepisode")


def parse_imdb(paths: list[Path], user_id: str) -> ParseResult:
    """IMDb ``ratings.csv`` files -> raw events."""
    results = []
    for path in paths:
        file = str(path)
        table, width_bad = parse_delimited(read_text(path), file, required=REQUIRED, source=SOURCE)
        rows = table.rows
        kind = clean("Title Type").str.to_lowercase().str.replace_all(r"[\s_-]", "")
        original = clean("Original Title") if "Original Title" in rows.columns else pl.lit(None)
        rows = rows.with_columns(
            const=clean("Const"),
            rating=clean("Your Rating").cast(pl.Int32, strict=False),
            date=clean("Date Rated").str.to_date("%Y-%m-%d", strict=False),
            year=clean("Year").cast(pl.Int32, strict=False),
            kind=kind,
            title_type=kind.replace_strict(TYPE_MAP, default=None, return_dtype=pl.String),
            original_title=original.cast(pl.String),
        )
        good, bad = split_bad(
            rows,
            [
                (~clean("Const").str.contains(r"^tt\d+$").fill_null(False), "Const is not a tt id"),
                (pl.col("rating").is_null(), "Your Rating is not a whole number"),
                ((pl.col("rating") < 1) | (pl.col("rating") > 10), "Your Rating outside 1-10"),
                (pl.col("date").is_null(), "Date Rated is not YYYY-MM-DD"),
                (blank("Title"), "empty Title"),
                (~blank("Year") & pl.col("year").is_null(), "Year is not a number"),
                (
                    pl.col("title_type").is_null() & ~pl.col("kind").is_in(list(NOT_WATCHED)),
                    "unknown Title Type",
                ),
            ],
        )
        not_watched = good.filter(pl.col("kind").is_in(list(NOT_WATCHED)))
        dropped = Counter(
            {
                f"not a film or series ({k})": n
                for k, n in not_watched["Title Type"].value_counts().iter_rows()
            }
        )
        good = good.filter(~pl.col("kind").is_in(list(NOT_WATCHED)))
        events = good.select(
            user_id=pl.lit(user_id),
            source=pl.lit(SOURCE),
            raw_title=clean("Title"),
            original_title=pl.when(pl.col("original_title") != clean("Title")).then(
                "original_title"
            ),
            raw_identity="const",
            year="year",
            title_type="title_type",
            imdb_id="const",
            event_time=pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            rating=pl.col("rating").cast(pl.Float64),
            rating_scale=pl.lit(RATING_SCALE),
            file=pl.lit(file),
            line="line",
        )
        results.append(
            ParseResult(
                conform_events(events),
                pl.concat([width_bad, table.quarantine(bad, SOURCE)]),
                dropped,
            )
        )
    return ParseResult.combine(results)
