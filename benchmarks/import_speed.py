"""Watch-history import throughput (rows/s) per export format.

Usage::

    .venv/bin/python benchmarks/import_speed.py [DATA_DIR] [--rows N] [--repeat R]

``DATA_DIR`` (default ``../shared/data`` next to the project) supplies the real sets: MovieLens
ml-latest-small and ml-100k, the real Netflix profile, and the TMDB 5000 movies used as the
catalogue titles are resolved against. The other formats (ViewingActivity, Letterboxd, IMDb, Trakt,
and a large Netflix history) are synthetic files of ``--rows`` rows written to a temp folder from
that catalogue's titles. Two figures per format, best of ``--repeat`` runs:

* parse+resolve: :func:`pipelines.lib.histories.importer.parse_and_resolve` (no writes);
* import: :func:`pipelines.lib.histories.importer.import_files` into an empty temp lake.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.progress import track
from rich.table import Table

from core import PROJECT_ROOT
from pipelines.lib.histories.importer import import_files, parse_and_resolve

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"


def tmdb_catalogue(data: Path) -> pl.DataFrame:
    """TITLES-like frame of the TMDB 5000 movies (title_id, tmdb_id, type, title, year...)."""
    df = pl.read_csv(data / "tmdb" / "tmdb_5000_movies.csv", infer_schema=False)
    return df.select(
        title_id=pl.lit("movie:") + pl.col("id"),
        tmdb_id=pl.col("id").cast(pl.Int64),
        type=pl.lit("movie"),
        title="title",
        original_title="original_title",
        year=pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False),
        runtime=pl.col("runtime").cast(pl.Float64, strict=False).cast(pl.Int32),
        source=pl.lit("tmdb"),
    ).filter(pl.col("year").is_not_null())


def _rows(catalogue: pl.DataFrame, n: int, rng: random.Random) -> list[dict]:
    titles = catalogue.select("title", "year", "tmdb_id").to_dicts()
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return [
        {**rng.choice(titles), "when": start + timedelta(seconds=rng.randrange(4 * 365 * 86400))}
        for _ in range(n)
    ]


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def synthetic_files(folder: Path, catalogue: pl.DataFrame, n: int) -> dict[str, Path]:
    """Write one synthetic file (or folder) of ``n`` rows per format; returns format -> path."""
    rng = random.Random(7)
    rows = _rows(catalogue, n, rng)
    out: dict[str, Path] = {}

    lines = ["Title,Date"]
    for i, r in enumerate(rows):
        title = r["title"] if i % 3 else f"{r['title']}: Season {i % 5 + 1}: Episode {i % 20}"
        d = r["when"]
        lines.append(f"{_quote(title)},{_quote(f'{d.month}/{d.day}/{d.year % 100:02d}')}")
    out["netflix"] = folder / "NetflixViewingHistory.csv"
    out["netflix"].write_text("\n".join(lines) + "\n")

    lines = [
        "Profile Name,Start Time,Duration,Attributes,Title,Supplemental Video Type,Device Type,"
        "Bookmark,Latest Bookmark,Country"
    ]
    for i, r in enumerate(rows):
        kind = "TRAILER" if i % 50 == 0 else ""
        when = r["when"].strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"P{i % 3},{when},01:10:00,,{_quote(r['title'])},{kind},TV,01:10:00,,US (United States)"
        )
    out["netflix-activity"] = folder / "ViewingActivity.csv"
    out["netflix-activity"].write_text("\n".join(lines) + "\n")

    lb = folder / "letterboxd"
    lb.mkdir()
    diary = ["Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date"]
    ratings = ["Date,Name,Year,Letterboxd URI,Rating"]
    for i, r in enumerate(rows):
        d = r["when"].date().isoformat()
        diary.append(
            f"{d},{_quote(r['title'])},{r['year']},https://boxd.it/{i:x},{(i % 10 + 1) / 2},,,{d}"
        )
        if i % 2:
            ratings.append(f"{d},{_quote(r['title'])},{r['year']},https://boxd.it/f{i:x},4")
    (lb / "diary.csv").write_text("\n".join(diary) + "\n")
    (lb / "ratings.csv").write_text("\n".join(ratings) + "\n")
    out["letterboxd"] = lb

    lines = [
        "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,"
        "Num Votes,Release Date,Directors"
    ]
    for i, r in enumerate(rows):
        d = r["when"].date().isoformat()
        lines.append(
            f"tt{9_000_000 + i},{i % 10 + 1},{d},{_quote(r['title'])},u,Movie,7.0,100,{r['year']},"
            f"Drama,1000,{d},Someone"
        )
    out["imdb"] = folder / "ratings.csv"
    out["imdb"].write_text("\n".join(lines) + "\n")

    items = [
        {
            "id": i,
            "watched_at": r["when"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "action": "scrobble",
            "type": "movie",
            "movie": {"title": r["title"], "year": r["year"], "ids": {"tmdb": r["tmdb_id"]}},
        }
        for i, r in enumerate(rows)
    ]
    out["trakt"] = folder / "history.json"
    out["trakt"].write_text(json.dumps(items, indent=2))
    return out


def _best(fn: Callable[[], int], repeat: int) -> tuple[int, float]:
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = fn()
        best = min(best, time.perf_counter() - start)
    return rows, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per synthetic file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data: Path = args.data
    if not (data / "tmdb" / "tmdb_5000_movies.csv").is_file():
        parser.error(
            f"{data} does not look like the shared data folder (no tmdb/tmdb_5000_movies.csv)"
        )
    catalogue = tmdb_catalogue(data)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        synth = synthetic_files(Path(tmp), catalogue, args.rows)
        cases: list[tuple[str, str, Path, str]] = [
            ("movielens", "ml-latest-small", data / "movielens" / "ml-latest-small", "ml"),
            ("movielens-100k", "ml-100k", data / "movielens" / "ml-100k", "k"),
            (
                "netflix",
                "real profile (913 rows)",
                data / "viewing-history" / "netflix" / "NetflixViewingHistory_profile_a.csv",
                "a",
            ),
        ] + [(fmt, f"synthetic {args.rows:,} rows", path, "s") for fmt, path in synth.items()]
        table = Table(
            title=f"History import speed (best of {args.repeat}; catalogue {catalogue.height:,} titles)"
        )
        for col in (
            "format",
            "input",
            "rows read",
            "resolved",
            "parse+resolve rows/s",
            "import rows/s",
        ):
            table.add_column(
                col, justify="left" if col in ("format", "input") else "right", no_wrap=True
            )
        for fmt, label, path, user in track(cases, description="benchmarking", console=console):
            summary = parse_and_resolve(fmt, user, [path], catalogue)[3]

            def parse_only(fmt=fmt, path=path, user=user) -> int:
                return parse_and_resolve(fmt, user, [path], catalogue)[3].read

            def full_import(fmt=fmt, path=path, user=user) -> int:
                with tempfile.TemporaryDirectory() as lake:
                    return import_files(fmt, user, [path], Path(lake), titles=catalogue).read

            _, t_parse = _best(parse_only, args.repeat)
            _, t_import = _best(full_import, args.repeat)
            table.add_row(
                fmt,
                label,
                f"{summary.read:,}",
                f"{summary.resolution_rate:.1%}",
                f"{summary.read / t_parse:,.0f}",
                f"{summary.read / t_import:,.0f}",
            )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
