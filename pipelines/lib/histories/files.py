"""Reading export files safely: bounded sizes, no links, streamed ZIP members, detected encodings.

Everything a history importer reads goes through this module, so one set of rules holds for the
CLI and the inbox sensor alike:

* **Only regular files.** A symbolic link (the file itself or a file inside an export folder), a
  device, a pipe or a socket is refused with a message; links are not followed, so an import reads
  exactly what it was pointed at (an inbox drop cannot point it at another user's file or at
  ``/dev/zero``).
* **Bounded sizes.** A personal export (Netflix, Letterboxd, IMDb, Trakt) is at most
  :data:`MAX_EXPORT_BYTES` per file and :data:`MAX_EXPORT_ROWS` rows; a MovieLens dataset file at
  most :data:`MAX_DATASET_BYTES`. Files are read with a cap (never more than the limit plus one
  byte), so a file that grows or lies about its size cannot exhaust memory.
* **ZIP archives** (Letterboxd) are never extracted to disk. Members are streamed with a byte cap
  and a compression-ratio cap (:data:`MAX_ZIP_RATIO` once a member has produced more than 1 MiB),
  so a small archive holding a huge member (a "zip bomb") stops after a few MiB of output whatever
  its headers claim. Members with absolute paths or ``..`` parts (path traversal), symbolic-link
  members and archives with more than :data:`MAX_ZIP_MEMBERS` members are refused.
* **Encodings.** A byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32); without one, UTF-16 is
  recognised by its NUL bytes, then UTF-8 is tried, then Windows-1252 (what Excel saves on Western
  systems), then Latin-1. Text with NUL or many other control characters is binary data, refused.
"""

from __future__ import annotations

import codecs
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipelines.lib.histories.common import HistoryImportError

