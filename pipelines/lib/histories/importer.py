"""Import watch-history exports: parse, resolve titles, and append to the lake idempotently.

:func:`parse_and_resolve` does the pure part (no writes; used by the Dagster asset and by
:func:`import_files`); :func:`import_files` also appends to the lake tables ``watch_events``,
``unresolved_events`` and ``quarantine`` as per-batch partition files
``<lake>/<table>/batch=<batch_id>.parquet`` (:func:`core.lake.write_partition`).

Decisions:

* **Users.** Single-user exports (Netflix ViewingHistory, Letterboxd, IMDb, Trakt) belong to
  ``user_id``. Multi-user files are namespaced so ``user_id`` acts as a dataset/account prefix:
  MovieLens users become ``"<user_id>-<userId>"``, Netflix ViewingActivity profiles become
  ``"<user_id>-<profile slug>"`` (or exactly ``user_id`` when ``profile`` selects one profile).
* **Idempotence.** ``event_id`` is a hash of (user, source, raw identity, time, season, episode),
  so re-importing a file yields the same ids. Times have the source's precision, so identical rows
  at the same time are one view (Netflix ViewingHistory has dates only: the same episode twice on
  one day counts once; repeats are counted in ``duplicates_skipped``). Before writing, events
  already in ``watch_events`` are skipped, unresolved events already in either table are skipped,
  and quarantine rows already present (same file name, line, raw text and reason) are skipped;
  nothing new means no file is written. If the batch's partition file already exists (a rerun with
  the same ``batch_id``), the new rows are merged into it, never replacing rows already there.
* **Late resolution.** When an event that was unresolved in an earlier import resolves now (the
  catalogue grew), it is added to ``watch_events`` and removed from the older
  ``unresolved_events`` partition (rewritten atomically, deleted when empty), so the two tables
  never hold the same event.
* **Concurrency.** Read-dedupe-write runs under an exclusive lock file ``<lake>/.imports.lock``, so
  a CLI import and the Dagster sensor cannot interleave.
* **Catalogue.** With ``titles=None`` the lake's ``titles`` table is used. MovieLens formats add
  their movies (:func:`~pipelines.lib.histories.movielens.movielens_titles`) to the resolver's
  catalogue, and :func:`import_files` writes them to ``<lake>/movielens_titles/source=<fmt>.parquet``
  (merged by title_id) for the Dagster ``titles`` asset to union in; the ``titles`` table itself
  belongs to that pipeline and is never written here.
* **Completion and weight.** Netflix ViewingActivity completion is ``Bookmark / runtime`` of the
  resolved title (capped at 1; unknown without a catalogue runtime). Weights follow
  :func:`~pipelines.lib.histories.common.implicit_weight`.
* **Privacy.** Logs carry counts only, never titles of anyone's history.
* **Refusals.** Before parsing, a path that plainly is another format (or a folder or ZIP for a
  one-file format) is refused naming what it looks like (:mod:`.sniff`); files are read with the
  limits of :mod:`.files`. Files that parse but give no usable row (header only, every row
  quarantined or dropped) raise :class:`NothingToImportError` and nothing is written - not even
  their quarantine rows: the error carries the counts and top reasons instead. Everything the
  import refuses is a :class:`HistoryImportError` (the CLI's exit code 2).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.table import Table

from core.lake import read_columns, read_table, table_dir, write_partition
from core.schemas import conform
from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    implicit_weight,
    imports_lock,
    with_event_ids,
)
from pipelines.lib.histories.imdb import parse_imdb
from pipelines.lib.histories.letterboxd import parse_letterboxd
from pipelines.lib.histories.movielens import (
    movielens_titles,
    parse_movielens,
    parse_movielens_100k,
)
from pipelines.lib.histories.netflix import (
    KnownTitles,
    parse_netflix_activity,
    parse_netflix_history,
)
from pipelines.lib.histories.sniff import check_format
from pipelines.lib.histories.trakt import parse_trakt
from pipelines.lib.matching import TitleResolver

__all__ = [
    "FORMATS",
    "HistoryImportError",
    "ImportSummary",
    "NothingToImportError",
    "import_files",
    "parse_and_resolve",
]

logger = logging.getLogger(__name__)

FORMATS = (
    "movielens",
    "movielens-100k",
    "netflix",
    "netflix-activity",
    "letterboxd",
    "imdb",
    "trakt",
)
MOVIELENS_FORMATS = ("movielens", "movielens-100k")
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+-]{0,127}$")


class NothingToImportError(HistoryImportError):
    """The files parsed, but not one row is a usable event (header only, all quarantined...).

    Nothing is written; ``summary`` holds the counts and quarantine reasons.
    """

    def __init__(self, file: str | Path, message: str, summary: ImportSummary) -> None:
        super().__init__(file, message)
        self.summary = summary


@dataclass
class ImportSummary:
    """Counts of one import.

    ``read`` (data rows of the files) = ``parsed`` + ``quarantined`` + ``dropped``; ``parsed`` =
    ``resolved`` + ``unresolved`` + repeats within the files.
    """

    fmt: str
    batch_id: str
    users: int = 0
    read: int = 0
    parsed: int = 0
    """Rows that became events (views or ratings), before de-duplication and resolution."""
    resolved: int = 0
    unresolved: int = 0
    quarantined: int = 0
    dropped: int = 0
    duplicates_skipped: int = 0
    """Repeated events within the files plus events already in the lake."""
    added: dict[str, int] = field(default_factory=dict)
    """Rows written per lake table (empty for :func:`parse_and_resolve`)."""
    unresolved_reasons: dict[str, int] = field(default_factory=dict)
    dropped_reasons: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    matched_by: dict[str, int] = field(default_factory=dict)
    """How resolved events were matched (tmdb, imdb, native, title+year, title...)."""
    warnings: list[str] = field(default_factory=list)
    """Things to check (a guessed date order, a fallback encoding); shown by the CLI."""

    @property
    def resolution_rate(self) -> float:
        """Resolved share of the distinct events *and* the quarantined rows (a malformed row is a
        view that could not be resolved); 0.0 when there were none."""
        total = self.resolved + self.unresolved + self.quarantined
        return self.resolved / total if total else 0.0

    def as_metadata(self) -> dict[str, Any]:
        """Flat dict (str -> int/float/str) for Dagster metadata and logs."""
        out: dict[str, Any] = {
            "format": self.fmt,
            "batch_id": self.batch_id,
            "users": self.users,
            "read": self.read,
            "parsed": self.parsed,
            "resolved": self.resolved,
            "unresolved": self.unresolved,
            "quarantined": self.quarantined,
            "dropped": self.dropped,
            "duplicates_skipped": self.duplicates_skipped,
            "resolution_rate": round(self.resolution_rate, 4),
        }
        out.update({f"added_{table}": n for table, n in sorted(self.added.items())})
        for prefix, counts in (
            ("unresolved", self.unresolved_reasons),
            ("dropped", self.dropped_reasons),
            ("quarantined", self.quarantine_reasons),
            ("matched_by", self.matched_by),
        ):
            out.update({f"{prefix}[{k}]": v for k, v in sorted(counts.items())})
        return out

    def as_table(self) -> Table:
        """A rich table for the CLI."""
        table = Table(title=f"Import {self.fmt} (batch {self.batch_id})", show_header=True)
        table.add_column("what")
        table.add_column("count", justify="right")
        for name in ("users", "read", "parsed", "quarantined", "dropped", "resolved", "unresolved"):
            table.add_row(name, f"{getattr(self, name):,}")
        table.add_row("duplicates skipped", f"{self.duplicates_skipped:,}")
        table.add_row("resolution rate (incl. quarantined)", f"{self.resolution_rate:.1%}")
        for name, n in sorted(self.added.items()):
            table.add_row(f"added to {name}", f"{n:,}")
        for label, counts in (
            ("unresolved", self.unresolved_reasons),
            ("dropped", self.dropped_reasons),
            ("quarantined", self.quarantine_reasons),
            ("matched by", self.matched_by),
        ):
            for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
                table.add_row(f"  {label}: {reason}", f"{n:,}")
        return table


@dataclass
class _Outcome:
    events: pl.DataFrame
    unresolved: pl.DataFrame
    quarantine: pl.DataFrame
    summary: ImportSummary
    movielens_titles: pl.DataFrame | None


def default_batch_id(fmt: str, user_id: str, paths: list[Path]) -> str:
    """``"<fmt>-<16 hex>"``: a hash of format, user and the bytes of every file imported (a folder
    counts with all files under it), so the same files give the same batch."""
    digest = hashlib.sha256(f"{fmt}\x1f{user_id}".encode())
    for path in paths:
        files = (
            sorted(p for p in Path(path).rglob("*") if p.is_file())
            if Path(path).is_dir()
            else [Path(path)]
        )
        for file in files:
            digest.update(str(file.name).encode())
            try:
                with file.open("rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        digest.update(chunk)
            except OSError as exc:
                raise HistoryImportError(file, f"cannot read file: {exc.strerror or exc}") from exc
    return f"{fmt}-{digest.hexdigest()[:16]}"


def _parse(
    fmt: str,
    user_id: str,
    paths: list[Path],
    catalogue: pl.DataFrame,
    date_format: str | None,
    profile: str | None,
) -> ParseResult:
    if fmt == "movielens":
        return parse_movielens(paths, user_id)
    if fmt == "movielens-100k":
        return parse_movielens_100k(paths, user_id, catalogue)
    if fmt == "netflix":
        return parse_netflix_history(
            paths, user_id, date_format=date_format, known=KnownTitles.from_catalogue(catalogue)
        )
    if fmt == "netflix-activity":
        return parse_netflix_activity(
            paths, user_id, profile=profile, known=KnownTitles.from_catalogue(catalogue)
        )
    if fmt == "letterboxd":
        return parse_letterboxd(paths, user_id)
    if fmt == "imdb":
        return parse_imdb(paths, user_id)
    if fmt == "trakt":
        return parse_trakt(paths, user_id)
    raise AssertionError(fmt)  # formats are validated before dispatch


def _check_args(fmt: str, user_id: str, paths: list[Path]) -> list[Path]:
    if fmt not in FORMATS:
        raise HistoryImportError(
            paths[0] if paths else "<no file>",
            f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}",
        )
    if not user_id or not user_id.strip():
        raise HistoryImportError(paths[0] if paths else "<no file>", "user id must not be empty")
    if not paths:
        raise HistoryImportError("<no file>", f"no {fmt} files given")
    out = [Path(p) for p in paths]
    for p in out:
        if not p.exists() and not p.is_symlink():
            raise HistoryImportError(p, "no such file or folder")
    check_format(fmt, out)
    return out


def _nothing_to_import(
    paths: list[Path], summary: ImportSummary, quarantine: pl.DataFrame
) -> NothingToImportError:
    """The error for files without one usable row, saying what became of the rows (and where
    the first quarantined one is)."""
    where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
    if summary.read == 0:
        return NothingToImportError(where, "nothing to import: no data rows", summary)
    parts = []
    if summary.quarantined:
        top = sorted(summary.quarantine_reasons.items(), key=lambda kv: -kv[1])[:3]
        first = quarantine.sort("file", "line").row(0, named=True)
        parts.append(
            f"{summary.quarantined:,} quarantined ("
            + "; ".join(f"{n:,} x {reason}" for reason, n in top)
            + f"; first at {first['file']}:{first['line']})"
        )
    if summary.dropped:
        top = sorted(summary.dropped_reasons.items(), key=lambda kv: -kv[1])[:3]
        parts.append(
            f"{summary.dropped:,} dropped as not views ("
            + "; ".join(f"{n:,} x {reason}" for reason, n in top)
            + ")"
        )
    return NothingToImportError(
        where,
        f"nothing to import: none of the {summary.read:,} data rows is usable: " + ", ".join(parts),
        summary,
    )


def _run(
    fmt: str,
    user_id: str,
    paths: list[Path],
    titles: pl.DataFrame,
    batch_id: str | None,
    date_format: str | None,
    profile: str | None,
) -> _Outcome:
    paths = _check_args(fmt, user_id, paths)
    batch = batch_id or default_batch_id(fmt, user_id, paths)
    if not _BATCH_ID.match(batch):
        raise ValueError(f"batch id {batch!r} must match {_BATCH_ID.pattern} (it names a file)")
    ml_titles = None
    catalogue = titles
    if fmt in MOVIELENS_FORMATS:
        ml_titles = pl.concat([movielens_titles(p, titles) for p in paths]).unique(
            "title_id", keep="first", maintain_order=True
        )
        catalogue = pl.concat([conform(titles, "titles"), ml_titles])
    parsed = _parse(fmt, user_id, paths, titles, date_format, profile)
    raw = with_event_ids(parsed.events)
    distinct = raw.unique("event_id", keep="first", maintain_order=True)
    repeated = raw.height - distinct.height

    resolution = TitleResolver(catalogue).resolve(distinct)
    done = pl.concat([distinct, resolution], how="horizontal")
    ok = done.filter(pl.col("title_id").is_not_null())
    bad = done.filter(pl.col("title_id").is_null())

    runtime = catalogue.select(
        "title_id",
        (pl.col("runtime") if "runtime" in catalogue.columns else pl.lit(None))
        .cast(pl.Float64)
        .alias("runtime"),
    ).unique("title_id", keep="first")
    ok = ok.join(runtime, on="title_id", how="left", maintain_order="left").with_columns(
        completion=pl.coalesce(
            "completion",
            pl.when(pl.col("runtime") > 0).then(
                (pl.col("bookmark_seconds") / (pl.col("runtime") * 60)).clip(upper_bound=1.0)
            ),
        )
    )
    events = conform(
        ok.with_columns(
            implicit_weight(),
            event_date=pl.col("event_time").dt.date(),
            import_batch=pl.lit(batch),
        ),
        "watch_events",
    )
    unresolved = conform(bad.with_columns(import_batch=pl.lit(batch)), "unresolved_events")
    quarantine = conform(
        parsed.quarantine.with_columns(import_batch=pl.lit(batch), user_id=pl.lit(user_id)),
        "quarantine",
    )

    summary = ImportSummary(
        fmt=fmt,
        batch_id=batch,
        users=distinct["user_id"].n_unique(),
        read=parsed.rows_read,
        resolved=ok.height,
        unresolved=bad.height,
        quarantined=quarantine.height,
        dropped=sum(parsed.dropped.values()),
        duplicates_skipped=repeated,
        unresolved_reasons=_counts(bad["reason"]),
        dropped_reasons=dict(parsed.dropped),
        quarantine_reasons=_counts(quarantine["reason"]),
        matched_by=_counts(ok["match"]),
        parsed=parsed.events.height,
        warnings=list(parsed.warnings),
    )
    if summary.resolved == 0 and summary.unresolved:
        summary.warnings.append(
            f"none of the {summary.unresolved:,} events matched a catalogue title "
            f"({len(catalogue):,} titles); they wait in unresolved_events with their reasons "
            "and resolve when the catalogue has them"
        )
    for warning in summary.warnings:
        logger.warning("%s", warning)
    if summary.parsed == 0:
        raise _nothing_to_import(paths, summary, quarantine)
    return _Outcome(events, unresolved, quarantine, summary, ml_titles)


def _counts(values: pl.Series) -> dict[str, int]:
    return dict(Counter(v for v in values.to_list() if v is not None))


def parse_and_resolve(
    fmt: str,
    user_id: str,
    paths: list[Path],
    titles: pl.DataFrame,
    *,
    batch_id: str | None = None,
    date_format: str | None = None,
    profile: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, ImportSummary]:
    """Parse and resolve without writing: ``(watch_events, unresolved_events, quarantine,
    summary)`` frames in their lake schemas. ``date_format`` applies to ``netflix``, ``profile`` to
    ``netflix-activity`` (see their parsers). Bad files raise :class:`HistoryImportError`."""
    out = _run(fmt, user_id, paths, titles, batch_id, date_format, profile)
    logger.info("parsed %s: %s", fmt, _log_counts(out.summary))
    return out.events, out.unresolved, out.quarantine, out.summary


def _log_counts(s: ImportSummary) -> str:
    return (
        f"users={s.users} read={s.read} resolved={s.resolved} unresolved={s.unresolved} "
        f"quarantined={s.quarantined} dropped={s.dropped} duplicates={s.duplicates_skipped}"
    )


def _append(lake: Path, table: str, batch: str, rows: pl.DataFrame) -> None:
    """Write ``rows`` as the batch's partition file, merged into it if it already exists (a rerun
    with the same batch id): rows already written are never replaced. No rows, no file."""
    if rows.is_empty():
        return
    partition = f"batch={batch}"
    path = table_dir(lake, table) / f"{partition}.parquet"
    if path.exists():
        rows = pl.concat([conform(pl.read_parquet(path), table), conform(rows, table)])
    write_partition(lake, table, partition, rows)


def _prune_unresolved(lake: Path, resolved_ids: pl.Series) -> int:
    """Remove now-resolved events from older unresolved_events partitions; returns rows removed."""
    folder = table_dir(lake, "unresolved_events")
    if resolved_ids.is_empty() or not folder.is_dir():
        return 0
    removed = 0
    ids = resolved_ids.to_list()
    for path in sorted(folder.glob("**/*.parquet")):
        df = pl.read_parquet(path)
        keep = df.filter(~pl.col("event_id").is_in(ids))
        if keep.height == df.height:
            continue
        removed += df.height - keep.height
        if keep.is_empty():
            path.unlink()
        else:
            write_partition(lake, "unresolved_events", path.stem, keep)
    return removed


def _quarantine_key() -> pl.Expr:
    name = pl.col("file").str.replace(r"^.*[/\\]", "")
    return pl.concat_str(
        [name, pl.col("line").cast(pl.String), pl.col("raw"), pl.col("reason")],
        separator="\x1f",
        ignore_nulls=True,
    )


def _write_movielens_titles(lake: Path, fmt: str, titles: pl.DataFrame) -> None:
    """Merge ``titles`` into ``<lake>/movielens_titles/source=<fmt>.parquet`` (new rows win by
    title_id); unchanged content is not rewritten."""
    partition = f"source={fmt}"
    path = table_dir(lake, "movielens_titles") / f"{partition}.parquet"
    merged = conform(titles, "titles")
    if path.exists():
        old = conform(pl.read_parquet(path), "titles")
        merged = pl.concat([merged, old]).unique("title_id", keep="first", maintain_order=True)
        key = ["title_id", "content_hash"]
        if merged.select(key).sort(key).equals(old.select(key).sort(key)):
            return
    write_partition(lake, "movielens_titles", partition, merged)


def import_files(
    fmt: str,
    user_id: str,
    paths: list[Path],
    lake: Path,
    titles: pl.DataFrame | None = None,
    batch_id: str | None = None,
    *,
    date_format: str | None = None,
    profile: str | None = None,
) -> ImportSummary:
    """Import export files of format ``fmt`` for ``user_id`` into ``lake`` (see the module
    docstring); returns what was read, resolved and written. Re-importing adds nothing."""
    lake = Path(lake)
    if titles is None:
        titles = read_table(lake, "titles")
        if titles.is_empty() and fmt not in MOVIELENS_FORMATS:
            logger.warning("lake %s has no titles table: every event will be unresolved", lake)
    out = _run(fmt, user_id, paths, titles, batch_id, date_format, profile)
    summary, batch = out.summary, out.summary.batch_id
    with imports_lock(lake):
        if out.movielens_titles is not None:
            _write_movielens_titles(lake, fmt, out.movielens_titles)
        known = read_columns(lake, "watch_events", ["event_id"])
        new_events = out.events.join(known, on="event_id", how="anti")
        pending = read_columns(lake, "unresolved_events", ["event_id"])
        new_unresolved = out.unresolved.join(known, on="event_id", how="anti").join(
            pending, on="event_id", how="anti"
        )
        seen_q = read_columns(lake, "quarantine", ["file", "line", "raw", "reason"]).select(
            key=_quarantine_key()
        )
        new_quarantine = (
            out.quarantine.with_columns(key=_quarantine_key())
            .join(seen_q, on="key", how="anti")
            .drop("key")
        )
        _append(lake, "watch_events", batch, new_events)
        _append(lake, "unresolved_events", batch, new_unresolved)
        _append(lake, "quarantine", batch, new_quarantine)
        summary.added = {
            "watch_events": new_events.height,
            "unresolved_events": new_unresolved.height,
            "quarantine": new_quarantine.height,
        }
        pruned = _prune_unresolved(lake, new_events["event_id"])
    summary.duplicates_skipped += (out.events.height - new_events.height) + (
        out.unresolved.height - new_unresolved.height
    )
    logger.info(
        "imported %s batch %s: %s; added %s; late-resolved %d",
        fmt,
        batch,
        _log_counts(summary),
        summary.added,
        pruned,
    )
    return summary
