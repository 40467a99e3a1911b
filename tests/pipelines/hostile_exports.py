"""Hostile export files for every importer, and a driver that imports them all in one process.

``python -m tests.pipelines.hostile_exports <workdir>`` builds the set under ``<workdir>``, runs
``media-gateway import-history`` (typer's CliRunner, the real command) on every (format, case)
against a lake holding a small titles table, and prints one JSON object: per case the exit code,
the message and whether the lake changed, plus the process's peak RSS. The test runs it as a
subprocess so that the peak RSS is the importers' alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

FORMATS = (
    "netflix",
    "netflix-activity",
    "letterboxd",
    "imdb",
    "trakt",
    "movielens",
    "movielens-100k",
)
FILE_NAMES = {
    "netflix": "NetflixViewingHistory.csv",
    "netflix-activity": "ViewingActivity.csv",
    "letterboxd": "diary.csv",
    "imdb": "ratings.csv",
    "trakt": "history.json",
    "movielens": "ratings.csv",
    "movielens-100k": "u.data",
}
HEADERS = {
    "netflix": "Title,Date",
    "netflix-activity": "Profile Name,Start Time,Duration,Attributes,Title,"
    "Supplemental Video Type,Device Type,Bookmark,Latest Bookmark,Country",
    "letterboxd": "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date",
    "imdb": "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,"
    "Genres,Num Votes,Release Date,Directors",
    "trakt": "[",
    "movielens": "userId,movieId,rating,timestamp",
    "movielens-100k": "",
}
BOMB_BYTES = 128 * 1024 * 1024
"""Uncompressed size of the zip bomb's member (twice the per-member cap)."""
MANY_ROWS = 1_000_000


def _row(fmt: str, i: int) -> str:
    """A well-formed-looking but unresolvable/invalid data row (so a big file is not imported)."""
    return {
        "netflix": f'"Show {i}: Season 1: Episode {i}","1/2/20"',
        "netflix-activity": f"P,2021-07-11 18:04:01,00:42:10,,Show {i},,TV,00:42:10,Latest,US",
        "letterboxd": f"2024-01-03,Film {i},1999,https://boxd.it/{i},4,,,2024-01-02",
        "imdb": f"tt{i:07d},8,2023-05-01,Film {i},u,Movie,7,90,1999,Drama,10,1999-01-01,X",
        "trakt": '{"id": 1, "watched_at": "2020-01-01T00:00:00Z", "type": "movie", '
        f'"movie": {{"title": "Film {i}", "year": 1999, "ids": {{"trakt": {i}}}}}}},',
        "movielens": f"{i},bad,x,y",
        "movielens-100k": f"{i}\tbad\tx\ty",
    }[fmt]


def _movielens_siblings(folder: Path, fmt: str) -> None:
    if fmt == "movielens":
        (folder / "movies.csv").write_text("movieId,title,genres\n1,Heat (1995),Action\n")
        (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0113277,949\n")
    elif fmt == "movielens-100k":
        flags = "|".join(["0"] * 19)
        (folder / "u.item").write_text(f"1|Heat (1995)|15-Dec-1995||http://x|{flags}\n")


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _bomb(path: Path) -> None:
    line = b"2024-01-03,Heat,1995,https://boxd.it/aaaa,4,,,2024-01-02\n"
    block = line * (1 << 14)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("letterboxd/diary.csv", "w", force_zip64=True) as fh,
    ):
        fh.write((HEADERS["letterboxd"] + "\n").encode())
        written = 0
        while written < BOMB_BYTES:
            fh.write(block)
            written += len(block)


def build_cases(root: Path, fmt: str) -> dict[str, Path]:
    """Every hostile case for ``fmt``: name -> the path to import."""
    cases: dict[str, Path] = {}
    name = FILE_NAMES[fmt]
    header = HEADERS[fmt]
    rng = random.Random(f"{fmt}-garbage")

    def case(label: str, write: Callable[[Path], None]) -> None:
        folder = root / fmt / label
        folder.mkdir(parents=True)
        _movielens_siblings(folder, fmt)
        target = folder / name
        write(target)
        cases[label] = target

    case("garbage-bytes", lambda p: p.write_bytes(rng.randbytes(65536)))
    case("utf16-wrong-columns", lambda p: p.write_text("Name\tScore\nx\t1\n", encoding="utf-16"))
    case("bom-only", lambda p: p.write_bytes(b"\xef\xbb\xbf"))
    case("wrong-columns", lambda p: p.write_text("foo,bar,baz\n1,2,3\n4,5,6\n"))
    case("header-only", lambda p: p.write_text(header + ("\n]" if fmt == "trakt" else "\n")))

    def many(p: Path) -> None:
        with p.open("w") as fh:
            if header:
                fh.write(header + "\n")
            for start in range(0, MANY_ROWS, 10_000):
                fh.write("".join(_row(fmt, i) + "\n" for i in range(start, start + 10_000)))
            if fmt == "trakt":
                fh.write('{"type": "movie"}]\n')

    case("million-rows", many)
    case(
        "zip-traversal",
        lambda p: _zip(p, {"../../" + name: (header + "\n" + _row(fmt, 1) + "\n").encode()}),
    )
    bomb = root / "zip-bomb.zip"
    if not bomb.exists():
        _bomb(bomb)
    case("zip-bomb", lambda p: os.link(bomb, p))
    real = root / fmt / "real-target"
    real.mkdir(parents=True)
    (real / name).write_text(header + "\n" + _row(fmt, 1) + "\n")
    case("symlink", lambda p: p.symlink_to(real / name))
    case("symlink-dev-zero", lambda p: p.symlink_to("/dev/zero"))
    return cases


def _lake_digest(lake: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(lake.rglob("*")):
        if path.is_file() and path.name != ".imports.lock":
            digest.update(str(path.relative_to(lake)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def peak_rss_kib() -> int:
    """This process image's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux keeps that across
    ``exec``, so a child forked from a large pytest process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")


def run(workdir: Path) -> dict:
    """Build every case, import each through the CLI, report exit codes, messages, peak RSS."""
    import polars as pl
    from typer.testing import CliRunner

    from core.lake import write_table
    from media_gateway.cli import app

    lake = workdir / "lake"
    write_table(
        lake,
        "titles",
        pl.DataFrame(
            {"title_id": ["movie:949"], "type": ["movie"], "title": ["Heat"], "year": [1995]}
        ),
    )
    before = _lake_digest(lake)
    rss_setup = peak_rss_kib()
    results = []
    runner = CliRunner()
    started = time.perf_counter()
    cases = {fmt: build_cases(workdir / "cases", fmt) for fmt in FORMATS}
    build_seconds = round(time.perf_counter() - started, 1)
    for fmt in FORMATS:
        for label, path in cases[fmt].items():
            args = ["import-history", "-f", fmt, "-u", "mallory", "--lake", str(lake), str(path)]
            started = time.perf_counter()
            result = runner.invoke(app, args)
            results.append(
                {
                    "format": fmt,
                    "case": label,
                    "path": str(path),
                    "exit_code": result.exit_code,
                    "output": " ".join(result.output.split()),
                    "exception": repr(result.exception) if result.exit_code not in (0, 2) else None,
                    "lake_changed": _lake_digest(lake) != before,
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
    return {
        "results": results,
        "peak_rss_kib": peak_rss_kib(),
        "peak_rss_before_imports_kib": rss_setup,
        "build_seconds": build_seconds,
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
