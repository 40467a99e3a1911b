"""Shared pieces of the watch-history parsers: the raw event frame, CSV reading with line numbers,
quarantine rows, implicit weights and stable event ids.

Every parser returns a :class:`ParseResult`: raw events in :data:`RAW_EVENTS` (before title
resolution), a quarantine frame with the file, 1-based line (the header is line 1) and reason of
every malformed row, and counts of rows dropped on purpose because they are not views (trailers,
autoplay previews...). Nothing is dropped silently: every data row of a file is exactly one of
event, quarantined or dropped (blank lines are not rows).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from filelock import FileLock

from core.schemas import QUARANTINE, UTC_US

RAW_EVENTS: dict[str, pl.DataType] = {
    "user_id": pl.String,
    "source": pl.String,
    "raw_title": pl.String,  # the title as the export spells it (series name for episodes)
    "original_title": pl.String,  # a second title the source gives (IMDb, MovieLens), else null
    "raw_identity": pl.String,  # what identifies the watched thing in the source (enters event_id)
    "year": pl.Int32,
    "title_type": pl.String,  # "movie" | "series" | "episode" (episode without series) | null
    "tmdb_id": pl.Int64,
    "imdb_id": pl.String,
    "native_id": pl.String,  # a catalogue title_id the source implies (MovieLens), else null
    "event_time": UTC_US,
    "rating": pl.Float64,
    "rating_scale": pl.Float64,
    "completion": pl.Float64,
    "bookmark_seconds": pl.Float64,  # playback position at the end (completion needs a runtime)
    "rewatch": pl.Boolean,
    "season": pl.Int32,
    "episode": pl.Int32,
    "episode_title": pl.String,
    "file": pl.String,
    "line": pl.Int64,
}
"""Columns of the raw events every parser returns (nullable unless the source always has them)."""

QUARANTINE_ROWS = {k: v for k, v in QUARANTINE.items() if k not in ("import_batch", "user_id")}


class HistoryImportError(ValueError):
    """A history file cannot be imported at all (unreadable, wrong format, missing columns).

    The message names the file and, where one applies, the 1-based line.
    """

    def __init__(self, file: str | Path, message: str, line: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: {message}")


@dataclass
class ParseResult:
    """What a parser made of its files."""

    events: pl.DataFrame
    quarantine: pl.DataFrame
    dropped: Counter[str] = field(default_factory=Counter)
    """Rows that are not views, by reason (not errors; counted, not quarantined)."""
    warnings: list[str] = field(default_factory=list)
    """Things the user should check (a guessed date order, a fallback encoding...)."""

    @property
    def rows_read(self) -> int:
        return self.events.height + self.quarantine.height + sum(self.dropped.values())

    @staticmethod
    def combine(results: Iterable[ParseResult]) -> ParseResult:
        results = list(results)
        dropped: Counter[str] = Counter()
        warnings: list[str] = []
        for r in results:
            dropped.update(r.dropped)
            warnings.extend(r.warnings)
        return ParseResult(
            events=pl.concat([r.events for r in results]) if results else empty_events(),
            quarantine=(
                pl.concat([r.quarantine for r in results]) if results else empty_quarantine()
            ),
            dropped=dropped,
            warnings=warnings,
        )


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_EVENTS)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_ROWS)


def conform_events(df: pl.DataFrame) -> pl.DataFrame:
    """Select :data:`RAW_EVENTS` in order, casting; absent columns become null."""
    return df.select(
        [
            pl.col(n).cast(t) if n in df.columns else pl.lit(None, dtype=t).alias(n)
            for n, t in RAW_EVENTS.items()
        ]
    )


@dataclass(frozen=True)
class SourceTable:
    """The data rows of one delimited file as strings, with their line numbers and raw text.

    ``rows`` has one String column per header name plus ``line`` / ``line_end`` (1-based physical
    lines where the record starts and ends; they differ only for quoted multi-line fields).
    """

    file: str
    rows: pl.DataFrame
    lines: pl.Series
    """The physical lines of the file (String)."""

    def raw(self, line: int, line_end: int) -> str:
        return "\n".join(self.lines.slice(line - 1, line_end - line + 1).to_list())

    def quarantine(self, bad: pl.DataFrame, source: str) -> pl.DataFrame:
        """Quarantine rows for ``bad`` (a subset of ``rows`` with a ``reason`` column)."""
        if bad.is_empty():
            return empty_quarantine()
        single = bad["line"] == bad["line_end"]
        raws = self.lines.gather(bad["line"] - 1)
        if not single.all():  # quoted multi-line records: join their physical lines
            multi = [
                self.raw(a, b) if a != b else None
                for a, b in zip(bad["line"], bad["line_end"], strict=True)
            ]
            raws = pl.Series(multi, dtype=pl.String).fill_null(raws)
        return pl.DataFrame(
            {
                "file": pl.Series([self.file], dtype=pl.String).new_from_index(0, bad.height),
                "line": bad["line"],
                "source": pl.Series([source], dtype=pl.String).new_from_index(0, bad.height),
                "raw": raws,
                "reason": bad["reason"],
            },
            schema=QUARANTINE_ROWS,
        )


def _columns(
    fields: list[str], file: str, line: int, required: Sequence[str], canonical: dict[str, str]
) -> list[str]:
    """Header fields -> column names (canonical spelling); repeats or missing names raise."""
    columns = [canonical.get(_header_key(c), c.strip()) for c in fields]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise HistoryImportError(file, f"header repeats column(s) {', '.join(repeated)}", line=line)
    missing = [c for c in required if c not in columns]
    if missing:
        raise HistoryImportError(
            file,
            f"missing column(s) {', '.join(missing)}; found {', '.join(columns)} "
            f"(is this the right --format?)",
            line=line,
        )
    return columns


def _width_quarantine(table: SourceTable, bad: pl.DataFrame, source: str) -> pl.DataFrame:
    return table.quarantine(bad.select("line", "line_end", "reason"), source)


def _split_unquoted(
    text: str,
    file: str,
    *,
    required: Sequence[str],
    delimiter: str,
    header: Sequence[str] | None,
    canonical: dict[str, str],
    source: str,
) -> tuple[SourceTable, pl.DataFrame]:
    """:func:`parse_delimited` for text where a record is one line (vectorised; large files)."""
    lines = pl.Series("text", [text], dtype=pl.String).str.split("\n").explode()
    frame = pl.DataFrame({"text": lines}).with_row_index("line", offset=1)
    frame = frame.with_columns(pl.col("line").cast(pl.Int64)).filter(
        pl.col("text").str.contains(delimiter, literal=True)
        | (pl.col("text").str.strip_chars() != "")
    )
    columns = list(header) if header is not None else None
    if columns is None:
        if frame.is_empty():
            raise HistoryImportError(file, "file is empty (no header line)")
        first = frame.row(0, named=True)
        columns = _columns(first["text"].split(delimiter), file, first["line"], required, canonical)
        frame = frame.slice(1)
    fields = frame.select(
        "line",
        pl.col("line").alias("line_end"),
        pl.col("text").str.split(delimiter).alias("f"),
    ).with_columns(n=pl.col("f").list.len())
    width = len(columns)
    bad = fields.filter(pl.col("n") != width).with_columns(
        reason=pl.format("expected {} fields, found {}", pl.lit(width), pl.col("n"))
    )
    good = fields.filter(pl.col("n") == width)
    rows = good.select(
        [pl.col("f").list.get(i).alias(name) for i, name in enumerate(columns)]
        + ["line", "line_end"]
    )
    table = SourceTable(file=file, rows=rows, lines=lines)
    return table, _width_quarantine(table, bad, source)


def parse_delimited(
    text: str,
    file: str,
    *,
    required: Sequence[str],
    delimiter: str = ",",
    header: Sequence[str] | None = None,
    source: str,
    quoting: int = csv.QUOTE_MINIMAL,
    optional: Sequence[str] = (),
) -> tuple[SourceTable, pl.DataFrame]:
    """Split delimited ``text`` into a :class:`SourceTable` and quarantine rows of wrong width.

    With ``header=None`` the first line is the header and must contain every ``required`` column
    (otherwise :class:`HistoryImportError` naming the missing ones). Header names are matched to
    the ``required`` and ``optional`` names in any case and spacing (``TITLE``, ``title``, `` Date
    Rated``) and renamed to them. With an explicit ``header`` (header-less files such as MovieLens
    100K) every line is data. Blank lines are skipped. ``quoting=csv.QUOTE_NONE`` suits tab/pipe
    files whose fields may start with a quote. Text without quoting (MovieLens ratings) is split
    vectorised; quoted text goes through :mod:`csv` (quoted fields may span lines).
    """
    canonical = {_header_key(c): c for c in (*optional, *required)}
    if quoting == csv.QUOTE_NONE or '"' not in text:
        return _split_unquoted(
            text,
            file,
            required=required,
            delimiter=delimiter,
            header=header,
            canonical=canonical,
            source=source,
        )
    lines = pl.Series("text", text.split("\n"), dtype=pl.String)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True, quoting=quoting)
    columns: list[str] | None = list(header) if header is not None else None
    records: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []
    bad: list[tuple[int, int, str]] = []
    prev_end = 0
    try:
        for fields in reader:
            start, end = prev_end + 1, reader.line_num
            prev_end = end
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if columns is None:
                columns = _columns(fields, file, start, required, canonical)
                continue
            if len(fields) != len(columns):
                bad.append((start, end, f"expected {len(columns)} fields, found {len(fields)}"))
                continue
            records.append(fields)
            starts.append(start)
            ends.append(end)
    except csv.Error as exc:
        raise HistoryImportError(file, f"malformed CSV: {exc}", line=prev_end + 1) from exc
    if columns is None:
        raise HistoryImportError(file, "file is empty (no header line)")
    rows = pl.DataFrame(
        records or None,
        schema=dict.fromkeys(columns, pl.String),
        orient="row",
    ).with_columns(
        pl.Series("line", starts, dtype=pl.Int64), pl.Series("line_end", ends, dtype=pl.Int64)
    )
    table = SourceTable(file=file, rows=rows, lines=lines)
    width = pl.DataFrame(
        {
            "line": [b[0] for b in bad],
            "line_end": [b[1] for b in bad],
            "reason": [b[2] for b in bad],
        },
        schema={"line": pl.Int64, "line_end": pl.Int64, "reason": pl.String},
    )
    return table, table.quarantine(width, source)


def _header_key(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def split_bad(
    df: pl.DataFrame, checks: Sequence[tuple[pl.Expr, str]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``df`` by ordered ``(failure condition, reason)`` checks; the first failing check wins.

    Returns ``(good rows, bad rows with a "reason" column)``. Conditions evaluating to null count as
    passing, so write them to be true exactly when the row is bad.
    """
    if not checks:
        return df, df.head(0).with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, text in reversed(checks):
        reason = pl.when(condition.fill_null(False)).then(pl.lit(text)).otherwise(reason)
    marked = df.with_columns(reason.alias("reason"))
    good = marked.filter(pl.col("reason").is_null()).drop("reason")
    return good, marked.filter(pl.col("reason").is_not_null())


