"""Late resolution: ask TMDB for the titles the local catalogue lacks, then resolve waiting rows.

History rows that matched no catalogue title wait in ``unresolved_events`` with their reason. The
nightly runs two steps:

1. :func:`lookup_missing_titles` (asset ``tmdb_late_titles``, before ``titles``): for the waiting
   rows whose reason says the catalogue has no such title (``"no title match..."``, including
   ``"(ids not in catalogue)"``), ask TMDB through the real client: the details of a row's TMDB
   id (Trakt gives one) when its type is known, else ``/find/{imdb id}?external_source=imdb_id``
   for rows with an IMDb id, else ``/search/{movie|tv}`` by title and year (a bare title without
   a type is searched as a film and as a series), ``max_concurrency`` queries at a time. The
   first :data:`SEARCH_KEEP` results of each answer are fetched in full (details with aliases), and a
   fetched title is kept only when :class:`~pipelines.lib.matching.TitleResolver`, run over the
   fetched titles alone, resolves a waiting row to it: the same rules as any import, so a search
   answer never adds a title no one watched. Kept titles go to the lake table
   ``tmdb_late_titles`` (merged by ``title_id``), which the ``titles`` asset unions in.
   Every query is logged in ``tmdb_lookups`` (query, year, when, how many titles kept) and
   is not asked again for :data:`LOOKUP_RETRY_DAYS` days, found or not.
2. :func:`resolve_waiting` (in the ``watch_events`` asset, after the day's imports): every waiting
   row is resolved again against the current catalogue; resolved rows move to ``watch_events``
   (a batch file of their own) and leave ``unresolved_events``; rows still unresolved are left as
   they are, with their original reason.

Step 1 reads what earlier runs left waiting, so a row imported today is looked up in tomorrow's
nightly (the graph stays acyclic: ``titles`` comes before ``watch_events``, and every event's
``title_id`` is always in ``titles``). Privacy: TMDB receives a title and a year, or an IMDb id,
never who watched it; logs carry counts only.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from core.lake import read_table, table_dir, write_partition, write_table
from core.schemas import UNRESOLVED_EVENTS, conform, empty
from pipelines.lib import tmdb
from pipelines.lib.histories.common import implicit_weight, imports_lock
from pipelines.lib.matching import TitleResolver

logger = logging.getLogger(__name__)

SEARCH_KEEP = 3
"""Search results fetched in full per query (TMDB ranks the likely title first)."""
LOOKUP_RETRY_DAYS = 30
"""A query TMDB was asked is not asked again for this many days (found or not)."""
LOOKUPS = {
    "query": pl.String,  # "find:<imdb id>" or "search:<kind>:<title>"
    "year": pl.Int32,
    "asked_at": pl.Datetime("us", "UTC"),
    "titles_kept": pl.Int32,
}
"""Columns of the ``tmdb_lookups`` lake table."""
LOOKUP_REASONS = ("no title match",)
"""Unresolved reasons (prefixes) that mean "the catalogue lacks this title"."""


@dataclass(frozen=True)
class LateLookup:
    """What :func:`lookup_missing_titles` did: titles to add, the updated lookup log, counts."""

    titles: pl.DataFrame
    lookups: pl.DataFrame
    rows_waiting: int
    queries_asked: int
    queries_skipped: int


def _query(row: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(query id, TMDB call, year) of one waiting row; the call is ``details``, ``find`` or a
    search kind."""
    kind = {"movie": "movie", "series": "tv"}.get(row["title_type"] or "")
    if row["tmdb_id"] is not None and kind:
        return [(f"details:{kind}:{row['tmdb_id']}", "details", None)]
    if row["imdb_id"]:
        return [(f"find:{row['imdb_id']}", "find", None)]
    title = (row["raw_title"] or "").strip()
    if not title:
        return []
    kinds = {"movie": ["movie"], "series": ["tv"]}.get(row["title_type"] or "", ["movie", "tv"])
    return [(f"search:{k}:{title}", k, row["year"]) for k in kinds]


