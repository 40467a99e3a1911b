"""Public item content vectors for the content model (:class:`models.federated.task.ContentAutoencoder`).

Item features are public metadata (titles, genres, overviews embedded by the sentence encoder),
so turning them into model inputs costs no privacy. :func:`public_item_vectors` aligns an
``item_features`` frame (``item_id`` + ``vector``) with the model's catalogue, centres it, keeps
the top ``dim`` principal directions (an SVD, deterministic) and L2-normalises every row. Catalogue
items without features get a zero vector: they take no part in content profiles and score by
their bias alone. The deployment ServerApp reads the same array from a ``.npy`` file
(:func:`load_item_vectors`).

An optional ``public_popularity`` column (e.g. TMDB ``vote_count``, public like the titles) becomes
a public popularity prior (:func:`public_popularity_prior`): DP mode then picks the items whose
popularity it privately counts from that prior instead of spending budget on finding them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

logger = logging.getLogger(__name__)


class ContentFeatureError(ValueError):
    """Item features are unusable (the message names the problem and, for files, the path)."""


def _feature_matrix(item_features: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    missing = {"item_id", "vector"} - set(item_features.columns)
    if missing:
        raise ContentFeatureError(
            f"item_features is missing columns {sorted(missing)} (has {item_features.columns})"
        )
    ids = item_features["item_id"].cast(pl.String)
    if ids.null_count():
        raise ContentFeatureError(
            f"item_features row {int(ids.is_null().arg_true()[0])}: null item_id"
        )
    dup = (~ids.is_first_distinct()).arg_true()
    if dup.len():
        raise ContentFeatureError(
            f"item_features row {int(dup[0])}: duplicate item_id {ids[int(dup[0])]!r}"
        )
    vectors = item_features["vector"].cast(pl.List(pl.Float64))
    lengths = vectors.list.len()
    bad = (vectors.is_null() | (lengths != lengths.max()) | (lengths == 0)).arg_true()
    if bad.len():
        raise ContentFeatureError(
            f"item_features row {int(bad[0])}: missing vector or length != {lengths.max()}"
        )
    matrix = np.asarray(vectors.to_list(), dtype=np.float64)
    if not np.isfinite(matrix).all():
        row = int(np.argwhere(~np.isfinite(matrix))[0, 0])
        raise ContentFeatureError(f"item_features row {row}: vector has non-finite values")
    return ids.to_list(), matrix


def public_item_vectors(
    item_features: pl.DataFrame, item_ids: list[str] | np.ndarray, dim: int
) -> np.ndarray:
    """``(len(item_ids), d)`` float32 unit rows (zero rows for items without features).

    ``d = min(dim, feature width, covered items)``. Raises :class:`ContentFeatureError` for bad
    frames and when no catalogue item has features.
    """
    if dim < 1:
        raise ContentFeatureError(f"content dimension must be >= 1, got {dim}")
    ids, matrix = _feature_matrix(item_features)
    row_of = {item: row for row, item in enumerate(ids)}
    catalogue = [str(i) for i in item_ids]
    present = np.array([item in row_of for item in catalogue], dtype=bool)
    if not present.any():
        raise ContentFeatureError(
            f"none of the {len(catalogue)} catalogue items has a row in item_features "
            f"({len(ids)} rows; ids like {ids[:3]})"
        )
    covered = matrix[[row_of[item] for item, ok in zip(catalogue, present, strict=True) if ok]]
    centred = covered - covered.mean(axis=0)
    _, singular, right = np.linalg.svd(centred, full_matrices=False)
    d = int(min(dim, int((singular > 1e-9 * max(singular[0], 1e-30)).sum()), right.shape[0]))
    if d < 1:
        raise ContentFeatureError("item feature vectors are all identical: no content signal")
    projected = centred @ right[:d].T
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    projected = np.where(norms > 1e-12, projected / np.maximum(norms, 1e-12), 0.0)
    out = np.zeros((len(catalogue), d), dtype=np.float32)
    out[present] = projected.astype(np.float32)
    logger.info(
        "public item vectors",
        extra={"items": len(catalogue), "covered": int(present.sum()), "dim": d},
    )
    return out


PUBLIC_POPULARITY = "public_popularity"
"""Optional ``item_features`` column: a public popularity figure per item (>= 0, null unknown)."""

PRIOR_SCALE = 1e-3
"""Largest value of the prior bias: it orders items, it does not compete with private scores."""


def with_public_popularity(item_features: pl.DataFrame, titles: pl.DataFrame) -> pl.DataFrame:
    """``item_features`` plus ``public_popularity`` = the catalogue's TMDB ``vote_count``.

    ``titles`` is the lake's ``titles`` table (``title_id``, ``vote_count``); items without a
    title row or count get null (unknown: ranked below every known item by the prior).
    """
    missing = {"title_id", "vote_count"} - set(titles.columns)
    if missing:
        raise ContentFeatureError(f"titles frame is missing columns {sorted(missing)}")
    votes = (
        titles.select(
            pl.col("title_id").cast(pl.String).alias("item_id"),
            pl.col("vote_count").cast(pl.Float64).alias(PUBLIC_POPULARITY),
        )
        .drop_nulls("item_id")
        .unique("item_id", keep="first", maintain_order=True)
    )
    base = item_features.drop(PUBLIC_POPULARITY, strict=False)
    return base.with_columns(pl.col("item_id").cast(pl.String)).join(
        votes, on="item_id", how="left"
    )


def public_popularity_prior(
    item_features: pl.DataFrame, item_ids: list[str] | np.ndarray
) -> np.ndarray | None:
    """``(len(item_ids),)`` float32 public prior bias, or ``None`` without ``public_popularity``.

    ``PRIOR_SCALE x log1p(p) / log1p(max p)``: rank-preserving and tiny; items without a figure
    (absent, null) get -PRIOR_SCALE, below every known one. Raises :class:`ContentFeatureError`
    for negative or non-finite figures and when no catalogue item has one.
    """
    if PUBLIC_POPULARITY not in item_features.columns:
        return None
    frame = item_features.select(
        pl.col("item_id").cast(pl.String), pl.col(PUBLIC_POPULARITY).cast(pl.Float64)
    ).drop_nulls()
    values = frame[PUBLIC_POPULARITY].to_numpy()
    if values.size and (not np.isfinite(values).all() or (values < 0).any()):
        row = int(np.flatnonzero(~np.isfinite(values) | (values < 0))[0])
        raise ContentFeatureError(
            f"item_features {PUBLIC_POPULARITY} of {frame['item_id'][row]!r} must be a finite "
            f"number >= 0, got {values[row]}"
        )
    known = dict(zip(frame["item_id"].to_list(), values.tolist(), strict=True))
    raw = np.array([known.get(str(i), -1.0) for i in item_ids], dtype=np.float64)
    if not (raw >= 0).any():
        raise ContentFeatureError(
            f"none of the {len(raw)} catalogue items has a {PUBLIC_POPULARITY} figure"
        )
    top = max(float(np.log1p(raw.max())), 1e-12)
    prior = np.where(raw >= 0, PRIOR_SCALE * np.log1p(np.maximum(raw, 0)) / top, -PRIOR_SCALE)
    logger.info(
        "public popularity prior", extra={"items": len(raw), "covered": int((raw >= 0).sum())}
    )
    return prior.astype(np.float32)


def load_item_vectors(path: str | Path, num_items: int, dim: int) -> np.ndarray:
    """Read a ``.npy`` of shape ``(num_items, dim)`` (as the deployment ServerApp does)."""
    file = Path(path)
    if not file.is_file():
        raise ContentFeatureError(f"item vectors file not found: {file}")
    try:
        array = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ContentFeatureError(f"{file}: not a readable .npy array: {exc}") from exc
    if array.shape != (num_items, dim):
        raise ContentFeatureError(
            f"{file}: shape {array.shape}, expected ({num_items}, {dim}) (num-items, content-dim)"
        )
    if not np.isfinite(array).all():
        raise ContentFeatureError(f"{file}: contains non-finite values")
    return np.ascontiguousarray(array, dtype=np.float32)
