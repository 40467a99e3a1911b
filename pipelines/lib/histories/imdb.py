"""IMDb exports: ``ratings.csv`` (and list exports of the same shape) in both layouts.

* Since 2017: Const (tt id), Your Rating (1-10), Date Rated, Title, URL, Title Type, IMDb Rating,
  Runtime (mins), Year, Genres, Num Votes, Release Date, Directors (newer exports add Original
  Title; list exports such as the watchlist add Position, Created, Modified, Description).
* Before 2017: position, const, created (``Wed Mar 19 00:00:00 2014``), modified, description,
  Title, Title type, Directors, You rated, IMDb Rating, Runtime (mins), Year, Genres, Num. Votes,
  Release Date (month/day/year), URL.

Header names match in any case. Each rated row is one event at its rating date (``Date Rated``,
else ``created``/``Created``; midnight UTC), rating on a 1-10 scale, resolved by its IMDb id first.
A row without a rating is a list entry, not a view: dropped and counted.

``Title Type`` is written in the language of the user's IMDb interface (``Film``, ``Serie TV``,
``Mini serie TV``, ``Corto``, ``Feature Film``...). Known labels map to movie / series /
episode (:data:`TYPE_MAP`, compared without case, spaces, dashes or accents); any other label
keeps the row with an unknown type, which the resolver matches by id first and then against films
and series alike - a row is never lost for its type. A tvEpisode names only the episode (its series
is not in the export), so it resolves only by id. Video games and podcasts are not watched titles:
dropped and counted.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import polars as pl

from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    blank,
    clean,
    conform_events,
    parse_delimited,
    split_bad,
)
from pipelines.lib.histories.files import encoding_warning, read_export

SOURCE = "imdb"
RATING_SCALE = 10.0
RATING_COLUMNS = ("Your Rating", "You rated")
DATE_COLUMNS = ("Date Rated", "created", "Created")
OPTIONAL = (
    *RATING_COLUMNS,
    *DATE_COLUMNS,
    "Title Type",
    "Year",
    "Original Title",
    "URL",
    "Position",
    "Modified",
    "Description",
    "Directors",
    "Genres",
)
_MOVIE = (
    "movie", "tvmovie", "short", "video", "tvspecial", "tvshort", "featurefilm", "shortfilm",
    "documentary", "film", "filmtv", "corto", "cortometraggio", "speciale tv", "pelicula",
    "peliculadetv", "cortometraje", "especialdetv", "fernsehfilm", "kurzfilm", "telefilm",
    "courtmetrage", "specialtv", "filme", "filmeparatv", "curtametragem",
)  # fmt: skip
_SERIES = (
    "tvseries", "tvminiseries", "miniseries", "serietv", "miniserietv", "seriedetv",
    "miniseriedetv", "fernsehserie", "minifernsehserie", "serietelevisee", "miniserie",
    "minisserie",
)  # fmt: skip
_EPISODE = ("tvepisode", "episodiotv", "episodiodetv", "episodetelevise")
TYPE_MAP = {
    **dict.fromkeys((k.replace(" ", "") for k in _MOVIE), "movie"),
    **dict.fromkeys(_SERIES, "series"),
    **dict.fromkeys(_EPISODE, "episode"),
}
"""Normalised ``Title Type`` labels (English, old layout, Italian, Spanish, German, French,
Portuguese) -> event type."""
NOT_WATCHED = (
    "videogame", "podcastseries", "podcastepisode", "videogioco", "videojuego", "videospiel",
    "jeuvideo", "jogoeletronico",
)  # fmt: skip


def type_key(label: str | None) -> str | None:
    """``"Mini serie TV"`` -> ``"miniserietv"``; ``"Épisode télévisé"`` -> ``"episodetelevise"``."""
    if label is None:
        return None
    decomposed = unicodedata.normalize("NFD", label.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def _pick(columns: list[str], names: tuple[str, ...], what: str, file: str) -> str:
    found = next((c for c in names if c in columns), None)
    if found is None:
        raise HistoryImportError(
            file,
            f"missing column {' or '.join(names[:2])} ({what}); found {', '.join(columns)} "
            "(is this the right --format?)",
            line=1,
        )
    return found


def parse_imdb(paths: list[Path], user_id: str) -> ParseResult:
    """IMDb ``ratings.csv`` files (either layout) -> raw events."""
    results = []
    for path in paths:
        file = str(path)
        text = read_export(path)
        table, width_bad = parse_delimited(
            text.text, file, required=("Const", "Title"), optional=OPTIONAL, source=SOURCE
        )
        rows = table.rows
        columns = [c for c in rows.columns if c not in ("line", "line_end")]
        rating_col = _pick(columns, RATING_COLUMNS, "the user's rating", file)
        date_col = _pick(columns, DATE_COLUMNS, "the rating date", file)
        for name in ("Title Type", "Year", "Original Title"):
            if name not in rows.columns:
                rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(name))
        labels = rows["Title Type"].str.strip_chars().unique().drop_nulls().to_list()
        keys = {label: type_key(label) for label in labels}
        kind = clean("Title Type").replace_strict(keys, default=None, return_dtype=pl.String)
        date_text = clean(date_col)
        rows = rows.with_columns(
            const=clean("Const"),
            rating=clean(rating_col).cast(pl.Int32, strict=False),
            date=pl.coalesce(
                date_text.str.to_date("%Y-%m-%d", strict=False),
                date_text.str.to_datetime("%a %b %d %H:%M:%S %Y", strict=False).dt.date(),
            ),
            year=clean("Year").cast(pl.Int32, strict=False),
            kind=kind,
            title_type=kind.replace_strict(TYPE_MAP, default=None, return_dtype=pl.String),
            original_title=clean("Original Title").cast(pl.String),
        )
        good, bad = split_bad(
            rows,
            [
                (~clean("Const").str.contains(r"^tt\d+$").fill_null(False), "Const is not a tt id"),
                (
                    ~blank(rating_col) & pl.col("rating").is_null(),
                    f"{rating_col} is not a whole number",
                ),
                ((pl.col("rating") < 1) | (pl.col("rating") > 10), f"{rating_col} outside 1-10"),
                (
                    ~blank(rating_col) & pl.col("date").is_null(),
                    f"{date_col} is not a date (YYYY-MM-DD or 'Wed Mar 19 00:00:00 2014')",
                ),
                (blank("Title"), "empty Title"),
                (~blank("Year") & pl.col("year").is_null(), "Year is not a number"),
            ],
        )
        unrated = good.filter(pl.col("rating").is_null())
        good = good.filter(pl.col("rating").is_not_null())
        game = pl.col("kind").is_in(list(NOT_WATCHED)).fill_null(False)
        not_watched = good.filter(game)
        dropped = Counter(
            {
                f"not a film or series ({k})": n
                for k, n in not_watched["Title Type"].value_counts().iter_rows()
            }
        )
        if unrated.height:
            dropped["not rated (a list entry, not a view)"] = unrated.height
        good = good.filter(~game)
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
                warnings=[w for w in (encoding_warning(text, file),) if w],
            )
        )
    return ParseResult.combine(results)
