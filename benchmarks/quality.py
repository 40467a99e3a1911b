"""Recommendation quality on MovieLens with the Microsoft Recommenders protocol.

Protocol: ``stratified_split(ratio=0.75, seed=42, filter_by="item")`` (their
``python_stratified_split``) and, with ``--splits temporal``, a per-user chronological 75/25 split
(``temporal_split``: each user's oldest 75 % train, the rest test), binary weights as in the
training contract (``models.train``), every held-out rating relevant, training items excluded,
top 10. One table per dataset and split: nDCG@10, P@10,
R@10, MAP@10, catalogue coverage, popularity bias (mean popularity percentile of recommended
items) and fit seconds. Models come from ``models.registry``; federated models are skipped with a
note when their module cannot be imported.

Models that use item features (``CONTENT_MODELS``) get MiniLM embeddings of the public MovieLens
titles and genres (``--no-content`` turns this off): public metadata costs no privacy.

``--privacy-utility`` trains federated-dp at several ε (δ = 1e-5) plus federated without DP on
each dataset and writes a table and ``privacy_utility_<dataset>.png`` (``plot_privacy_utility``).

``--tune`` first tunes EASE's λ, RP3beta, ItemKNN and the ensemble weights on a validation split
carved from the training part only (``benchmarks/_tuning.py``; the test part is never used for a
choice), refits the winners on the whole training part and writes ``tuning_<dataset>_<split>.csv``.
Without it every model runs with its defaults (themselves found by ``--tune`` on ML-100k).
``--table CSV`` writes every row of the run (with dataset, split and the parameters used) to one
file, e.g. ``benchmarks/results/quality.csv``.

``--mlflow URI`` also logs every row as an MLflow run (experiment ``media-gateway-quality``:
params model/dataset/split/epsilon, metrics nDCG@10, P@10, R@10, MAP@10, coverage, train s).

Item content vectors are cached in ``--out-dir`` (``features_<dataset>.parquet``): encoding the
9.7k ml-latest-small titles takes minutes on 2 CPUs.

Run from the project root (opacus installs a top-level ``benchmarks`` package, so run the file, not
``-m``)::

    .venv/bin/python benchmarks/quality.py --datasets ml-100k
    .venv/bin/python benchmarks/quality.py --privacy-utility --datasets ml-100k
    .venv/bin/python benchmarks/quality.py --tune --table benchmarks/results/quality.csv \
        --models popularity,als,bpr,ease,rp3beta,itemknn,hybrid,ensemble
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
from _datasets import DATASETS, DEFAULT_DATA_DIR, load_dataset
from _tuning import tune
from rich.console import Console
from rich.table import Table

from core import PROJECT_ROOT
from models.evaluation.evaluate import evaluate_model
from models.evaluation.plots import plot_model_comparison, plot_privacy_utility
from models.evaluation.splits import stratified_split, temporal_split
from models.registry import MODELS, create, model_class
from models.train import to_weights

log = logging.getLogger("benchmarks.quality")
console = Console(width=None if sys.stdout.isatty() else 120)  # files and pipes: no truncation

DEFAULT_MODELS = (
    "popularity",
    "als",
    "bpr",
    "ease",
    "rp3beta",
    "itemknn",
    "ensemble",
    "federated",
    "federated-dp",
)
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 64},
    "federated-dp": {"target_epsilon": 1.0, "target_delta": 1e-5},
}
"""Benchmark settings on top of each model's defaults (only keys the constructor accepts)."""
CONTENT_MODELS = ("federated-dp", "hybrid", "ensemble")
"""Models fitted with public item content vectors (``item_id, vector``)."""
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
SPLITS = ("stratified", "temporal")
MLFLOW_EXPERIMENT = "media-gateway-quality"
FEDERATED_MODULE = "models.federated"
COLUMNS = ("nDCG@10", "P@10", "R@10", "MAP@10", "coverage", "pop. bias", "train s")


def _accepted(name: str, params: dict[str, Any]) -> dict[str, Any]:
    accepted = inspect.signature(model_class(name).__init__).parameters
    return {k: v for k, v in params.items() if k in accepted}


