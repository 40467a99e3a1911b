"""Column schemas of the lake tables: the one place their names and types are defined.

Every table is Parquet under ``<lake>/<table>/`` and readable with plain ``polars.read_parquet``.
``validate`` is used by writers and by the Dagster asset checks.

Title ids are strings that say where the identity comes from:
``movie:<tmdb id>`` / ``tv:<tmdb id>`` for TMDB titles, ``ml:<movieId>`` for MovieLens movies without
a TMDB link, ``ml100k:<item id>`` for unmatched ML-100k items, ``catalog:<service>:<show_id>`` for
platform-catalogue-only titles.
"""

from __future__ import annotations

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

EMBEDDING_DIM = 384
"""Width of a content vector (all-MiniLM-L6-v2); every table, index and encoder uses this one value."""

ALIAS = pl.Struct({"country": pl.String, "language": pl.String, "title": pl.String})
"""One other name of a title: ISO 3166-1 country and/or ISO 639-1 language (either may be null)."""

TITLES = {
    "title_id": pl.String,  # see module docstring
    "tmdb_id": pl.Int64,  # null when not a TMDB title
    "imdb_id": pl.String,
    "type": pl.String,  # "movie" | "series"
    "title": pl.String,
    "original_title": pl.String,
    "year": pl.Int32,
    "release_date": pl.Date,
    "overview": pl.String,
    "genres": pl.List(pl.String),
    "keywords": pl.List(pl.String),
    "cast": pl.List(pl.String),  # top-billed, in order
    "directors": pl.List(pl.String),  # directors (movies) or creators (series)
    "runtime": pl.Int32,  # minutes (series: typical episode runtime)
    "language": pl.String,  # ISO 639-1 original language
    "popularity": pl.Float64,
    "vote_average": pl.Float64,  # 0-10
    "vote_count": pl.Int64,
    "poster_path": pl.String,
    "source": pl.String,  # "tmdb" | "movielens" | "catalog:<service>"
    "content_hash": pl.String,  # hash of the text that is embedded (drives incremental embeddings)
    # other names: TMDB alternative titles and translated titles (matching only; not embedded)
    "aliases": pl.List(ALIAS),
}

AVAILABILITY = {
    "title_id": pl.String,
    "country": pl.String,  # ISO 3166-1 alpha-2
    "provider_id": pl.String,  # JustWatch technical name, e.g. "netflix", "amazonprime"
    "provider_name": pl.String,  # clear name, e.g. "Netflix"
    "monetization": pl.String,  # FLATRATE | FREE | ADS | RENT | BUY | CINEMA
    "presentation_type": pl.String,  # SD | HD | _4K | CANVAS | null
    "price": pl.Float64,  # null unless RENT/BUY
    "currency": pl.String,
    "deep_link": pl.String,
    "source": pl.String,  # "justwatch" | "tmdb" | "catalog"
    "last_seen": UTC_US,
}

WATCH_EVENTS = {
    "event_id": pl.String,  # stable hash of (user, source, raw identity, time): re-imports add nothing
    "user_id": pl.String,
    "title_id": pl.String,  # resolved title (series id for episodes)
    "raw_title": pl.String,
    # movielens | movielens-100k | netflix | netflix-activity | letterboxd | imdb | trakt | feedback
    "source": pl.String,
    "event_time": UTC_US,
    "event_date": pl.Date,  # daily partition key (UTC)
    "rating": pl.Float64,  # as given by the source, null if none
    "rating_scale": pl.Float64,  # maximum of the source's scale (5, 10), null if no rating
    "completion": pl.Float64,  # 0-1 if known
    "weight": pl.Float64,  # implicit-feedback weight used for training
    "season": pl.Int32,
    "episode": pl.Int32,
    "episode_title": pl.String,
    "import_batch": pl.String,
}

UNRESOLVED_EVENTS = {
    "event_id": pl.String,
    "user_id": pl.String,
    "raw_title": pl.String,
    "year": pl.Int32,
    "source": pl.String,
    "event_time": UTC_US,
    "reason": pl.String,
    "import_batch": pl.String,
    # what the row needs to become a watch event when the catalogue learns its title later
    # (pipelines.lib.late_resolution): ids and type for the lookup, the event's own fields
    "original_title": pl.String,
    "title_type": pl.String,
    "tmdb_id": pl.Int64,
    "imdb_id": pl.String,
    "rating": pl.Float64,
    "rating_scale": pl.Float64,
    "completion": pl.Float64,
    "rewatch": pl.Boolean,
    "season": pl.Int32,
    "episode": pl.Int32,
    "episode_title": pl.String,
}

QUARANTINE = {
    "user_id": pl.String,  # the importing user (malformed rows may hold their history): for erasure
    "file": pl.String,
    "line": pl.Int64,  # 1-based line number in the file (header is line 1)
    "source": pl.String,
    "raw": pl.String,
    "reason": pl.String,
    "import_batch": pl.String,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "titles": TITLES,
    "availability": AVAILABILITY,
    "watch_events": WATCH_EVENTS,
    "unresolved_events": UNRESOLVED_EVENTS,
    "quarantine": QUARANTINE,
}


class SchemaError(ValueError):
    """A frame does not have the columns or types its table requires."""


def empty(table: str) -> pl.DataFrame:
    """An empty frame with the table's schema."""
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(df: pl.DataFrame, table: str) -> pl.DataFrame:
    """Select the table's columns in order and cast to its types (missing nullable columns -> null)."""
    schema = SCHEMAS[table]
    exprs = []
    for name, dtype in schema.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(exprs)


def validate(df: pl.DataFrame, table: str) -> None:
    """Raise :class:`SchemaError` naming every missing or mistyped column."""
    schema = SCHEMAS[table]
    problems = []
    for name, dtype in schema.items():
        if name not in df.columns:
            problems.append(f"missing column {name!r}")
        elif df.schema[name] != dtype:
            problems.append(f"column {name!r} is {df.schema[name]}, expected {dtype}")
    if problems:
        raise SchemaError(f"{table}: " + "; ".join(problems))
