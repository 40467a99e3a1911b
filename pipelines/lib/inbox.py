"""The import inbox: users (or an app) drop export files at ``<inbox>/<format>/<user>/<file>``.

Each direct child of a ``<format>/<user>/`` folder (a file, a Letterboxd ZIP or an export folder)
is one item. After a successful import the item moves to ``<inbox>/.processed/<day>/...`` so
nothing is lost and nothing is imported twice (imports are idempotent anyway).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.histories.importer import FORMATS


@dataclass(frozen=True)
class InboxItem:
    format: str
    user: str
    path: Path

    def signature(self) -> str:
        """Changes when the item is replaced or modified (path, size, mtime)."""
        st = self.path.stat()
        return f"{self.path}:{st.st_size}:{st.st_mtime_ns}"


def scan_inbox(inbox: Path) -> list[InboxItem]:
    """Items waiting in the inbox, in a stable order. Unknown format folders raise ValueError."""
    if not inbox.is_dir():
        return []
    items: list[InboxItem] = []
    for fmt_dir in sorted(p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if fmt_dir.name not in FORMATS:
            raise ValueError(
                f"{fmt_dir}: unknown export format folder; expected one of {', '.join(FORMATS)}"
            )
        for user_dir in sorted(p for p in fmt_dir.iterdir() if p.is_dir()):
            for child in sorted(user_dir.iterdir()):
                if not child.name.startswith("."):
                    items.append(InboxItem(fmt_dir.name, user_dir.name, child))
    return items


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