def _ask(
    client: tmdb.TMDBSource, query_id: str, call: str, year: int | None
) -> dict[tmdb.Kind, list[int]]:
    """TMDB ids one query finds, per kind (at most :data:`SEARCH_KEEP` of a search or find)."""
    out: dict[tmdb.Kind, list[int]] = {"movie": [], "tv": []}
    if call == "details":
        _, kind_text, tmdb_id = query_id.split(":")
        out["movie" if kind_text == "movie" else "tv"].append(int(tmdb_id))
    elif call == "find":
        answer = client.find_imdb(query_id.removeprefix("find:"))
        for kind in tmdb.KINDS:
            out[kind] = [int(r["id"]) for r in answer[kind][:SEARCH_KEEP]]
    else:
        kind = "movie" if call == "movie" else "tv"
        text = query_id.split(":", 2)[2]
        out[kind] = [int(r["id"]) for r in client.search(kind, text, year)[:SEARCH_KEEP]]
    return out


def waiting_for_lookup(unresolved: pl.DataFrame) -> pl.DataFrame:
    """The waiting rows TMDB may know: reason "no title match..." (not ambiguous, not empty)."""
    return unresolved.filter(
        pl.any_horizontal(pl.col("reason").str.starts_with(r) for r in LOOKUP_REASONS)
    )


def lookup_missing_titles(
    client: tmdb.TMDBSource,
    unresolved: pl.DataFrame,
    lookups: pl.DataFrame | None = None,
    now: datetime | None = None,
) -> LateLookup:
    """Ask TMDB about the waiting rows (see the module docstring); nothing is written here."""
    now = now or datetime.now(UTC)
    log = conform_lookups(lookups)
    recent = set(
        log.filter(pl.col("asked_at") > now - timedelta(days=LOOKUP_RETRY_DAYS))
        .select(pl.concat_str("query", pl.col("year").cast(pl.String).fill_null("")))
        .to_series()
        .to_list()
    )
    waiting = conform(waiting_for_lookup(unresolved), "unresolved_events")
    rows = (
        waiting.select("raw_title", "year", "title_type", "tmdb_id", "imdb_id").unique().to_dicts()
    )
    queries = {q for row in rows for q in _query(row)}
    todo = sorted(
        (q for q in queries if f"{q[0]}{'' if q[2] is None else q[2]}" not in recent),
        key=lambda q: (q[0], q[2] or 0),
    )
    found: dict[tmdb.Kind, list[int]] = {"movie": [], "tv": []}
    with ThreadPoolExecutor(client.max_concurrency, thread_name_prefix="tmdb-late") as pool:
        for answer in pool.map(lambda q: _ask(client, *q), todo):
            for kind in tmdb.KINDS:
                found[kind] += answer[kind]
    fetched = [
        tmdb.details_to_title(kind, d)
        for kind in tmdb.KINDS
        if found[kind]
        for d in client.details_many(kind, found[kind], skip_missing=True)
    ]
    candidates = tmdb.titles_frame(fetched).unique("title_id", keep="first", maintain_order=True)
    kept = _watched(candidates, waiting)
    per_query = _kept_per_query(kept, waiting)
    asked = pl.DataFrame(
        {
            "query": [q[0] for q in todo],
            "year": [q[2] for q in todo],
            "asked_at": [now] * len(todo),
            "titles_kept": [per_query.get(q[0], 0) for q in todo],
        },
        schema=LOOKUPS,
    )
    logger.info(
        "late resolution: %d waiting rows, %d TMDB queries (%d asked recently), "
        "%d titles fetched, %d kept",
        waiting.height,
        len(todo),
        len(queries) - len(todo),
        candidates.height,
        kept.height,
    )
    return LateLookup(
        titles=kept,
        lookups=pl.concat([log, asked]).unique(["query", "year"], keep="last"),
        rows_waiting=waiting.height,
        queries_asked=len(todo),
        queries_skipped=len(queries) - len(todo),
    )


def conform_lookups(lookups: pl.DataFrame | None) -> pl.DataFrame:
    """The lookup log in :data:`LOOKUPS` columns (empty when None)."""
    if lookups is None or lookups.is_empty():
        return pl.DataFrame(schema=LOOKUPS)
    return lookups.select([pl.col(c).cast(t) for c, t in LOOKUPS.items()])


