"""Platform catalogue snapshots (Kaggle Netflix / Prime Video / Disney+ / Hulu CSVs) as titles and
availability, and their matching to TMDB titles.

Files: ``{netflix,amazon_prime,disney_plus,hulu}_titles.csv`` with ``show_id,type,title,director,
cast,country,date_added,release_year,rating,duration,listed_in,description`` (Amazon's file has
``genre`` instead of ``listed_in`` and no ``description``). The snapshots are US catalogues, so
every offer is ``country="US"``, ``monetization="FLATRATE"``, ``source="catalog"``, no deep link.
``last_seen`` is the latest ``date_added`` in the file (the snapshot was taken on or after it).

Bad rows (wrong field count, empty id or title, unknown type, bad year or date, duplicate id) go
to a QUARANTINE frame with file and 1-based line (header = line 1), or raise
:class:`CatalogFormatError` with ``on_bad_row="raise"``. A file with missing columns always raises.

Matching (:func:`match_to_tmdb`): same type and same :func:`normalize_title` of the title (or the
TMDB original title; a leading article does not count here: catalogues drop it, "Matrix" on Prime
Video, and the year bounds keep different works apart); movies within ±1 year; series when the
catalogue year is at most one year before TMDB's first-air year (catalogues often date a series
by its latest season). The closest year wins, then TMDB popularity.

One work, several rows (:func:`merge_works`): the catalogues list the same work on several
services, often with different years (Star Trek: The Next Generation 1993 on one, 1994 on another;
Vikings 2011 vs 2020, a series dated by its first or its latest season). Rows are merged into one
work per real title: ids first (platform rows have none, so their TMDB match is the id: rows that
matched one TMDB title are one work), then title key + type + close years + people (cast and
directors, :func:`_same_work`). A work with a TMDB match is that TMDB title (its other rows'
offers move to it); a platform-only work keeps the first service's ``catalog:<service>:<show_id>``
(service order below). Every service's offer is kept, on the merged title.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from core.content import content_hash, content_text
from core.schemas import AVAILABILITY, QUARANTINE, TITLES, conform
from pipelines.lib.matching import normalize_title

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    file_stem: str
    provider_id: str
    provider_name: str


SERVICES = (
    Service("netflix", "netflix", "Netflix"),
    Service("amazon_prime", "amazonprime", "Amazon Prime Video"),
    Service("disney_plus", "disneyplus", "Disney Plus"),
    Service("hulu", "hulu", "Hulu"),
)
"""Known catalogues, in priority order (first wins when unmatched duplicates collapse)."""

CATALOG_COUNTRY = "US"
REQUIRED = (
    "show_id",
    "type",
    "title",
    "director",
    "cast",
    "date_added",
    "release_year",
    "duration",
)
TYPES = {"Movie": "movie", "TV Show": "series"}
DATE_FORMATS = ("%Y-%m-%d", "%B %d, %Y")
CAST_LIMIT = 10
MATCHES_SCHEMA = {"catalog_title_id": pl.String, "title_id": pl.String}


class CatalogFormatError(ValueError):
    """A catalogue file cannot be read (the message names file and line)."""


@dataclass(frozen=True)
class CatalogLoad:
    """Result of reading catalogues: TITLES-like frame, AVAILABILITY rows, QUARANTINE rows, and
    the number of data rows read per file."""

    titles: pl.DataFrame
    availability: pl.DataFrame
    quarantine: pl.DataFrame
    rows_read: dict[str, int]


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"date_added {text!r} is not YYYY-MM-DD or 'Month D, YYYY'")


def _runtime(kind: str, duration: str) -> int | None:
    parts = duration.split()
    if kind == "movie" and len(parts) == 2 and parts[1] == "min" and parts[0].isdigit():
        return int(parts[0])
    return None


def _raw(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()


def read_catalog(
    path: Path,
    service: Service,
    *,
    on_bad_row: Literal["quarantine", "raise"] = "quarantine",
    import_batch: str = "platform_catalogs",
) -> CatalogLoad:
    """Read one catalogue CSV into titles, availability and quarantine frames."""
    path = Path(path)
    titles: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    added: list[date] = []
    seen: set[str] = set()
    read = 0
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise CatalogFormatError(f"{path}:1: empty file, expected a header")
        header = [h.strip() for h in header]
        genre_col = "listed_in" if "listed_in" in header else "genre"
        missing = [c for c in (*REQUIRED, genre_col) if c not in header]
        if missing:
            raise CatalogFormatError(f"{path}:1: missing column(s) {', '.join(missing)}")
        index = {name: i for i, name in enumerate(header)}
        consumed = reader.line_num
        for row in reader:
            line, consumed = consumed + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            read += 1
            try:
                rec, added_on = _catalog_record(row, header, index, genre_col, service, seen)
            except ValueError as exc:
                if on_bad_row == "raise":
                    raise CatalogFormatError(f"{path}:{line}: {exc}") from exc
                quarantine.append(
                    {
                        "file": str(path),
                        "line": line,
                        "source": f"catalog:{service.provider_id}",
                        "raw": _raw(row),
                        "reason": str(exc),
                        "import_batch": import_batch,
                    }
                )
                continue
            if added_on is not None:
                added.append(added_on)
            titles.append(rec)
    if quarantine:
        logger.warning("%s: %d bad row(s) quarantined", path.name, len(quarantine))
    last_seen = datetime.combine(max(added), datetime.min.time(), tzinfo=UTC) if added else None
    titles_df = conform(pl.DataFrame(titles, schema=TITLES), "titles")
    availability = conform(
        titles_df.select("title_id").with_columns(
            pl.lit(CATALOG_COUNTRY).alias("country"),
            pl.lit(service.provider_id).alias("provider_id"),
            pl.lit(service.provider_name).alias("provider_name"),
            pl.lit("FLATRATE").alias("monetization"),
            pl.lit("catalog").alias("source"),
            pl.lit(last_seen, dtype=AVAILABILITY["last_seen"]).alias("last_seen"),
        ),
        "availability",
    )
    quarantine_df = conform(pl.DataFrame(quarantine, schema=QUARANTINE), "quarantine")
    logger.info(
        "%s: %d rows read, %d titles, %d quarantined",
        path.name,
        read,
        titles_df.height,
        quarantine_df.height,
    )
    return CatalogLoad(titles_df, availability, quarantine_df, {path.name: read})


def _catalog_record(
    row: list[str],
    header: list[str],
    index: dict[str, int],
    genre_col: str,
    service: Service,
    seen: set[str],
) -> tuple[dict[str, Any], date | None]:
    """One TITLES row (and its ``date_added``) from a CSV record; ``ValueError`` says why the
    record is bad."""
    if len(row) != len(header):
        raise ValueError(f"expected {len(header)} fields, found {len(row)}")

    def get(name: str) -> str:
        return row[index[name]].strip() if name in index else ""

    show_id, title, raw_type = get("show_id"), get("title"), get("type")
    if not show_id:
        raise ValueError("empty show_id")
    if show_id in seen:
        raise ValueError(f"duplicate show_id {show_id!r}")
    if not title:
        raise ValueError("empty title")
    if raw_type not in TYPES:
        raise ValueError(f"type {raw_type!r} is not 'Movie' or 'TV Show'")
    year_text = get("release_year")
    if not year_text.isdigit() or not 1880 <= int(year_text) <= 2100:
        raise ValueError(f"release_year {year_text!r} is not a year")
    added = _parse_date(get("date_added"))
    seen.add(show_id)
    kind = TYPES[raw_type]
    rec: dict[str, Any] = {
        "title_id": f"catalog:{service.provider_id}:{show_id}",
        "tmdb_id": None,
        "imdb_id": None,
        "type": kind,
        "title": title,
        "original_title": title,
        "year": int(year_text),
        "release_date": None,
        "overview": get("description") or None,
        "genres": _split(get(genre_col)),
        "keywords": [],
        "cast": _split(get("cast"))[:CAST_LIMIT],
        "directors": _split(get("director")),
        "runtime": _runtime(kind, get("duration")),
        "language": None,
        "source": f"catalog:{service.provider_id}",
    }
    rec["content_hash"] = content_hash(content_text(rec))
    return rec, added


def load_catalogs(
    folder: Path,
    services: Iterable[Service] = SERVICES,
    *,
    on_bad_row: Literal["quarantine", "raise"] = "quarantine",
    import_batch: str = "platform_catalogs",
) -> CatalogLoad:
    """Read every ``<file_stem>_titles.csv`` of ``services`` in ``folder`` (all must exist)."""
    folder = Path(folder)
    loads = []
    for service in services:
        path = folder / f"{service.file_stem}_titles.csv"
        if not path.is_file():
            raise CatalogFormatError(f"catalogue file not found: {path}")
        loads.append(read_catalog(path, service, on_bad_row=on_bad_row, import_batch=import_batch))
    return CatalogLoad(
        titles=pl.concat([x.titles for x in loads], how="vertical"),
        availability=pl.concat([x.availability for x in loads], how="vertical"),
        quarantine=pl.concat([x.quarantine for x in loads], how="vertical"),
        rows_read={k: v for x in loads for k, v in x.rows_read.items()},
    )


def _keyed(column: str) -> pl.Expr:
    return pl.col(column).map_elements(normalize_title, return_dtype=pl.String)


def match_to_tmdb(platform_titles: pl.DataFrame, tmdb_titles: pl.DataFrame) -> pl.DataFrame:
    """``catalog_title_id -> title_id`` of the best TMDB match (unmatched titles are absent)."""
    if platform_titles.is_empty() or tmdb_titles.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    left = platform_titles.select(
        pl.col("title_id").alias("catalog_title_id"),
        _keyed("title").alias("key"),
        pl.col("year").cast(pl.Int32).alias("catalog_year"),
        "type",
    ).filter(pl.col("key") != "", pl.col("catalog_year").is_not_null())
    tmdb = tmdb_titles.filter(pl.col("tmdb_id").is_not_null(), pl.col("year").is_not_null())
    base = tmdb.select(
        "title_id",
        "type",
        pl.col("year").cast(pl.Int32).alias("tmdb_year"),
        pl.col("popularity").cast(pl.Float64).fill_null(0.0).alias("popularity"),
        pl.col("title").fill_null(""),
        pl.col("original_title").fill_null(""),
    )
    right = (
        pl.concat(
            [
                base.with_columns(_keyed("title").alias("key")),
                base.with_columns(_keyed("original_title").alias("key")),
            ],
            how="vertical",
        )
        .drop("title", "original_title")
        .filter(pl.col("key") != "")
        .unique(["title_id", "key"])
    )
    delta = pl.col("catalog_year") - pl.col("tmdb_year")
    candidates = left.join(right, on=["key", "type"], how="inner").filter(
        pl.when(pl.col("type") == "series").then(delta >= -1).otherwise(delta.abs() <= 1)
    )
    return (
        candidates.with_columns(delta.abs().alias("distance"))
        .sort(
            ["catalog_title_id", "distance", "popularity", "title_id"],
            descending=[False, False, True, False],
        )
        .unique("catalog_title_id", keep="first", maintain_order=True)
        .select("catalog_title_id", "title_id")
    )


MOVIE_YEAR_GAP = 1
"""Platform rows of one film differ by at most this many years (festival vs release year)."""
MOVIE_YEAR_GAP_WITH_PEOPLE = 3
"""...or by up to this many when they share a cast member or director."""


def _people(row: dict[str, Any]) -> set[str]:
    return {
        normalize_title(p) for p in [*(row.get("cast") or []), *(row.get("directors") or [])]
    } - {""}


def _same_work(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two platform rows with one title key and type: the same work?

    Same year: yes. People (cast and directors) decide the rest: both rows list people and share
    none -> different works (two series called "The Office"); a shared person -> same work.
    Series of different services are the same work whatever their years unless their people
    disagree (catalogues date a series by its first or its latest season: Vikings 2011 vs 2020);
    films must be within :data:`MOVIE_YEAR_GAP` years (:data:`MOVIE_YEAR_GAP_WITH_PEOPLE` with a
    shared person). Two rows of one service are never merged unless title and year agree.
    """
    if a["year"] == b["year"]:
        return True
    if a["source"] == b["source"]:
        return False
    pa, pb = a["people"], b["people"]
    shared = bool(pa & pb)
    if pa and pb and not shared:
        return False
    if a["type"] == "series":
        return True
    if a["year"] is None or b["year"] is None:
        return shared
    gap = abs(a["year"] - b["year"])
    return gap <= (MOVIE_YEAR_GAP_WITH_PEOPLE if shared else MOVIE_YEAR_GAP)


