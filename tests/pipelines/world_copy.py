"""Copies of the session's sample world for tests that change it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def relocate_mlflow(db: Path, old: Path, new: Path) -> None:
    """Point a copied MLflow store's artifact locations at the copy (MLflow keeps absolute
    paths), so the test's runs write, and the sweep looks, only inside the copy."""
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for column in con.execute(f"pragma table_info('{table}')").fetchall():
                if column[2].upper().startswith(("VARCHAR", "TEXT")):
                    con.execute(
                        f'update "{table}" set "{column[1]}" = replace("{column[1]}", ?, ?)',
                        (str(old), str(new)),
                    )
