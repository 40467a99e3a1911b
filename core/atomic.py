"""Atomic writes: readers see the old file (or folder) or the new one, never half of either.

Every writer of the project goes through these three helpers instead of its own
``tmp + os.replace`` block:

- :func:`atomic_path` yields a temporary sibling path for any writer (``df.write_parquet``,
  ``np.savez``, ``json.dump`` ...) and moves it into place only if the block finishes;
- :func:`atomic_write_bytes` / :func:`atomic_write_text` for data already in memory;
- :func:`staged_dir` yields a staging folder that replaces a whole folder in two renames
  (``<dir>`` aside to ``.<name>.<id>.old``, staging in, old removed). A kill between the two
  renames leaves ``.old``, which :func:`core.lake.recover_lake` (and the model loaders) restore.

Temporary names start with a dot and end in ``.tmp`` / ``.staging`` so that recovery code and
``glob("*.parquet")`` readers never mistake them for data. The rename is atomic on POSIX because
the temporary lives in the destination's folder (same file system).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary sibling of ``path`` to write to; it replaces ``path`` when the block ends.

    ``suffix`` keeps a writer that appends its own extension (``np.savez`` adds ``.npz``) happy:
    pass ``.tmp.npz``. On an exception the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary sibling, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def swap_in(staging: Path, target: Path) -> None:
    """Replace folder ``target`` by ``staging`` (same parent): old aside, staging in, old removed."""
    old = _sibling(target, ".old")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A new empty staging folder that replaces folder ``target`` when the block ends.

    On an exception the staging folder is deleted and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, ".staging")
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, target)