def work_clusters(platform_titles: pl.DataFrame) -> pl.DataFrame:
    """``catalog_title_id -> title_id``: every platform row mapped to the first-ranked row
    (service order of :data:`SERVICES`, then file order) of the work it belongs to.

    Rows are grouped by :func:`normalize_title` (as :func:`match_to_tmdb`) and type, linked pairwise
    by :func:`_same_work` (a union-find, so A~B and B~C put A, B and C together).
    """
    if platform_titles.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    order = {f"catalog:{s.provider_id}": i for i, s in enumerate(SERVICES)}
    cols = {
        c: (pl.col(c) if c in platform_titles.columns else pl.lit(None, pl.List(pl.String)))
        for c in ("cast", "directors")
    }
    rows = (
        platform_titles.with_row_index("_pos")
        .select(
            "title_id",
            "title",
            pl.col("year").cast(pl.Int32),
            "type",
            "source",
            cols["cast"].alias("cast"),
            cols["directors"].alias("directors"),
            pl.col("source")
            .replace_strict(order, default=len(order), return_dtype=pl.Int32)
            .alias("_rank"),
            "_pos",
        )
        .sort("_rank", "_pos")
        .to_dicts()
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        row["people"] = _people(row)
        groups.setdefault((normalize_title(row["title"]), row["type"]), []).append(row)
    parent = {row["title_id"]: row["title_id"] for row in rows}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for members in groups.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if _same_work(a, b):
                    ra, rb = find(a["title_id"]), find(b["title_id"])
                    if ra != rb:  # members are in rank order: the earlier root stays the root
                        rank = {m["title_id"]: k for k, m in enumerate(members)}
                        first, second = sorted((ra, rb), key=lambda t: rank.get(t, len(rank)))
                        parent[second] = first
    return pl.DataFrame(
        {"catalog_title_id": [r["title_id"] for r in rows]}, schema={"catalog_title_id": pl.String}
    ).with_columns(
        pl.col("catalog_title_id").map_elements(find, return_dtype=pl.String).alias("title_id")
    )


def merge_works(platform_titles: pl.DataFrame, matched: pl.DataFrame) -> pl.DataFrame:
    """``catalog_title_id -> title_id`` for every platform row: its TMDB match, else the TMDB
    match of another row of the same work (:func:`work_clusters`), else the work's first row.
    A work whose rows matched several TMDB titles keeps each row's own match; its unmatched rows
    take the match of its first-ranked matched row."""
    clusters = work_clusters(platform_titles).rename({"title_id": "work"})
    if clusters.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    joined = clusters.with_row_index("_pos").join(
        matched.rename({"title_id": "tmdb"}), on="catalog_title_id", how="left"
    )
    work_tmdb = (
        joined.filter(pl.col("tmdb").is_not_null())
        .sort("_pos")
        .group_by("work", maintain_order=True)
        .agg(pl.col("tmdb").first().alias("work_tmdb"))
    )
    return (
        joined.join(work_tmdb, on="work", how="left")
        .sort("_pos")
        .select(
            "catalog_title_id",
            pl.coalesce("tmdb", "work_tmdb", "work").alias("title_id"),
        )
    )


def attach_to_tmdb(
    load: CatalogLoad, tmdb_titles: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(platform-only titles, availability keyed by TMDB title ids where matched, quarantine)."""
    matched = match_to_tmdb(load.titles, tmdb_titles)
    mapping = merge_works(load.titles, matched)
    extra = load.titles.join(
        mapping.filter(pl.col("catalog_title_id") == pl.col("title_id")).select("title_id"),
        on="title_id",
        how="semi",
    )
    availability = (
        load.availability.join(
            mapping.rename({"title_id": "mapped", "catalog_title_id": "title_id"}),
            on="title_id",
            how="left",
        )
        .with_columns(pl.coalesce("mapped", "title_id").alias("title_id"))
        .drop("mapped")
        .unique(
            ["title_id", "country", "provider_id", "monetization"],
            keep="first",
            maintain_order=True,
        )
    )
    logger.info(
        "platform catalogues: %d rows, %d matched to TMDB (%.1f%%), %d more through another "
        "row of their work, %d platform-only works",
        load.titles.height,
        matched.height,
        100 * matched.height / max(1, load.titles.height),
        mapping.filter(pl.col("title_id").str.starts_with("catalog:").not_()).height
        - matched.height,
        extra.height,
    )
    return (
        conform(extra, "titles"),
        conform(availability, "availability"),
        conform(load.quarantine, "quarantine"),
    )
