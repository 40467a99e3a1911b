"""Remove outputs from Jupyter notebooks in place, so notebooks are committed without them.

Stripped from every code cell: ``outputs``, ``execution_count`` and the ``execution`` timing
metadata nbclient/JupyterLab record; everything else (sources, tags such as ``parameters``, cell
ids, notebook metadata) is kept. A notebook that is already clean is not rewritten (reruns change
nothing); a changed one is written to a temporary sibling and swapped in with ``os.replace``.

    .venv/bin/python scripts/strip_notebooks.py              # every notebooks/*.ipynb
    .venv/bin/python scripts/strip_notebooks.py a.ipynb dir/ # files, or folders searched recursively
    .venv/bin/python scripts/strip_notebooks.py --check      # exit 1 listing notebooks with outputs

Exit codes: 0 clean (or cleaned), 1 ``--check`` found outputs, 2 unreadable notebook or bad path.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat

from core.atomic import atomic_path

log = logging.getLogger("strip_notebooks")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = PROJECT_ROOT / "notebooks"
EXECUTION_METADATA = "execution"
"""Per-cell timing metadata written by nbclient and JupyterLab."""


class NotebookReadError(ValueError):
    """A path is not a readable notebook (the message names the file)."""


def find_notebooks(paths: Iterable[Path]) -> list[Path]:
    """``.ipynb`` files among ``paths`` (folders searched recursively, checkpoints skipped)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            )
        elif path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        else:
            raise NotebookReadError(f"{path}: not a notebook file or folder")
    return found


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Parse ``path`` as a notebook (any nbformat 4 minor version)."""
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookReadError(f"{path}: cannot read: {exc}") from exc
    except nbformat.reader.NotJSONError as exc:
        raise NotebookReadError(f"{path}: not valid notebook JSON: {exc}") from exc


def dirty_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of code cells carrying outputs, an execution count or execution metadata."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (
            cell.get("outputs")
            or cell.get("execution_count") is not None
            or EXECUTION_METADATA in cell.get("metadata", {})
        )
    ]


def strip(nb: nbformat.NotebookNode) -> int:
    """Strip ``nb`` in memory; returns how many cells changed."""
    changed = dirty_cells(nb)
    for index in changed:
        cell = nb.cells[index]
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop(EXECUTION_METADATA, None)
    return len(changed)


def write_atomic(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write ``nb`` to a temporary sibling, then replace ``path`` with it."""
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


def strip_file(path: Path) -> int:
    """Strip one notebook file in place (untouched when clean); returns the cells changed."""
    nb = read_notebook(path)
    changed = strip(nb)
    if changed:
        write_atomic(nb, path)
        log.info("stripped %s (%d cells)", path, changed)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_FOLDER])
    parser.add_argument(
        "--check", action="store_true", help="only report notebooks with outputs (exit 1)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        notebooks = find_notebooks(args.paths)
        if args.check:
            dirty = {path: dirty_cells(read_notebook(path)) for path in notebooks}
            dirty = {path: cells for path, cells in dirty.items() if cells}
            for path, cells in dirty.items():
                log.error("%s: outputs in cells %s", path, cells)
            if dirty:
                log.error("run `python scripts/strip_notebooks.py` before committing")
            return 1 if dirty else 0
        for path in notebooks:
            strip_file(path)
    except NotebookReadError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
