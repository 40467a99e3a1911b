"""The training contract behind ``media-gateway train`` and ``media-gateway recommend-batch``.

``train_model`` reads an interactions file, fits one registry model and writes a model directory;
``recommend_batch`` turns such a directory into a top-k Parquet file for every training user.

Interactions input: CSV (header required) or Parquet with columns ``user_id, item_id`` and optional
``rating`` and ``timestamp``; other columns are ignored. Ids are kept as the exact strings given
(``"007"`` stays ``"007"``). ``rating`` must be a finite number when present; ``timestamp`` is
accepted but not used by any model.

Weights: every distinct (user, item) pair gets weight 1.0 (binarisation); ratings do not scale it
and repeated rows collapse. Measured on ML-100k (stratified 75/25 split, every held-out rating
relevant): EASE nDCG@10 0.485 with binary weights against 0.419 with weight = rating, ALS 0.379
against 0.381 (equal within noise), BPR uses presence only. So ranking quality decides for binary
weights; a low rating still means "chose to watch it", which is what the product predicts.

Model directory layout (written into a staging folder, then swapped in by
:func:`core.atomic.staged_dir`, so a rerun replaces the previous model atomically): whatever
``Recommender.save`` writes (``model.json`` plus arrays), ``train_seen.parquet``
(``user_id, item_id``: the training pairs that ``recommend_batch`` excludes and whose users it
serves) and ``report.json`` (the returned report).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from core.atomic import atomic_path, staged_dir
from models.base import RECS_SCHEMA
from models.registry import MODELS, create, load_model

log = logging.getLogger(__name__)

CONTENT_MODELS = ("federated-dp", "hybrid", "ensemble")
"""Models that use public item content when it is available (``train`` finds the catalogue's)."""
CATALOGUE_TABLE = "content_embeddings"
"""Lake table of the public catalogue's content vectors (``title_id, vector``)."""
SEEN_FILE = "train_seen.parquet"
REPORT_FILE = "report.json"
RECOMMEND_CHUNK = 2048
"""Users per ``recommend`` call in ``recommend_batch`` (bounds memory, drives the progress bar)."""
_CSV_SUFFIXES = {".csv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


class TrainingInputError(ValueError):
    """An input file or argument is unusable; the message names the file (and CSV line)."""


class RecommendBatchError(RuntimeError):
    """A model directory cannot produce batch recommendations, or the model broke the contract."""


# ---- reading inputs -------------------------------------------------------------------------
def _file_kind(path: Path) -> str:
    if not path.is_file():
        raise TrainingInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    raise TrainingInputError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")


def _where(path: Path, kind: str, index: int) -> str:
    """``file:line N`` for CSV (header is line 1) or ``file: row N`` for Parquet (1-based)."""
    if kind == "csv":
        return f"{path}:{index + 2}"
    return f"{path}: row {index + 1}"


def _ragged_line(path: Path) -> str:
    """Locate the first CSV record whose field count differs from the header's."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for record in reader:
            if record and len(record) != len(header):
                return (
                    f"{path}:{reader.line_num}: expected {len(header)} fields like the header, "
                    f"found {len(record)}"
                )
    return f"{path}: malformed CSV"


def _read_table(path: Path, kind: str) -> pl.DataFrame:
    if path.stat().st_size == 0 or (kind == "csv" and not path.read_bytes().strip()):
        raise TrainingInputError(f"{path}: file is empty")
    try:
        if kind == "parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.ComputeError as exc:
        if kind == "csv":
            raise TrainingInputError(_ragged_line(path)) from exc
        raise TrainingInputError(f"{path}: unreadable Parquet: {exc}") from exc
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise TrainingInputError(f"{path}: unreadable {kind} file: {exc}") from exc


def _first_bad(mask: pl.Series) -> int | None:
    hits = mask.arg_true()
    return int(hits[0]) if hits.len() else None


def read_interactions(path: Path) -> pl.DataFrame:
    """Validated interactions: ``user_id, item_id`` (str) and ``rating`` (f64, null if absent).

    Raises :class:`TrainingInputError` naming the file and, for CSV, the first bad line (missing
    columns, empty ids, non-numeric or non-finite rating, empty file, ragged rows). Line numbers
    assume no quoted field spans several lines.
    """
    path = Path(path)
    kind = _file_kind(path)
    raw = _read_table(path, kind)
    missing = [c for c in ("user_id", "item_id") if c not in raw.columns]
    if missing:
        where = f"{path}:1" if kind == "csv" else str(path)
        raise TrainingInputError(
            f"{where}: missing required column(s) {missing}; found {raw.columns}"
        )
    if raw.height == 0:
        raise TrainingInputError(f"{path}: no data rows")
    ids = raw.select(
        pl.col("user_id").cast(pl.String).str.strip_chars(),
        pl.col("item_id").cast(pl.String).str.strip_chars(),
    )
    for column in ("user_id", "item_id"):
        bad = _first_bad(ids[column].is_null() | (ids[column] == ""))
        if bad is not None:
            raise TrainingInputError(f"{_where(path, kind, bad)}: empty {column}")
    if "rating" in raw.columns:
        text = raw["rating"].cast(pl.String).str.strip_chars()
        rating = text.cast(pl.Float64, strict=False)
        bad = _first_bad(rating.is_null() | rating.is_nan() | rating.is_infinite())
        if bad is not None:
            raise TrainingInputError(
                f"{_where(path, kind, bad)}: rating {text[bad] or ''!r} is not a finite number"
            )
    else:
        rating = pl.Series("rating", [None] * raw.height, dtype=pl.Float64)
    return ids.with_columns(rating.alias("rating"))


def to_weights(interactions: pl.DataFrame) -> pl.DataFrame:
    """Binarise: one row per distinct (user, item) pair with ``weight`` 1.0 (see module doc)."""
    return (
        interactions.select("user_id", "item_id")
        .unique(maintain_order=True)
        .with_columns(pl.lit(1.0).alias("weight"))
    )


def _item_texts(df: pl.DataFrame) -> list[str]:
    from core.content import content_text

    if "text" in df.columns:
        return df["text"].cast(pl.String).fill_null("").to_list()
    if "title" not in df.columns:
        raise TrainingInputError("items file needs a `vector`, `text` or `title` column")
    if df.schema.get("genres") == pl.String:  # MovieLens style "Action|Comedy"
        df = df.with_columns(pl.col("genres").str.split("|"))
    return [content_text(row) for row in df.iter_rows(named=True)]


def load_item_features(path: Path) -> pl.DataFrame:
    """``item_id, vector`` from a titles-like file (id column ``item_id``, else ``title_id``).

    A ``vector`` list column is used as is (all vectors must have the same length); otherwise a
    ``text`` column, or the title fields (``content_text``), is encoded with all-MiniLM-L6-v2.
    """
    from models.embeddings.encoder import encode_texts

    path = Path(path)
    kind = _file_kind(path)
    df = _read_table(path, kind)
    id_col = "item_id" if "item_id" in df.columns else "title_id"
    if id_col not in df.columns:
        raise TrainingInputError(
            f"{path}: needs an item_id (or title_id) column; found {df.columns}"
        )
    df = df.with_columns(pl.col(id_col).cast(pl.String).alias("item_id"))
    bad = _first_bad(df["item_id"].is_null() | (df["item_id"] == ""))
    if bad is not None:
        raise TrainingInputError(f"{_where(path, kind, bad)}: empty {id_col}")
    dup = _first_bad(~df["item_id"].is_first_distinct())
    if dup is not None:
        raise TrainingInputError(
            f"{_where(path, kind, dup)}: duplicate {id_col} {df['item_id'][dup]!r}"
        )
    if "vector" in df.columns:
        if not isinstance(df.schema["vector"], pl.List | pl.Array):
            raise TrainingInputError(f"{path}: `vector` must be a list column (use Parquet)")
        vectors = df["vector"].cast(pl.List(pl.Float32))
        lengths = vectors.list.len()
        bad = _first_bad(vectors.is_null() | (lengths != lengths.max()) | (lengths == 0))
        if bad is not None:
            raise TrainingInputError(f"{_where(path, kind, bad)}: missing or short vector")
        return pl.DataFrame({"item_id": df["item_id"], "vector": vectors})
    try:
        texts = _item_texts(df)
    except TrainingInputError as exc:
        raise TrainingInputError(f"{path}: {exc}") from exc
    log.info("encoding item texts", extra={"items": len(texts), "file": str(path)})
    vectors = encode_texts(texts, show_progress=len(texts) > 500)
    return pl.DataFrame(
        {"item_id": df["item_id"], "vector": pl.Series(vectors.tolist(), dtype=pl.List(pl.Float32))}
    )


def catalogue_item_features(lake: Path, item_ids: pl.Series) -> pl.DataFrame | None:
    """The public catalogue's content vectors (``item_id, vector``) for training, or ``None``.

    Reads the lake's ``content_embeddings`` (MiniLM vectors of the public TMDB/MovieLens titles,
    written by the nightly pipeline). Returns ``None`` when the table is absent or empty, or when
    none of ``item_ids`` is a catalogued ``title_id`` (e.g. raw MovieLens ids): content is then
    simply not used. Public metadata costs no privacy, so DP models use it by default.
    """
    from core.lake import read_table

    try:
        table = read_table(Path(lake), CATALOGUE_TABLE)
    except FileNotFoundError:
        return None
    if table.height == 0:
        return None
    features = table.select(pl.col("title_id").cast(pl.String).alias("item_id"), "vector")
    wanted = item_ids.cast(pl.String).unique()
    if not features["item_id"].is_in(wanted.implode()).any():
        log.info("catalogue content covers none of the training items", extra={"lake": str(lake)})
        return None
    return features.unique("item_id", keep="first", maintain_order=True)


def _default_lake() -> Path | None:
    from core.settings import ConfigError, load_settings

    try:
        return load_settings().paths.lake
    except (ConfigError, FileNotFoundError) as exc:
        log.info("no configured lake, no catalogue content: %s", exc)
        return None


# ---- writing outputs ------------------------------------------------------------------------
def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TrainingInputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "model.json").is_file():
        raise TrainingInputError(
            f"{out}: refusing to replace a non-empty directory that is not a model directory"
        )


def _model_kwargs(model: str, epsilon: float | None, seed: int) -> dict[str, Any]:
    if model not in MODELS:
        raise TrainingInputError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    kwargs: dict[str, Any] = {"seed": seed}
    if epsilon is not None:
        if model != "federated-dp":
            raise TrainingInputError(f"--epsilon applies to federated-dp only, not {model!r}")
        if not (math.isfinite(epsilon) and epsilon > 0):
            raise TrainingInputError(f"epsilon must be a finite number > 0, got {epsilon}")
        kwargs["target_epsilon"] = float(epsilon)
    return kwargs


def train_model(
    interactions_path: Path,
    model: str,
    out: Path,
    items_path: Path | None = None,
    epsilon: float | None = None,
    seed: int = 42,
    lake: Path | None = None,
    use_catalogue: bool = True,
) -> dict[str, Any]:
    """Fit registry model ``model`` on ``interactions_path`` and save it into ``out``.

    ``epsilon`` (federated-dp only) becomes the model's ``target_epsilon``; ``items_path`` feeds
    item features to ``fit`` (models without content use ignore them). Without ``items_path``,
    content models (:data:`CONTENT_MODELS`) get the public catalogue's content vectors from the
    lake (``lake``, default: the configured ``paths.lake``) when it covers the training items,
    so ``train`` gives the same model as the benchmark/nightly path; ``use_catalogue=False`` turns
    that off. The report's ``item_features_source`` says which was used. Returns the report that is
    also written to ``out/report.json``: timings in seconds, data sizes and model parameters.
    """
    out = Path(out)
    kwargs = _model_kwargs(model, epsilon, seed)
    _check_out(out)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    interactions = read_interactions(Path(interactions_path))
    weighted = to_weights(interactions)
    timings["read"] = time.perf_counter() - started

    item_features = None
    source = "none"
    t = time.perf_counter()
    if items_path is not None:
        item_features = load_item_features(Path(items_path))
        source = str(items_path)
    elif use_catalogue and model in CONTENT_MODELS:
        lake = lake if lake is not None else _default_lake()
        if lake is not None:
            item_features = catalogue_item_features(lake, weighted["item_id"])
            if item_features is not None:
                source = f"catalogue: {Path(lake) / CATALOGUE_TABLE}"
    if item_features is not None:
        timings["item_features"] = time.perf_counter() - t

    t = time.perf_counter()
    recommender = create(model, **kwargs)
    recommender.fit(weighted, item_features=item_features)
    timings["fit"] = time.perf_counter() - t

    t = time.perf_counter()
    with staged_dir(out) as staging:
        recommender.save(staging)
        weighted.select("user_id", "item_id").write_parquet(staging / SEEN_FILE)
        timings["save"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        manifest = recommender.read_manifest(staging)
        report = {
            "model": model,
            "implementation": type(recommender).__name__,
            "params": manifest.get("params", {}),
            "seed": seed,
            "epsilon": epsilon,
            "interactions_path": str(interactions_path),
            "items_path": str(items_path) if items_path is not None else None,
            "rows": interactions.height,
            "pairs": weighted.height,
            "users": weighted["user_id"].n_unique(),
            "items": weighted["item_id"].n_unique(),
            "item_features": item_features.height if item_features is not None else 0,
            "item_features_source": source,
            "weighting": "binary: 1.0 per distinct (user, item) pair",
            "seconds": {name: round(value, 3) for name, value in timings.items()},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2))
    log.info(
        "trained %s",
        model,
        extra={"out": str(out), "users": report["users"], "seconds": report["seconds"]["total"]},
    )
    return report


def recommend_batch(model_dir: Path, k: int, out: Path) -> int:
    """Top-``k`` for every training user (seen items excluded) into Parquet ``out``; returns rows.

    Output columns ``user_id, item_id, rank, score`` with the original id strings, written
    atomically (:func:`core.atomic.atomic_path`).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model_dir, out = Path(model_dir), Path(out)
    seen_path = model_dir / SEEN_FILE
    if not seen_path.is_file():
        raise RecommendBatchError(f"{model_dir}: no {SEEN_FILE}; was it written by `train`?")
    seen = pl.read_parquet(seen_path).select(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String)
    )
    model = load_model(model_dir)
    users = seen["user_id"].unique().sort().to_list()
    frames = []
    with tqdm(total=len(users), desc="recommend", unit="user", disable=len(users) < 5000) as bar:
        for start in range(0, len(users), RECOMMEND_CHUNK):
            chunk = users[start : start + RECOMMEND_CHUNK]
            frames.append(model.recommend(chunk, k=k, exclude_seen=True))
            bar.update(len(chunk))
    recs = pl.concat(frames) if frames else pl.DataFrame(schema=RECS_SCHEMA)
    recs = recs.select(list(RECS_SCHEMA)).cast(RECS_SCHEMA)
    leaked = recs.join(seen, on=["user_id", "item_id"], how="semi")
    if leaked.height:
        raise RecommendBatchError(
            f"{model_dir}: the model recommended {leaked.height} training items despite "
            "exclude_seen=True"
        )
    with atomic_path(out) as tmp:
        recs.write_parquet(tmp)
    log.info("wrote batch recommendations", extra={"rows": recs.height, "out": str(out)})
    return recs.height
