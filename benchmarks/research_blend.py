"""Issue 8 research: do blends of EASE with ALS (and RP3beta) pass EASE on the test split?

For each member set the ensemble's weights are picked on a validation split carved from the
training part only (``_tuning.validation_split``: same protocol as the test split), on a 0.1
simplex grid; the blend is then refitted on the whole training part (EASE λ scaled by the data-size
ratio, as ``--tune`` does) and scored on the test split. ``--tune-als`` first grid-searches ALS
(factors × regularization × alpha) on the same validation split. Prints one row per member set.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_blend.py --dataset ml-100k
    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_blend.py --dataset ml-100k --tune-als
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))  # benchmarks/serving.py must not shadow the serving package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _datasets import DEFAULT_DATA_DIR
from _tuning import _score, full_data_params, tune_ensemble_weights, validation_split
from quality import run_model, split_raw
from rich.console import Console
from rich.table import Table

from models.train import to_weights

console = Console(width=120)
EASE = {"model": "ease", "params": {"l2": 500.0}}
RP3 = {"model": "rp3beta", "params": {"alpha": 0.6, "beta": 0.5, "topk": 300}}
ALS_GRID = [
    {"factors": f, "regularization": r, "alpha": a}
    for f, r, a in itertools.product((32, 64, 128), (4.0, 12.0, 30.0), (0.5, 1.0, 2.0))
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--split", default="stratified", choices=["stratified", "temporal"])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tune-als", action="store_true", help="grid-search ALS on validation first")
    args = ap.parse_args()
    raw_train, test = split_raw(args.dataset, args.data_dir, args.seed, args.split)
    train = to_weights(raw_train)
    sub, val = validation_split(raw_train, args.split, args.seed)
    ratio = train.height / sub.height
    als: dict[str, Any] = {}
    if args.tune_als:
        scored = [(_score("als", p, sub, val, args.seed, 10, None), p) for p in ALS_GRID]
        best_val, als = max(scored, key=lambda t: t[0])
        console.print(f"ALS tuned on validation: {als} (val nDCG@10 {best_val:.4f})")
    table = Table(title=f"{args.dataset}, {args.split}: blends tuned on validation, then test")
    for col in ("members", "weights", "val nDCG@10", "test nDCG@10", "test P@10"):
        table.add_column(col, justify="left" if col == "members" else "right")
    for label in ("ease", "als", "ease+als", "ease+als+rp3beta"):
        members: list[dict[str, Any]] = []
        for name in label.split("+"):
            spec = {"ease": EASE, "rp3beta": RP3, "als": {"model": "als", "params": als}}[name]
            members.append({**spec, "weight": 1.0})
        if len(members) == 1:
            params = full_data_params(members[0]["model"], members[0]["params"], ratio)
            row = run_model(members[0]["model"], train, test, args.seed, 10, **params)
            table.add_row(label, "-", "-", f"{row['nDCG@10']:.4f}", f"{row['P@10']:.4f}")
            continue
        weights, val_ndcg, _ = tune_ensemble_weights(members, sub, val, args.seed, 10, None)
        full = [
            {**m, "weight": float(w), "params": full_data_params(m["model"], m["params"], ratio)}
            for m, w in zip(members, weights, strict=True)
        ]
        row = run_model("ensemble", train, test, args.seed, 10, members=full)
        table.add_row(
            label,
            " / ".join(f"{w:.1f}" for w in weights),
            f"{val_ndcg:.4f}",
            f"{row['nDCG@10']:.4f}",
            f"{row['P@10']:.4f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
