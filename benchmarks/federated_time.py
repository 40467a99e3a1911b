"""Wall time and nDCG@10 of federated and federated-dp training on MovieLens.

Protocol: Microsoft Recommenders' split (``stratified_split(ratio=0.75, seed=42,
filter_by="item")``), binary weights, every held-out rating relevant, training items excluded,
top 10 (``models.evaluation.evaluate.evaluate_model``). Training runs the Flower app in-process
(:class:`models.federated.recommender.FederatedRecommender`) with the registry defaults unless
overridden on the command line. Prints a table (seconds, nDCG@10, ε, noise multiplier) and
optionally writes it as JSON together with the per-round history.

``--content`` passes public item features: all-MiniLM-L6-v2 embeddings of each movie's title (with
year) and genres from the dataset's public metadata (``u.item`` / ``movies.csv``), the same text
``core.content.content_text`` builds for catalogue titles. ``--seeds 42,42,7`` shows both
reproducibility (a repeated seed gives the same figures) and the spread over seeds (the seed drives
partitioning, sampling and noise; the split stays seed 42).

Run from the project root (opacus installs a top-level ``benchmarks`` package, so run the file)::

    .venv/bin/python benchmarks/federated_time.py
    .venv/bin/python benchmarks/federated_time.py --models federated-dp --content --seeds 42,42,7
    .venv/bin/python benchmarks/federated_time.py --dataset ml-latest-small --models federated-dp
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from _datasets import DATASETS, DEFAULT_DATA_DIR, load_dataset
from rich.console import Console
from rich.table import Table

from models.evaluation.evaluate import evaluate_model
from models.evaluation.splits import stratified_split
from models.registry import create

log = logging.getLogger("benchmarks.federated_time")
console = Console(width=None if sys.stdout.isatty() else 120)


def _genre_names(data_dir: Path) -> list[str]:
    path = Path(data_dir) / "movielens" / "ml-100k" / "u.genre"
    lines = path.read_text(encoding="latin-1").splitlines()
    return [line.split("|")[0] for line in lines if line.strip()]


def movielens_item_texts(dataset: str, data_dir: Path) -> pl.DataFrame:
    """``item_id, text`` from the dataset's public movie metadata (title with year, genres)."""
    from core.content import content_text

    root = Path(data_dir) / "movielens"
    rows: list[tuple[str, str]] = []
    if dataset == "ml-100k":
        genres = _genre_names(data_dir)
        path = root / "ml-100k" / "u.item"
        for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
            fields = line.split("|")
            if len(fields) != 24:
                raise ValueError(f"{path}:{number}: expected 24 fields, found {len(fields)}")
            names = [g for g, flag in zip(genres, fields[5:], strict=True) if flag == "1"]
            names = [g for g in names if g != "unknown"]
            rows.append((fields[0], content_text({"title": fields[1], "genres": names})))
    else:
        movies = pl.read_csv(root / "ml-latest-small" / "movies.csv")
        for row in movies.iter_rows(named=True):
            names = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            rows.append(
                (str(row["movieId"]), content_text({"title": row["title"], "genres": names}))
            )
    return pl.DataFrame(rows, schema=["item_id", "text"], orient="row")


def movielens_item_features(dataset: str, data_dir: Path) -> pl.DataFrame:
    """``item_id, vector``: MiniLM embeddings of :func:`movielens_item_texts` (public metadata)."""
    from models.embeddings.encoder import encode_texts

    texts = movielens_item_texts(dataset, data_dir)
    vectors = encode_texts(texts["text"].to_list(), show_progress=True)
    return pl.DataFrame(
        {
            "item_id": texts["item_id"],
            "vector": pl.Series(vectors.tolist(), dtype=pl.List(pl.Float32)),
        }
    )


def run_one(
    name: str,
    train: pl.DataFrame,
    test: pl.DataFrame,
    overrides: dict[str, Any],
    item_features: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Fit one registry model, evaluate it, and return the figures."""
    model = create(name, **overrides)
    start = time.perf_counter()
    model.fit(train, item_features=item_features)
    seconds = time.perf_counter() - start
    metrics = evaluate_model(model, train, test, k=10)
    privacy = model.privacy_report()  # type: ignore[attr-defined]
    return {
        "model": name,
        "train_seconds": round(seconds, 1),
        "ndcg@10": metrics["ndcg"],
        "precision@10": metrics["precision"],
        "epsilon": privacy["epsilon"],
        "delta": privacy["delta"],
        "noise_multiplier": privacy["noise_multiplier"],
        "privacy_unit": privacy["privacy_unit"],
        "params": model.params,  # type: ignore[attr-defined]
        "round_history": model.round_history,  # type: ignore[attr-defined]
    }


def _atomic_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--dataset", choices=DATASETS, default="ml-100k")
    parser.add_argument("--content", action="store_true", help="Pass public item features.")
    parser.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[42])
    parser.add_argument("--models", nargs="+", default=["federated", "federated-dp"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--local-epochs", type=int, default=None)
    parser.add_argument("--num-clients", type=int, default=None)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None, help="Write results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flwr").setLevel(logging.WARNING)  # Flower logs every round at INFO

    ratings = load_dataset(args.dataset, args.data_dir)
    train, test = stratified_split(ratings, ratio=0.75, seed=42, filter_by="item")
    train = train.select("user_id", "item_id").unique(maintain_order=True)
    train = train.with_columns(pl.lit(1.0).alias("weight"))
    features = movielens_item_features(args.dataset, args.data_dir) if args.content else None
    overrides: dict[str, Any] = {}
    for key in ("rounds", "local_epochs", "num_clients"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)

    content = " + public content" if args.content else ""
    table = Table(title=f"{args.dataset} federated training{content} ({os.cpu_count()} CPUs)")
    for col in ("model", "seed", "train s", "nDCG@10", "P@10", "ε", "δ", "σ"):
        table.add_column(col)
    results = []
    for name, seed in ((n, s) for n in args.models for s in args.seeds):
        extra = {"target_epsilon": args.epsilon} if name == "federated-dp" else {}
        res = run_one(name, train, test, {**overrides, **extra, "seed": seed}, features)
        res["seed"] = seed
        results.append(res)
        table.add_row(
            name,
            str(seed),
            f"{res['train_seconds']:.1f}",
            f"{res['ndcg@10']:.4f}",
            f"{res['precision@10']:.4f}",
            f"{res['epsilon']:.3f}",
            f"{res['delta']:g}",
            f"{res['noise_multiplier']:.2f}",
        )
    console.print(table)
    if args.out is not None:
        _atomic_json(args.out, results)
        console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
