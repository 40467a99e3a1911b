"""The import inbox: users (or an app) drop export files at ``<inbox>/<format>/<user>/<file>``.

Each direct child of a ``<format>/<user>/`` folder (a file, a Letterboxd ZIP or an export folder)
is one item. After a successful import the item moves to ``<inbox>/.processed/<day>/...`` so
nothing is lost and nothing is imported twice (imports are idempotent anyway).

The inbox is where files from outside arrive, so it follows no links: format and user folders
that are symbolic links are skipped (logged), and an item that is a link is listed but refused by
the importer (:mod:`pipelines.lib.histories.files`). :func:`import_item` imports one item and, when
the importer refuses it (unreadable, wrong format, hostile, nothing usable), moves it to
``<inbox>/.rejected/<day>/<format>/<user>/`` with a ``<name>.reason.txt`` beside it, so one bad
drop never stops the other imports nor is retried forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.lib.histories.importer import (
    FORMATS,
    HistoryImportError,
    ImportSummary,
    import_files,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboxItem:
    format: str
    user: str
    path: Path

    def signature(self) -> str:
        """Changes when the item is replaced or modified (path, size, mtime; links not followed)."""
        st = self.path.lstat()
        return f"{self.path}:{st.st_size}:{st.st_mtime_ns}"


def scan_inbox(inbox: Path) -> list[InboxItem]:
    """Items waiting in the inbox, in a stable order. Unknown format folders raise ValueError."""
    if not inbox.is_dir():
        return []
    items: list[InboxItem] = []
    for fmt_dir in sorted(_folders(inbox)):
        if fmt_dir.name not in FORMATS:
            raise ValueError(
                f"{fmt_dir}: unknown export format folder; expected one of {', '.join(FORMATS)}"
            )
        for user_dir in sorted(_folders(fmt_dir)):
            for child in sorted(user_dir.iterdir()):
                if not child.name.startswith("."):
                    items.append(InboxItem(fmt_dir.name, user_dir.name, child))
    return items


def _folders(parent: Path) -> list[Path]:
    """Sub-folders of ``parent`` that are real folders (links skipped and logged), not hidden."""
    out = []
    for p in parent.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_symlink():
            logger.warning("inbox: %s is a symbolic link; not followed", p)
            continue
        if p.is_dir():
            out.append(p)
    return out


def batch_id(day: str, item_key: str) -> str:
    """Batch id of one import: the partition day plus a short hash of what was imported."""
    return f"{day}-{hashlib.sha256(item_key.encode()).hexdigest()[:12]}"


def archive(item: InboxItem, inbox: Path, day: str) -> Path:
    """Move an imported item to ``.processed/<day>/<format>/<user>/`` (never overwrites)."""
    target_dir = inbox / ".processed" / day / item.format / item.user
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / item.path.name
    n = 1
    while target.exists():
        target = target_dir / f"{item.path.stem}.{n}{item.path.suffix}"
        n += 1
    shutil.move(str(item.path), target)
    return target


def reject(item: InboxItem, inbox: Path, day: str, reason: str) -> Path:
    """Move a refused item to ``.rejected/<day>/<format>/<user>/`` with ``<name>.reason.txt``."""
    target_dir = inbox / ".rejected" / day / item.format / item.user
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / item.path.name
    n = 1
    while target.exists() or target.is_symlink():
        target = target_dir / f"{item.path.stem}.{n}{item.path.suffix}"
        n += 1
    shutil.move(str(item.path), target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target


@dataclass(frozen=True)
class InboxResult:
    """What became of one inbox item: imported (``summary``) or rejected (``reason``)."""

    item: InboxItem
    moved_to: Path
    summary: ImportSummary | None = None
    reason: str | None = None


def import_item(
    item: InboxItem, inbox: Path, lake: Path, titles: pl.DataFrame, day: str
) -> InboxResult:
    """Import one inbox item into ``lake``; archive it, or reject it with the importer's reason.

    Only :class:`HistoryImportError` (the importer's "this file cannot be imported") rejects an
    item; any other error propagates (it is a bug or an environment fault, not a bad file).
    """
    key = f"{item.format}:{item.user}:{item.path}:{item.signature()}"
    try:
        summary = import_files(
            fmt=item.format,
            user_id=item.user,
            paths=[item.path],
            lake=lake,
            titles=titles,
            batch_id=batch_id(day, key),
        )
    except HistoryImportError as exc:
        logger.warning("inbox: rejected %s item of user %s: %s", item.format, item.user, exc)
        return InboxResult(item, reject(item, inbox, day, str(exc)), reason=str(exc))
    return InboxResult(item, archive(item, inbox, day), summary=summary)


def read_manifest(manifest: Path) -> list[tuple[str, str, Path]]:
    """(format, user, path) entries of a history manifest; paths are relative to the manifest."""
    try:
        entries = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{manifest}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if isinstance(entries, dict):
        entries = entries.get("imports", entries.get("files", []))
    out = []
    for n, entry in enumerate(entries):
        try:
            fmt, user, rel = entry["format"], entry["user"], entry["path"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{manifest}: entry {n} needs format, user and path") from exc
        if fmt not in FORMATS:
            raise ValueError(f"{manifest}: entry {n} has unknown format {fmt!r}")
        out.append((fmt, user, (manifest.parent / rel).resolve()))
    return out
