"""Wall time and nDCG@10 of federated and federated-dp training on MovieLens 100K.

Protocol: Microsoft Recommenders' split (``stratified_split(ratio=0.75, seed=42,
filter_by="item")``), binary weights, every held-out rating relevant, training items excluded,
top 10 (``models.evaluation.evaluate.evaluate_model``). Training runs the Flower app in-process
(:class:`models.federated.recommender.FederatedRecommender`) with the registry defaults unless
overridden on the command line. Prints a table (seconds, nDCG@10, ε, noise multiplier) and
optionally writes it as JSON together with the per-round history.

Run from the project root (opacus installs a top-level ``benchmarks`` package, so run the file)::

    .venv/bin/python benchmarks/federated_time.py
    .venv/bin/python benchmarks/federated_time.py --models federated-dp --rounds 10 --out var/fed.json
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
from _datasets import DEFAULT_DATA_DIR, load_ml100k
from rich.console import Console
from rich.table import Table

from models.evaluation.evaluate import evaluate_model
from models.evaluation.splits import stratified_split
from models.registry import create

log = logging.getLogger("benchmarks.federated_time")
console = Console(width=None if sys.stdout.isatty() else 120)


def run_one(
    name: str, train: pl.DataFrame, test: pl.DataFrame, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Fit one registry model, evaluate it, and return the figures."""
    model = create(name, **overrides)
    start = time.perf_counter()
    model.fit(train)
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
    parser.add_argument("--models", nargs="+", default=["federated", "federated-dp"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--local-epochs", type=int, default=None)
    parser.add_argument("--num-clients", type=int, default=None)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None, help="Write results as JSON here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    ratings = load_ml100k(args.data_dir)
    train, test = stratified_split(ratings, ratio=0.75, seed=42, filter_by="item")
    train = train.select("user_id", "item_id").with_columns(pl.lit(1.0).alias("weight"))
    overrides: dict[str, Any] = {"seed": 42}
    for key in ("rounds", "local_epochs", "num_clients"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)

    table = Table(title=f"ML-100k federated training ({os.cpu_count()} CPUs)")
    for col in ("model", "train s", "nDCG@10", "P@10", "ε", "δ", "σ"):
        table.add_column(col)
    results = []
    for name in args.models:
        extra = {"target_epsilon": args.epsilon} if name == "federated-dp" else {}
        res = run_one(name, train, test, {**overrides, **extra})
        results.append(res)
        table.add_row(
            name,
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