def _watched(candidates: pl.DataFrame, waiting: pl.DataFrame) -> pl.DataFrame:
    """The fetched titles some waiting row resolves to (by the import's own rules)."""
    if candidates.is_empty() or waiting.is_empty():
        return conform(candidates.clear(), "titles")
    hits = TitleResolver(candidates).resolve(waiting)["title_id"].drop_nulls().unique()
    return conform(candidates.filter(pl.col("title_id").is_in(hits.implode())), "titles")


def _kept_per_query(kept: pl.DataFrame, waiting: pl.DataFrame) -> dict[str, int]:
    if kept.is_empty():
        return {}
    resolved = pl.concat(
        [waiting, TitleResolver(kept).resolve(waiting).select("title_id")], how="horizontal"
    ).filter(pl.col("title_id").is_not_null())
    counts: dict[str, set[str]] = {}
    for row in resolved.to_dicts():
        for query_id, _, _ in _query(row):
            counts.setdefault(query_id, set()).add(row["title_id"])
    return {k: len(v) for k, v in counts.items()}


def merge_late_titles(lake: Path, new: pl.DataFrame) -> pl.DataFrame:
    """Merge ``new`` into the lake's ``tmdb_late_titles`` (new rows win by title_id); returns
    the merged table (not rewritten when nothing is new)."""
    old = read_table(lake, "tmdb_late_titles") if (lake / "tmdb_late_titles").is_dir() else None
    old = conform(old, "titles") if old is not None else empty("titles")
    merged = pl.concat([conform(new, "titles"), old]).unique(
        "title_id", keep="first", maintain_order=True
    )
    if new.height or not (lake / "tmdb_late_titles").is_dir():
        write_table(lake, "tmdb_late_titles", merged)
    return merged


def resolve_waiting(lake: Path, catalogue: pl.DataFrame, batch: str) -> dict[str, int]:
    """Resolve every waiting row of ``unresolved_events`` against ``catalogue``; resolved rows
    move to ``watch_events`` (partition ``batch=<batch>-<hash of their ids>``, their
    ``import_batch`` is ``batch``), the rest stay, with their reason (partitions written before
    the table gained its late-resolution columns are rewritten in the current schema). Returns
    ``{"waiting", "resolved", "still_unresolved"}`` counts."""
    lake = Path(lake)
    with imports_lock(lake):
        folder = table_dir(lake, "unresolved_events")
        files = sorted(folder.glob("**/*.parquet")) if folder.is_dir() else []
        if not files or catalogue.is_empty():
            waiting = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)
            return {"waiting": waiting, "resolved": 0, "still_unresolved": waiting}
        waiting = pl.concat([conform(pl.read_parquet(f), "unresolved_events") for f in files])
        resolution = TitleResolver(catalogue).resolve(waiting)
        done = pl.concat([waiting.drop("reason"), resolution], how="horizontal").filter(
            pl.col("title_id").is_not_null()
        )
        known = read_table(lake, "watch_events").select("event_id")
        events = conform(
            done.join(known, on="event_id", how="anti").with_columns(
                implicit_weight(),
                event_date=pl.col("event_time").dt.date(),
                import_batch=pl.lit(batch),
            ),
            "watch_events",
        )
        if events.height:
            digest = hashlib.sha256("\x1f".join(sorted(events["event_id"])).encode()).hexdigest()
            write_partition(lake, "watch_events", f"batch={batch}-{digest[:8]}", events)
        moved = done["event_id"].to_list()
        wanted = list(UNRESOLVED_EVENTS)
        for path in files:
            df = pl.read_parquet(path)
            keep = df.filter(~pl.col("event_id").is_in(moved))
            if keep.height == df.height and df.columns == wanted:
                continue  # nothing moved, and already in the current schema
            if keep.is_empty():
                path.unlink()
            else:
                write_partition(lake, "unresolved_events", path.stem, keep)
    logger.info(
        "late resolution: %d waiting rows, %d resolved, %d still unresolved",
        waiting.height,
        done.height,
        waiting.height - done.height,
    )
    return {
        "waiting": waiting.height,
        "resolved": done.height,
        "still_unresolved": waiting.height - done.height,
    }
