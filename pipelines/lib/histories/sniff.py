"""What an export file looks like, so that a wrong ``--format`` gets a message naming it.

:func:`sniff` reads at most the first 64 KiB of a file (links are not followed) or the names in a
folder or ZIP, and recognises the exports this project imports by their header or structure.
:func:`check_format` turns a mismatch into a :class:`HistoryImportError` such as
``"h.zip: is a ZIP archive (a Letterboxd export: diary.csv, watched.csv), not a Netflix
NetflixViewingHistory.csv; use --format letterboxd"``. A file it does not recognise is left to
the parser, whose message names the missing columns.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.files import MAX_ZIP_MEMBERS, check_regular, detect_encoding

EXPECTED = {
    "netflix": "a Netflix NetflixViewingHistory.csv (Title,Date)",
    "netflix-activity": "a Netflix ViewingActivity.csv",
    "letterboxd": "a Letterboxd export (ZIP, folder, or its diary/ratings/watched.csv)",
    "imdb": "an IMDb ratings.csv",
    "trakt": "a Trakt history or watched JSON",
    "movielens": "a MovieLens ratings.csv (with movies.csv and links.csv) or its folder",
    "movielens-100k": "a MovieLens 100K u.data or its folder",
}
"""What each ``--format`` expects, as messages name it."""
FILE_FORMATS = ("netflix", "netflix-activity", "imdb", "trakt")
"""Formats that take one file, never a folder."""
_LETTERBOXD_FILES = ("diary.csv", "ratings.csv", "watched.csv")
_HEAD = 65536


@dataclass(frozen=True)
class Sniff:
    """A description of a path (``"a ZIP archive"``) and the format it looks like, if any."""

    description: str
    format: str | None = None


def _head(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return b""
        return fh.read(_HEAD)


def _csv_header(text: str) -> list[str]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    try:
        row = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    except csv.Error:
        return []
    return [" ".join(c.split()).casefold() for c in row]


def sniff_text(text: str) -> Sniff:
    """Recognise an export from the start of its text."""
    body = text.lstrip("\ufeff \t\n")
    if body.startswith("["):
        if '"last_watched_at"' in body:
            return Sniff("a Trakt watched JSON", "trakt")
        if '"watched_at"' in body:
            return Sniff("a Trakt history JSON", "trakt")
        return Sniff("a JSON list")
    if body.startswith("{"):
        return Sniff("a JSON object")
    cols = _csv_header(body)
    have = set(cols)
    if {"title", "date"} == have:
        return Sniff("a Netflix viewing history CSV (columns Title, Date)", "netflix")
    if {"profile name", "duration", "title"} <= have:
        return Sniff("a Netflix ViewingActivity CSV", "netflix-activity")
    if "const" in have and ({"your rating", "you rated"} & have):
        return Sniff("an IMDb ratings CSV", "imdb")
    if "letterboxd uri" in have:
        return Sniff("a Letterboxd CSV", "letterboxd")
    if {"userid", "movieid", "rating"} <= have:
        return Sniff("a MovieLens ratings CSV", "movielens")
    first = body.split("\n", 1)[0].split("\t")
    if len(first) == 4 and all(f.strip().isdigit() for f in first):
        return Sniff("a MovieLens 100K u.data file", "movielens-100k")
    if cols:
        shown = ", ".join(cols[:6]) + (", ..." if len(cols) > 6 else "")
        return Sniff(f"a CSV with columns {shown}")
    return Sniff("a text file")


def _sniff_folder(path: Path) -> Sniff:
    names = sorted(p.name for p in path.iterdir())
    if {"ratings.csv", "movies.csv"} <= set(names):
        return Sniff("a MovieLens dataset folder", "movielens")
    if "u.data" in names:
        return Sniff("a MovieLens 100K folder", "movielens-100k")
    found = [n for n in _LETTERBOXD_FILES if n in names]
    if found:
        return Sniff(f"a Letterboxd export folder ({', '.join(found)})", "letterboxd")
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return Sniff(f"a folder ({shown or 'empty'})")


def _sniff_zip(path: Path) -> Sniff:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                return Sniff("a ZIP archive")
            names = {n.filename.rsplit("/", 1)[-1] for n in infos}
    except (zipfile.BadZipFile, OSError):
        return Sniff("a damaged ZIP archive")
    found = [n for n in _LETTERBOXD_FILES if n in names]
    if found:
        return Sniff(f"a ZIP archive (a Letterboxd export: {', '.join(found)})", "letterboxd")
    return Sniff("a ZIP archive")


def sniff(path: Path) -> Sniff:
    """What ``path`` looks like (never raises for an existing path)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError:
        return Sniff("a missing path")
    if stat.S_ISLNK(st.st_mode):
        return Sniff("a symbolic link")
    if stat.S_ISDIR(st.st_mode):
        return _sniff_folder(path)
    if not stat.S_ISREG(st.st_mode):
        return Sniff("not a regular file")
    try:
        head = _head(path)
    except OSError:
        return Sniff("an unreadable file")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _sniff_zip(path)
    if not head:
        return Sniff("an empty file")
    encoding = detect_encoding(head)
    if encoding == "binary":
        return Sniff("binary data")
    return sniff_text(head.decode(encoding, errors="replace"))


def check_format(fmt: str, paths: list[Path]) -> None:
    """Refuse paths that are plainly not ``fmt`` exports, naming what they look like."""
    for path in paths:
        path = Path(path)
        seen = sniff(path)
        if seen.description == "a symbolic link":
            check_regular(path)  # raises its message
        use = f"; use --format {seen.format}" if seen.format and seen.format != fmt else ""
        if fmt in FILE_FORMATS and path.is_dir():
            raise HistoryImportError(
                path, f"is {seen.description}, but --format {fmt} expects {EXPECTED[fmt]}{use}"
            )
        if seen.format is not None and seen.format != fmt:
            raise HistoryImportError(
                path, f"looks like {seen.description}, not {EXPECTED[fmt]}{use}"
            )
        if fmt != "letterboxd" and seen.description.startswith("a ZIP archive"):
            raise HistoryImportError(
                path, f"is {seen.description}, but --format {fmt} expects {EXPECTED[fmt]}"
            )