def _importable(name: str) -> bool:
    """False only when the model's own module is missing (federated extras not installed)."""
    try:
        model_class(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(FEDERATED_MODULE):
            return False
        raise
    return True


def run_model(
    name: str,
    train: pl.DataFrame,
    test: pl.DataFrame,
    seed: int,
    k: int,
    item_features: pl.DataFrame | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Fit one registry model on ``train`` and evaluate it on ``test``; returns one table row."""
    kwargs = {**_accepted(name, MODEL_PARAMS.get(name, {})), **_accepted(name, params)}
    features = item_features if name in CONTENT_MODELS else None
    started = time.perf_counter()
    model = create(name, seed=seed, **kwargs).fit(train, item_features=features)
    seconds = time.perf_counter() - started
    result = evaluate_model(model, train, test, k=k)
    return {
        "model": name,
        "nDCG@10": result["ndcg"],
        "P@10": result["precision"],
        "R@10": result["recall"],
        "MAP@10": result["map"],
        "coverage": result["coverage"],
        "pop. bias": result["popularity_bias"],
        "train s": seconds,
    }


def split_dataset(
    name: str, data_dir: Path, seed: int, split: str = "stratified"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(binary train, test)``: Microsoft's stratified split, or a per-user temporal one."""
    train, test = split_raw(name, data_dir, seed, split)
    return to_weights(train), test


def split_raw(
    name: str, data_dir: Path, seed: int, split: str = "stratified"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(train, test)`` with the ratings and timestamps (the tuning step splits train again)."""
    ratings = load_dataset(name, data_dir)
    if split == "stratified":
        train, test = stratified_split(ratings, ratio=0.75, seed=seed, filter_by="item")
    elif split == "temporal":
        train, test = temporal_split(ratings, ratio=0.75)
    else:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    log.info("split %s/%s: %d train rows, %d test rows", name, split, train.height, test.height)
    return train, test


def log_rows_to_mlflow(uri: str, rows: list[dict[str, Any]]) -> None:
    """One MLflow run per table row (params: model, dataset, split, epsilon; metrics: figures)."""
    import mlflow

    from mlops.tracking import metric_key

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(MLFLOW_EXPERIMENT)
    for row in rows:
        name = f"{row['model']}-{row['dataset']}-{row['split']}"
        with mlflow.start_run(run_name=name):
            mlflow.log_params(
                {k: row.get(k) for k in ("model", "dataset", "split", "epsilon") if k in row}
            )
            mlflow.log_metrics(
                {
                    metric_key(k.replace(" ", "_").replace(".", "")): float(v)
                    for k, v in row.items()
                    if k in COLUMNS or k == "ratio"
                    if isinstance(v, int | float) and math.isfinite(float(v))
                }
            )


def _show(title: str, rows: list[dict[str, Any]], first: str = "model") -> None:
    table = Table(title=title)
    columns = [first, *(c for c in rows[0] if c != first)] if rows else [first]
    for column in columns:
        left = column in (first, "label")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for row in rows:
        table.add_row(*(_fmt(row[c]) for c in columns))
    console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def content_features(args: argparse.Namespace, dataset: str) -> pl.DataFrame | None:
    """Public item content vectors for the dataset, or None with ``--no-content``."""
    if not args.content:
        return None
    from federated_time import movielens_item_features  # benchmarks/ is on sys.path

    cache = args.out_dir / f"features_{dataset}.parquet"
    if cache.is_file():
        return pl.read_parquet(cache)
    console.print(f"[dim]{dataset}: embedding public titles and genres...[/dim]")
    features = movielens_item_features(dataset, args.data_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    features.write_parquet(cache)
    return features


SPLIT_TITLES = {
    "stratified": "stratified 75/25 by item",
    "temporal": "per-user temporal 75/25",
}


def quality(args: argparse.Namespace) -> None:
    logged: list[dict[str, Any]] = []
    for dataset in args.datasets:
        features = (
            content_features(args, dataset)
            if any(m in CONTENT_MODELS for m in args.models)
            else None
        )
        for split in args.splits:
            raw_train, test = split_raw(dataset, args.data_dir, args.seed, split)
            train = to_weights(raw_train)
            tuned: dict[str, dict[str, Any]] = {}
            if args.tune:
                console.print(f"[dim]{dataset}/{split}: tuning on a validation split...[/dim]")
                tuned, tuning_rows = tune(
                    args.models, raw_train, split, args.seed, args.k, features, args.fixed
                )
                args.out_dir.mkdir(parents=True, exist_ok=True)
                pl.DataFrame(tuning_rows).write_csv(args.out_dir / f"tuning_{dataset}_{split}.csv")
                _show(
                    f"{dataset}/{split}: best validation nDCG@{args.k}",
                    [r for r in tuning_rows if r["model"].endswith(" best")],
                )
            rows, used = [], []
            for name in args.models:
                if not _importable(name):
                    console.print(f"[yellow]{name}: not importable, skipped[/yellow]")
                    continue
                console.print(f"[dim]{dataset}/{split}: training {name}...[/dim]")
                params = tuned.get(name, {})
                rows.append(run_model(name, train, test, args.seed, args.k, features, **params))
                used.append(json.dumps(params) if params else "defaults")
            title = f"{dataset}: {SPLIT_TITLES[split]}, seed {args.seed}, top {args.k}"
            _show(title, rows)
            logged += [
                {**r, "dataset": dataset, "split": split, "params": p}
                for r, p in zip(rows, used, strict=True)
            ]
            if args.out_dir and rows:
                args.out_dir.mkdir(parents=True, exist_ok=True)
                frame = pl.DataFrame(rows)
                frame.write_csv(args.out_dir / f"quality_{dataset}_{split}.csv")
                plot_model_comparison(frame.drop("train s")).savefig(
                    args.out_dir / f"quality_{dataset}_{split}.png"
                )
    if args.table and logged:
        write_table(args.table, logged)
    if args.mlflow and logged:
        log_rows_to_mlflow(args.mlflow, logged)


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """All rows of a run in one CSV: dataset, split, model, the metrics and the parameters used."""
    first = ["dataset", "split", "model"]
    columns = [*first, *(c for c in rows[0] if c not in (*first, "params")), "params"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame([{c: r.get(c) for c in columns} for r in rows]).write_csv(path)
    console.print(f"wrote {path}")


def privacy_utility(args: argparse.Namespace) -> None:
    """federated-dp at every ε, the non-private ``--reference`` model and popularity; ``ratio``
    is nDCG@10 over the reference's (default the federated model without DP)."""
    logged: list[dict[str, Any]] = []
    for dataset in args.datasets:
        features = content_features(args, dataset)
        for split in args.splits:
            train, test = split_dataset(dataset, args.data_dir, args.seed, split)
            points: list[dict[str, Any]] = []
            for epsilon in args.epsilons:
                console.print(f"[dim]{dataset}/{split}: federated-dp at ε={epsilon}...[/dim]")
                row = run_model(
                    "federated-dp",
                    train,
                    test,
                    args.seed,
                    args.k,
                    features,
                    target_epsilon=epsilon,
                )
                points.append({"label": "federated-dp", "epsilon": epsilon, **row})
            console.print(f"[dim]{dataset}/{split}: {args.reference} without DP...[/dim]")
            row = run_model(args.reference, train, test, args.seed, args.k, features)
            points.append({"label": f"{args.reference} (no DP)", "epsilon": None, **row})
            row = run_model("popularity", train, test, args.seed, args.k)
            points.append({"label": "popularity", "epsilon": None, **row})
            reference = points[-2]["nDCG@10"]
            for point in points:
                point["ratio"] = point["nDCG@10"] / reference
            _show(
                f"{dataset}/{split}: privacy/utility (δ = 1e-5)",
                [{k: v for k, v in p.items() if k != "model"} for p in points],
                first="label",
            )
            logged += [{**p, "dataset": dataset, "split": split} for p in points]
            args.out_dir.mkdir(parents=True, exist_ok=True)
            pl.DataFrame(points).write_csv(args.out_dir / f"privacy_utility_{dataset}_{split}.csv")
            figure = plot_privacy_utility([{**p, "ndcg": p["nDCG@10"]} for p in points[:-1]])
            path = args.out_dir / f"privacy_utility_{dataset}_{split}.png"
            figure.savefig(path)
            console.print(f"wrote {path}")
    if args.mlflow and logged:
        log_rows_to_mlflow(args.mlflow, logged)


def _list(choices: tuple[str, ...] | dict[str, Any]):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [v for v in values if v not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(choices)}")
        return values

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", type=_list(DATASETS), default=list(DATASETS))
    parser.add_argument("--models", type=_list(MODELS), default=list(DEFAULT_MODELS))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--splits", type=_list(SPLITS), default=list(SPLITS))
    parser.add_argument("--privacy-utility", action="store_true")
    parser.add_argument(
        "--reference",
        type=lambda v: _list(MODELS)(v)[0],
        default="federated",
        help="non-private model the ε curve is compared with (ratio column)",
    )
    parser.add_argument("--mlflow", metavar="URI", help="also log every row to this MLflow store")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="tune hyper-parameters on a validation split carved from the training part",
    )
    parser.add_argument(
        "--fixed",
        type=_list(MODELS),
        default=[],
        help="with --tune: models that keep their defaults (no grid search)",
    )
    parser.add_argument("--table", type=Path, metavar="CSV", help="write every row to one CSV")
    parser.add_argument(
        "--no-content",
        dest="content",
        action="store_false",
        help="do not give content-aware models the public title/genre embeddings",
    )
    parser.add_argument(
        "--epsilons", type=lambda s: [float(x) for x in s.split(",")], default=list(EPSILONS)
    )
    parser.add_argument("--out-dir", type=Path, default=PROJECT_ROOT / "var" / "benchmarks")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # Flower logs every round at INFO through its own handler
        logging.getLogger("flwr").setLevel(logging.WARNING)
    if args.privacy_utility:
        privacy_utility(args)
    else:
        quality(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
