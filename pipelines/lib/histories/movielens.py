"""MovieLens ratings as watch events, and MovieLens movies as catalogue titles.

Two layouts are read:

* ml-latest(-small): ``ratings.csv`` (userId,movieId,rating,timestamp) with ``movies.csv``
  (movieId,title "Name (1995)",genres ``|``) and ``links.csv`` (movieId,imdbId,tmdbId);
* ml-100k: ``u.data`` (user item rating timestamp, tab separated, no header) with ``u.item``
  (pipe separated, latin-1: item|title|release date|video date|IMDb URL|19 genre flags).

A path may be the dataset folder or its ratings file (the other files are its siblings).

MovieLens is a multi-user dataset: every ``userId`` becomes the user ``"<prefix>-<userId>"``, where
``prefix`` is the ``--user`` given on import (it acts as a dataset name, e.g. ``ml-17``).

Title ids (see :mod:`core.schemas`): an ml-latest movie is ``movie:<tmdbId>`` when
``links.csv`` has a TMDB id, else ``ml:<movieId>``; an ml-100k item is the catalogue's title_id when
its title and year match the catalogue (:class:`~pipelines.lib.matching.TitleResolver`), else
``ml100k:<item>``. Library-style titles are turned around (``"Usual Suspects, The"`` -> ``"The
Usual Suspects"``, also ``La``/``Les``/``Das``...); a second title in parentheses is the original
title.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.content import content_hash, content_text
from core.schemas import conform
from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    SourceTable,
    conform_events,
    parse_delimited,
    split_bad,
)
from pipelines.lib.histories.files import MAX_DATASET_BYTES, read_export

SOURCE_LATEST = "movielens"
SOURCE_100K = "movielens-100k"
RATING_SCALE = 5.0

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
"""The 19 genre flags of ``u.item``, in column order (as listed by ``u.genre``)."""

_ARTICLES = (
    "The|A|An|L'|La|Le|Les|Il|Lo|Gli|I|El|Los|Las|Un|Une|Uno|Una|Das|Der|Die|Den|Det|Ett|En|"
    "Het|De|O|Os|As|Ta|Hoi|Ha"
)
_FLIPPED = re.compile(rf"^(?P<body>.+), (?P<article>{_ARTICLES})$")
_YEAR = re.compile(r"^(?P<rest>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
_ALT = re.compile(r"^(?P<main>.+?)\s+\((?P<alt>[^()]+)\)$")


def unflip_article(title: str) -> str:
    """``"Usual Suspects, The"`` -> ``"The Usual Suspects"``; ``"Auberge espagnole, L'"`` ->
    ``"L'Auberge espagnole"``."""
    match = _FLIPPED.match(title.strip())
    if not match:
        return title.strip()
    article = match["article"]
    return f"{article}{match['body']}" if article.endswith("'") else f"{article} {match['body']}"


def split_movielens_title(raw: str) -> tuple[str, str | None, int | None]:
    """``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"`` ->
    ``("The City of Lost Children", "La Cité des enfants perdus", 1995)``.

    A parenthesised ``a.k.a.`` title is treated like any other alternative title.
    """
    text = raw.strip()
    year: int | None = None
    match = _YEAR.match(text)
    if match:
        text, year = match["rest"], int(match["year"])
    alt: str | None = None
    alt_match = _ALT.match(text)
    if alt_match:
        text = alt_match["main"]
        alt = re.sub(r"^a\.k\.a\.\s*", "", alt_match["alt"].strip(), flags=re.IGNORECASE)
        alt = unflip_article(alt)
    return unflip_article(text), alt, year


@dataclass(frozen=True)
class MovieLensFiles:
    """Where the files of one MovieLens dataset are."""

    layout: str  # "latest" | "100k"
    folder: Path

    @property
    def ratings(self) -> Path:
        return self.folder / ("ratings.csv" if self.layout == "latest" else "u.data")


def locate(path: Path, layout: str) -> MovieLensFiles:
    """The dataset for a folder or ratings-file ``path``; missing files -> HistoryImportError."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    needed = (
        ("ratings.csv", "movies.csv", "links.csv") if layout == "latest" else ("u.data", "u.item")
    )
    if not path.exists():
        raise HistoryImportError(path, "no such file or folder")
    if path.is_file() and path.name != needed[0]:
        raise HistoryImportError(
            path, f"expected the MovieLens {needed[0]} file or its folder for layout {layout!r}"
        )
    for name in needed:
        if not (folder / name).is_file():
            raise HistoryImportError(folder / name, f"missing MovieLens file {name} in {folder}")
    return MovieLensFiles(layout=layout, folder=folder)


def _int_col(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Int64, strict=False)