def blank(col: str) -> pl.Expr:
    """True when the string column is null or only whitespace."""
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def clean(col: str) -> pl.Expr:
    """Stripped string, empty -> null."""
    stripped = pl.col(col).str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def hms_seconds(col: str) -> pl.Expr:
    """``"HH:MM:SS"`` (hours may exceed 23) -> seconds as float; anything else -> null."""
    parts = pl.col(col).str.strip_chars().str.extract_groups(r"^(\d+):([0-5]\d):([0-5]\d)$")
    return (
        parts.struct.field("1").cast(pl.Float64) * 3600
        + parts.struct.field("2").cast(pl.Float64) * 60
        + parts.struct.field("3").cast(pl.Float64)
    )


HIGH_RATING_SHARE = 0.7
"""Ratings at or above this share of their scale count as "liked" (weight >= 1)."""
REWATCH_BOOST = 1.25


def implicit_weight() -> pl.Expr:
    """Implicit-feedback weight from ``rating``/``rating_scale``, ``completion`` and ``rewatch``.

    * rating share ``f = rating / rating_scale``: no rating -> 1.0; ``f >= 0.7`` ->
      ``1 + (f - 0.7) / 0.3`` (1.0 up to 2.0 for a top rating); ``f < 0.7`` -> ``0.1 + 0.9 f / 0.7``
      (small but positive: a disliked title was still chosen and watched; 0.5/5 -> 0.23, 3/5 ->
      0.87);
    * times ``0.25 + 0.75 completion`` when completion (0-1) is known (an abandoned title counts a
      quarter);
    * times 1.25 for a rewatch (choosing a title again is a strong signal).

    Always > 0, at most 2.5.
    """
    share = pl.col("rating") / pl.col("rating_scale")
    base = (
        pl.when(pl.col("rating").is_null() | pl.col("rating_scale").is_null())
        .then(1.0)
        .when(share >= HIGH_RATING_SHARE)
        .then(1.0 + (share.clip(upper_bound=1.0) - HIGH_RATING_SHARE) / (1 - HIGH_RATING_SHARE))
        .otherwise(0.1 + 0.9 * share.clip(lower_bound=0.0) / HIGH_RATING_SHARE)
    )
    completion = (
        pl.when(pl.col("completion").is_null())
        .then(1.0)
        .otherwise(0.25 + 0.75 * pl.col("completion").clip(0.0, 1.0))
    )
    rewatch = pl.when(pl.col("rewatch").fill_null(False)).then(REWATCH_BOOST).otherwise(1.0)
    return (base * completion * rewatch).alias("weight")


