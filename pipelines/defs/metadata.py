"""Small helpers that turn frames into Dagster metadata the UI renders nicely."""

from __future__ import annotations

import dagster as dg
import polars as pl


def md_table(df: pl.DataFrame, n: int = 10) -> dg.MetadataValue:
    """The first ``n`` rows as a Markdown table (lists joined with ', ')."""
    head = df.head(n)
    cols = head.columns

    def cell(v: object) -> str:
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))