MAX_EXPORT_BYTES = 64 * 1024 * 1024
"""Largest personal export file (or ZIP member) read: 64 MiB, ~50x the largest real one seen."""
MAX_EXPORT_ROWS = 250_000
"""Most rows in one personal export file (a view a day for 680 years)."""
MAX_DATASET_BYTES = 512 * 1024 * 1024
"""Largest MovieLens file read (ml-latest-small's ratings.csv is 2.4 MB)."""
MAX_ZIP_BYTES = 256 * 1024 * 1024
"""Largest ZIP archive opened."""
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_RATIO = 100
"""Most uncompressed bytes per compressed byte of a ZIP member (CSV compresses 5-15x)."""
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 1 << 16


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def check_regular(path: Path) -> os.stat_result:
    """``lstat`` of ``path``; anything but a regular file -> :class:`HistoryImportError`."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise HistoryImportError(path, "no such file or folder") from None
    except OSError as exc:
        raise HistoryImportError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise HistoryImportError(
            path, "is a symbolic link; links are not followed: pass the file itself"
        )
    if stat.S_ISDIR(st.st_mode):
        raise HistoryImportError(path, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise HistoryImportError(path, "is not a regular file (a device, pipe or socket)")
    return st


def read_capped(path: Path, limit: int = MAX_EXPORT_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (links refused), at most ``limit`` of them."""
    path = Path(path)
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise HistoryImportError(path, f"cannot read file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced after the lstat
            raise HistoryImportError(path, "is not a regular file")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise HistoryImportError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise HistoryImportError(path, f"is larger than {_mib(limit)}: too large for an export")
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r\f"} | {"\x7f"}


def detect_encoding(data: bytes) -> str:
    """The text encoding of ``data`` (rules in the module docstring); binary -> ``"binary"``."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    sample = data[:4096]
    if sample.count(0):
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        if odd > 0.4 * half and even < 0.05 * half:
            return "utf-16-le"
        if even > 0.4 * half and odd < 0.05 * half:
            return "utf-16-be"
        return "binary"
    for name in ("utf-8", "cp1252"):
        try:
            data.decode(name)
        except UnicodeDecodeError:
            continue
        return name
    return "latin-1"


@dataclass(frozen=True)
class ExportText:
    """Decoded text of an export file and the encoding it was read with."""

    text: str
    encoding: str


def decode_export(data: bytes, name: str | Path, encoding: str | None = None) -> ExportText:
    """Decode ``data`` (``encoding=None``: detected); newlines become ``\\n``.

    Binary data and undecodable bytes raise :class:`HistoryImportError` naming the file and line.
    """
    enc = encoding or detect_encoding(data)
    if enc == "binary":
        raise HistoryImportError(name, "is binary data, not a text (CSV or JSON) export")
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise HistoryImportError(
            name, f"not valid {enc} text (byte {exc.start}): {exc.reason}", line=line
        ) from exc
    text = text.removeprefix("\ufeff")
    head = text[:65536]
    controls = sum(1 for ch in head if ch in _CONTROL)
    if "\x00" in head or controls > max(8, len(head) // 1000):
        raise HistoryImportError(name, "is binary data, not a text (CSV or JSON) export")
    return ExportText(text.replace("\r\n", "\n").replace("\r", "\n"), enc)


def check_rows(text: str, name: str | Path, limit: int = MAX_EXPORT_ROWS) -> None:
    """Refuse a personal export with more than ``limit`` lines (counted before parsing)."""
    lines = text.count("\n")
    if lines > limit + 1:
        raise HistoryImportError(
            name,
            f"has {lines:,} lines, more than the {limit:,} rows of any personal export",
        )


def read_export(
    path: Path,
    *,
    limit: int = MAX_EXPORT_BYTES,
    max_rows: int | None = MAX_EXPORT_ROWS,
    encoding: str | None = None,
) -> ExportText:
    """Read, bound and decode one export file (rules in the module docstring)."""
    text = decode_export(read_capped(path, limit), path, encoding)
    if max_rows is not None:
        check_rows(text.text, path, max_rows)
    return text


def _unsafe_member(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name.replace("\\", "/")).parts


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open an export ZIP after the checks of the module docstring (caller closes it)."""
    path = Path(path)
    st = check_regular(path)
    if st.st_size > MAX_ZIP_BYTES:
        raise HistoryImportError(path, f"ZIP is larger than {_mib(MAX_ZIP_BYTES)}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HistoryImportError(path, f"cannot read ZIP: {exc}") from exc
    try:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise HistoryImportError(path, f"ZIP has more than {MAX_ZIP_MEMBERS:,} members")
        for m in members:
            if _unsafe_member(m.filename):
                raise HistoryImportError(
                    path, f"ZIP member {m.filename!r} points outside the archive (path traversal)"
                )
            if stat.S_ISLNK(m.external_attr >> 16):
                raise HistoryImportError(path, f"ZIP member {m.filename!r} is a symbolic link")
    except BaseException:
        archive.close()
        raise
    return archive


def read_zip_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, display: str, limit: int = MAX_EXPORT_BYTES
) -> bytes:
    """Stream one member with the byte and ratio caps; a bomb stops early with a message."""
    chunks: list[bytes] = []
    total = 0
    compressed = max(member.compress_size, 1)
    try:
        with archive.open(member) as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise HistoryImportError(
                        display, f"ZIP member expands beyond {_mib(limit)}: refused"
                    )
                if total > _RATIO_FLOOR and total > MAX_ZIP_RATIO * compressed:
                    raise HistoryImportError(
                        display,
                        f"ZIP member expands more than {MAX_ZIP_RATIO}x "
                        f"({compressed:,} compressed bytes): refused as a zip bomb",
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise HistoryImportError(display, f"cannot read ZIP member: {exc}") from exc
    return b"".join(chunks)


def encoding_warning(text: ExportText, name: str | Path) -> str | None:
    """A note when a file was not UTF-8/UTF-16/UTF-32 and its encoding had to be guessed."""
    if text.encoding in ("cp1252", "latin-1"):
        label = "Windows-1252" if text.encoding == "cp1252" else "Latin-1"
        return f"{name}: not UTF-8 text; read as {label}"
    return None