def _not_int(col: str) -> pl.Expr:
    return _int_col(col).is_null()


def _read(
    path: Path,
    source: str,
    *,
    required: tuple[str, ...],
    encoding: str | None = None,
    header: list[str] | None = None,
    delimiter: str = ",",
    quoting: int = csv.QUOTE_MINIMAL,
) -> SourceTable:
    """A MovieLens movie-list file; a malformed row there is a broken dataset, not a bad rating."""
    table, bad = parse_delimited(
        read_export(path, limit=MAX_DATASET_BYTES, max_rows=None, encoding=encoding).text,
        str(path),
        required=required,
        header=header,
        delimiter=delimiter,
        quoting=quoting,
        source=source,
    )
    if bad.height:
        first = bad.row(0, named=True)
        raise HistoryImportError(path, f"malformed movie row: {first['reason']}", first["line"])
    return table


def _titles_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Finish a TITLES frame: content hash, schema, one row per title_id."""
    rows = df.to_dicts()
    hashes = [content_hash(content_text(r)) for r in rows]
    out = df.with_columns(pl.Series("content_hash", hashes, dtype=pl.String))
    return conform(out, "titles").unique("title_id", keep="first", maintain_order=True)


def latest_items(files: MovieLensFiles) -> pl.DataFrame:
    """ml-latest movies: ``movie_key`` (``ml:<movieId>``) plus TITLES columns."""
    movies = _read(
        files.folder / "movies.csv", SOURCE_LATEST, required=("movieId", "title", "genres")
    ).rows
    links = _read(
        files.folder / "links.csv", SOURCE_LATEST, required=("movieId", "imdbId", "tmdbId")
    ).rows
    parsed = [split_movielens_title(t) for t in movies["title"].to_list()]
    movies = movies.with_columns(
        movie_id=_int_col("movieId"),
        title=pl.Series([p[0] for p in parsed], dtype=pl.String),
        original_title=pl.Series([p[1] for p in parsed], dtype=pl.String),
        year=pl.Series([p[2] for p in parsed], dtype=pl.Int32),
        genres=pl.when(pl.col("genres") == "(no genres listed)")
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(pl.col("genres").str.split("|")),
    )
    links = links.select(
        movie_id=_int_col("movieId"),
        tmdb_id=_int_col("tmdbId"),
        imdb_id=pl.when(pl.col("imdbId").str.strip_chars().str.contains(r"^\d+$")).then(
            pl.lit("tt") + pl.col("imdbId").str.strip_chars().str.zfill(7)
        ),
    )
    items = movies.join(links, on="movie_id", how="left").with_columns(
        movie_key=pl.lit("ml:") + pl.col("movie_id").cast(pl.String),
        title_id=pl.when(pl.col("tmdb_id").is_not_null())
        .then(pl.lit("movie:") + pl.col("tmdb_id").cast(pl.String))
        .otherwise(pl.lit("ml:") + pl.col("movie_id").cast(pl.String)),
        type=pl.lit("movie"),
        source=pl.lit("movielens"),
    )
    return items


def ml100k_items(files: MovieLensFiles, catalogue: pl.DataFrame | None = None) -> pl.DataFrame:
    """ml-100k items: ``movie_key`` (``ml100k:<item>``) plus TITLES columns; ``title_id`` is the
    catalogue's when title and year match it, else ``ml100k:<item>``."""
    header = ["item", "raw_title", "release", "video_release", "url", *ML100K_GENRES]
    table = _read(
        files.folder / "u.item",
        SOURCE_100K,
        required=(),
        header=header,
        delimiter="|",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
    )
    rows = table.rows
    parsed = [split_movielens_title(t) for t in rows["raw_title"].to_list()]
    flags = pl.concat_list([pl.when(pl.col(g) == "1").then(pl.lit(g)) for g in ML100K_GENRES])
    items = rows.with_columns(
        item=_int_col("item"),
        title=pl.Series([p[0] for p in parsed], dtype=pl.String),
        original_title=pl.Series([p[1] for p in parsed], dtype=pl.String),
        year=pl.Series([p[2] for p in parsed], dtype=pl.Int32),
        release_date=pl.col("release").str.strip_chars().str.to_date("%d-%b-%Y", strict=False),
        genres=flags.list.drop_nulls(),
    ).with_columns(
        movie_key=pl.lit("ml100k:") + pl.col("item").cast(pl.String),
        year=pl.coalesce("year", pl.col("release_date").dt.year().cast(pl.Int32)),
        type=pl.lit("movie"),
        source=pl.lit("movielens"),
    )
    title_id = pl.col("movie_key")
    if catalogue is not None and catalogue.height:
        from pipelines.lib.matching import TitleResolver

        matched = TitleResolver(catalogue).resolve(
            items.select(
                raw_title="title", year="year", title_type="type", original_title="original_title"
            )
        )
        items = items.with_columns(matched_id=matched["title_id"])
        title_id = pl.coalesce("matched_id", "movie_key")
    return items.with_columns(title_id=title_id)


