"""Incremental content embeddings: only titles whose content hash changed are re-encoded.

The table ``content_embeddings`` (``title_id``, ``content_hash``, ``vector`` list[f32; EMBEDDING_DIM]) is the
cache: a nightly run with no catalogue change encodes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from core.content import content_hash, content_text
from core.schemas import EMBEDDING_DIM

log = logging.getLogger(__name__)

EMBEDDINGS_SCHEMA = {
    "title_id": pl.String,
    "content_hash": pl.String,
    "vector": pl.List(pl.Float32),
}

Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class EmbeddingUpdate:
    table: pl.DataFrame
    encoded: int
    reused: int
    removed: int


def with_content(titles: pl.DataFrame) -> pl.DataFrame:
    """Add ``text`` and a fresh ``content_hash`` computed from it."""
    texts = [content_text(row) for row in titles.iter_rows(named=True)]
    return titles.with_columns(
        pl.Series("text", texts, dtype=pl.String),
        pl.Series("content_hash", [content_hash(t) for t in texts], dtype=pl.String),
    )


def update_embeddings(
    titles: pl.DataFrame, previous: pl.DataFrame | None, encode: Encoder
) -> EmbeddingUpdate:
    """Reuse vectors whose (title_id, content_hash) is unchanged; encode the rest."""
    current = with_content(titles).select("title_id", "content_hash", "text")
    prev = (
        previous.select("title_id", "content_hash", "vector")
        if previous is not None and previous.height
        else pl.DataFrame(schema=EMBEDDINGS_SCHEMA)
    )
    reused = current.join(prev, on=["title_id", "content_hash"], how="inner")
    todo = current.join(prev, on=["title_id", "content_hash"], how="anti")
    log.info("embeddings: %d to encode, %d reused", todo.height, reused.height)
    vectors = (
        encode(todo["text"].to_list()) if todo.height else np.zeros((0, EMBEDDING_DIM), np.float32)
    )
    if vectors.shape[0] != todo.height:
        raise ValueError(f"encoder returned {vectors.shape[0]} vectors for {todo.height} texts")
    fresh = todo.select("title_id", "content_hash").with_columns(
        pl.Series("vector", vectors.astype(np.float32).tolist(), dtype=pl.List(pl.Float32))
    )
    table = pl.concat(
        [reused.select("title_id", "content_hash", "vector"), fresh], how="vertical"
    ).sort("title_id")
    removed = prev.join(current, on="title_id", how="anti").height
    return EmbeddingUpdate(table=table, encoded=todo.height, reused=reused.height, removed=removed)


def vector_quality(table: pl.DataFrame, tolerance: float = 1e-3) -> dict[str, int]:
    """Counts of vectors that are non-finite, of the wrong dimension, or not unit-norm."""
    if table.height == 0:
        return {"non_finite": 0, "wrong_dim": 0, "not_unit": 0}
    lengths = table["vector"].list.len()
    wrong_dim = int((lengths != EMBEDDING_DIM).sum())
    good = table.filter(lengths == EMBEDDING_DIM)
    mat = np.asarray(good["vector"].to_list(), dtype=np.float64).reshape(good.height, EMBEDDING_DIM)
    finite = np.isfinite(mat).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(mat), mat, 0.0), axis=1)
    return {
        "non_finite": int((~finite).sum()),
        "wrong_dim": wrong_dim,
        "not_unit": int((finite & (np.abs(norms - 1.0) > tolerance)).sum()),
    }
