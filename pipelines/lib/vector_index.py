"""The LanceDB `content_index` table: one row per title, a 384-d unit vector plus filterable columns.

Replacing the index is a single LanceDB commit (``mode="overwrite"``), so readers see either the old
or the new table, and every replacement is a new table version (time travel / rollback via
``checkout``). Under ~100k rows a flat (exact) search is fast and has perfect recall, so no ANN index
is built (LanceDB's default IVF-PQ has poor recall on 384-d vectors).

``services`` holds ``"<COUNTRY>:<provider_id>"`` tokens for subscription-like offers (FLATRATE, FREE,
ADS) and ``rent_buy`` the same for RENT/BUY, so availability filters run inside the vector search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import polars as pl
import pyarrow as pa

from models.embeddings.encoder import EMBEDDING_DIM

CONTENT_TABLE = "content_index"
SUBSCRIPTION_LIKE = ("FLATRATE", "FREE", "ADS")
RENT_BUY = ("RENT", "BUY")

CONTENT_SCHEMA = pa.schema(
    [
        ("title_id", pa.string()),
        ("vector", pa.list_(pa.float32(), EMBEDDING_DIM)),
        ("title", pa.string()),
        ("type", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("keywords", pa.list_(pa.string())),
        ("runtime", pa.int32()),
        ("language", pa.string()),
        ("popularity", pa.float64()),
        ("vote_average", pa.float64()),
        ("services", pa.list_(pa.string())),
        ("rent_buy", pa.list_(pa.string())),
        ("countries", pa.list_(pa.string())),
        ("content_hash", pa.string()),
    ]
)


def service_tokens(availability: pl.DataFrame) -> pl.DataFrame:
    """Per title: ``services``, ``rent_buy`` and ``countries`` token lists from availability rows."""
    tok = availability.with_columns(
        (pl.col("country") + ":" + pl.col("provider_id")).alias("token")
    )

    def agg(kinds: tuple[str, ...], name: str) -> pl.DataFrame:
        return (
            tok.filter(pl.col("monetization").is_in(kinds))
            .group_by("title_id")
            .agg(pl.col("token").unique().sort().alias(name))
        )

    countries = tok.group_by("title_id").agg(pl.col("country").unique().sort().alias("countries"))
    return countries.join(agg(SUBSCRIPTION_LIKE, "services"), on="title_id", how="left").join(
        agg(RENT_BUY, "rent_buy"), on="title_id", how="left"
    )


def build_content_rows(
    titles: pl.DataFrame, availability: pl.DataFrame, embeddings: pl.DataFrame
) -> pa.Table:
    """Join titles, their availability tokens and their vectors (``title_id``, ``vector``) into rows.

    Raises ValueError if a title has no vector (the asset checks guarantee one vector per title).
    """
    tokens = service_tokens(availability)
    df = (
        titles.join(embeddings.select("title_id", "vector"), on="title_id", how="left")
        .join(tokens, on="title_id", how="left")
        .with_columns(
            [
                pl.col(c).fill_null(pl.lit([], dtype=pl.List(pl.String)))
                for c in ("services", "rent_buy", "countries", "genres", "keywords")
            ]
        )
    )
    missing = df.filter(pl.col("vector").is_null()).height
    if missing:
        raise ValueError(f"{missing} titles have no embedding; run content_embeddings first")
    vectors = np.asarray(df["vector"].to_list(), dtype=np.float32)
    arrays = {
        "title_id": pa.array(df["title_id"].to_list(), pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1), pa.float32()), EMBEDDING_DIM
        ),
    }
    rest = df.select([f.name for f in CONTENT_SCHEMA if f.name not in arrays]).to_arrow()
    for field in CONTENT_SCHEMA:
        if field.name not in arrays:
            arrays[field.name] = rest.column(field.name).cast(field.type)
    return pa.table([arrays[f.name] for f in CONTENT_SCHEMA], schema=CONTENT_SCHEMA)


def write_content_index(db_path: str | Path, rows: pa.Table) -> int:
    """Replace the table in one commit; returns the new table version."""
    db = lancedb.connect(str(db_path))
    table = db.create_table(CONTENT_TABLE, data=rows, schema=CONTENT_SCHEMA, mode="overwrite")
    return int(table.version)


@dataclass
class ContentIndex:
    """Read side of `content_index`: exact cosine search with SQL prefilters."""

    db_path: str | Path
    """A local folder or an object-store URI (``s3://...``)."""
    version: int | None = None

    def __post_init__(self) -> None:
        db = lancedb.connect(str(self.db_path))
        if CONTENT_TABLE not in db.list_tables().tables:
            raise FileNotFoundError(
                f"no {CONTENT_TABLE!r} table in {self.db_path}; run the pipeline first"
            )
        self.table = db.open_table(CONTENT_TABLE)
        if self.version is not None:
            self.table.checkout(self.version)
        self.version = int(self.table.version)

    def count(self) -> int:
        return int(self.table.count_rows())

    def search(self, vector: np.ndarray, limit: int = 10, where: str | None = None) -> pl.DataFrame:
        """Nearest titles by cosine similarity (column ``similarity`` = 1 - cosine distance)."""
        query = self.table.search(np.asarray(vector, dtype=np.float32)).metric("cosine")
        if where:
            query = query.where(where, prefilter=True)
        df = pl.from_arrow(query.limit(limit).to_arrow())
        assert isinstance(df, pl.DataFrame)
        return df.with_columns((1.0 - pl.col("_distance")).alias("similarity")).drop("_distance")

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame:
        """The whole table as polars (vectors included unless ``columns`` excludes them)."""
        df = pl.from_arrow(self.table.to_arrow())
        assert isinstance(df, pl.DataFrame)
        return df.select(columns) if columns else df

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(title ids, (n, 384) float32 matrix) for in-memory scoring."""
        tbl = self.table.to_arrow().select(["title_id", "vector"])
        ids = tbl.column("title_id").to_pylist()
        flat = tbl.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return ids, np.asarray(flat, dtype=np.float32).reshape(len(ids), EMBEDDING_DIM)