def movielens_titles(path: Path, catalogue: pl.DataFrame | None = None) -> pl.DataFrame:
    """TITLES rows for the movies of the MovieLens dataset at ``path`` (either layout).

    ``catalogue`` (a TITLES frame) is only used to match ml-100k items by title and year. A matched
    item keeps the catalogue's title_id, so the titles table's own row for it takes precedence when
    the pipeline unions these rows in.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    layout = "latest" if (folder / "movies.csv").is_file() else "100k"
    files = locate(path, layout)
    items = latest_items(files) if layout == "latest" else ml100k_items(files, catalogue)
    return _titles_frame(items)


def _ratings_events(
    table: SourceTable,
    *,
    source: str,
    user_prefix: str,
    user: str,
    item: str,
    rating: str,
    ts: str,
    key_prefix: str,
    valid_ratings: tuple[float, float],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    low, high = valid_ratings
    value = pl.col(rating).str.strip_chars().cast(pl.Float64, strict=False)
    good, bad = split_bad(
        table.rows,
        [
            (_not_int(user), f"{user} is not an integer"),
            (_not_int(item), f"{item} is not an integer"),
            (value.is_null(), f"{rating} is not a number"),
            ((value < low) | (value > high), f"{rating} outside {low:g}-{high:g}"),
            (_not_int(ts), f"{ts} is not an integer"),
        ],
    )
    events = good.select(
        user_id=pl.lit(f"{user_prefix}-") + _int_col(user).cast(pl.String),
        source=pl.lit(source),
        raw_identity=pl.lit(key_prefix) + _int_col(item).cast(pl.String),
        event_time=pl.from_epoch(_int_col(ts), time_unit="s").dt.replace_time_zone("UTC"),
        rating=value,
        rating_scale=pl.lit(RATING_SCALE),
        title_type=pl.lit("movie"),
        file=pl.lit(table.file),
        line=pl.col("line"),
    )
    return events, table.quarantine(bad, source)


def parse_movielens(paths: list[Path], user_prefix: str) -> ParseResult:
    """ml-latest ``ratings.csv`` -> raw events (users ``"<user_prefix>-<userId>"``)."""
    results = []
    for path in paths:
        files = locate(path, "latest")
        table, width_bad = parse_delimited(
            read_export(files.ratings, limit=MAX_DATASET_BYTES, max_rows=None).text,
            str(files.ratings),
            required=("userId", "movieId", "rating", "timestamp"),
            source=SOURCE_LATEST,
        )
        events, value_bad = _ratings_events(
            table,
            source=SOURCE_LATEST,
            user_prefix=user_prefix,
            user="userId",
            item="movieId",
            rating="rating",
            ts="timestamp",
            key_prefix="ml:",
            valid_ratings=(0.5, 5.0),
        )
        items = latest_items(files).select(
            raw_identity="movie_key",
            raw_title="title",
            year="year",
            tmdb_id="tmdb_id",
            imdb_id="imdb_id",
            native_id="title_id",
        )
        events = events.join(items, on="raw_identity", how="left")
        results.append(ParseResult(conform_events(events), pl.concat([width_bad, value_bad])))
    return ParseResult.combine(results)


def parse_movielens_100k(
    paths: list[Path], user_prefix: str, catalogue: pl.DataFrame | None = None
) -> ParseResult:
    """ml-100k ``u.data`` -> raw events (users ``"<user_prefix>-<user>"``); ``catalogue`` as in
    :func:`movielens_titles`."""
    results = []
    header = ["user", "item", "rating", "timestamp"]
    for path in paths:
        files = locate(path, "100k")
        table, width_bad = parse_delimited(
            read_export(files.ratings, limit=MAX_DATASET_BYTES, max_rows=None).text,
            str(files.ratings),
            required=(),
            header=header,
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
            source=SOURCE_100K,
        )
        events, value_bad = _ratings_events(
            table,
            source=SOURCE_100K,
            user_prefix=user_prefix,
            user="user",
            item="item",
            rating="rating",
            ts="timestamp",
            key_prefix="ml100k:",
            valid_ratings=(1.0, 5.0),
        )
        items = ml100k_items(files, catalogue).select(
            raw_identity="movie_key", raw_title="title", year="year", native_id="title_id"
        )
        events = events.join(items, on="raw_identity", how="left")
        results.append(ParseResult(conform_events(events), pl.concat([width_bad, value_bad])))
    return ParseResult.combine(results)