def with_event_ids(events: pl.DataFrame) -> pl.DataFrame:
    """Add ``event_id``: sha256 of (user_id, source, raw_identity, event time in µs, season,
    episode), so the same view imported twice gets the same id whatever file or line it came from.
    """
    micros = events["event_time"].dt.epoch("us")
    seasons = events["season"].to_list()
    episodes = events["episode"].to_list()
    ids = [
        hashlib.sha256(
            "\x1f".join(
                (u, s, r, str(t), "" if se is None else str(se), "" if ep is None else str(ep))
            ).encode("utf-8")
        ).hexdigest()
        for u, s, r, t, se, ep in zip(
            events["user_id"].to_list(),
            events["source"].to_list(),
            events["raw_identity"].to_list(),
            micros.to_list(),
            seasons,
            episodes,
            strict=True,
        )
    ]
    return events.with_columns(pl.Series("event_id", ids, dtype=pl.String))


IMPORTS_LOCK = ".imports.lock"
"""Lock file in the lake root held while ``unresolved_events`` / ``watch_events`` are rewritten."""


def imports_lock(lake: Path) -> FileLock:
    """The exclusive lock of ``<lake>/.imports.lock`` (``with imports_lock(lake): ...``), held by
    the importer's read-dedupe-write and by late resolution, which both rewrite
    ``unresolved_events``. An OS file lock (``flock`` on POSIX), so it also excludes other
    processes; the file is kept between runs."""
    lake.mkdir(parents=True, exist_ok=True)
    return FileLock(lake / IMPORTS_LOCK, preserve_lock_file=True)
