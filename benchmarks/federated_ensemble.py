"""The tuned ensemble with centralized members against the same ensemble with federated members.

For each split, the ensemble's tuned parameters are read from the committed quality table (the
``params`` column of ``benchmarks/results/quality_<dataset>.csv``, written by ``quality.py --tune``:
validation carved from the training part only). The federated ensemble swaps ``ease`` for
``federated-ease`` and ``rp3beta`` for ``federated-rp3beta`` (same parameters, ``--num-clients``
in-process Flower clients); the content member uses public title/genre vectors only, so it needs
no federation. Both are fitted and scored with ``quality.py``'s split (``split_raw`` +
``to_weights``, seed 42) and ``run_model``, one table row each.

Run from the project root (as quality.py)::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/federated_ensemble.py --splits temporal,stratified
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl
from _datasets import DEFAULT_DATA_DIR
from quality import SPLIT_TITLES, _show, content_features, run_model, split_raw

from core import PROJECT_ROOT
from models.train import to_weights

FEDERATED = {"ease": "federated-ease", "rp3beta": "federated-rp3beta"}
"""Centralized member -> its federated counterpart (same parameters)."""


def tuned_ensemble(table: Path, dataset: str, split: str) -> dict[str, Any]:
    """The ensemble's parameters from a quality table row (``dataset``, ``split``)."""
    rows = pl.read_csv(table).filter(
        (pl.col("dataset") == dataset)
        & (pl.col("split") == split)
        & (pl.col("model") == "ensemble")
    )
    if rows.height != 1:
        raise SystemExit(f"{table}: {rows.height} ensemble rows for {dataset}/{split}, need 1")
    return json.loads(rows["params"][0])


def federated_members(params: dict[str, Any], num_clients: int) -> dict[str, Any]:
    """``params`` with every federable member replaced by its federated counterpart."""
    members = []
    for member in params["members"]:
        if member["model"] in FEDERATED:
            member = {
                **member,
                "model": FEDERATED[member["model"]],
                "params": {**member["params"], "num_clients": num_clients},
            }
        members.append(member)
    return {**params, "members": members}


def _label(params: dict[str, Any]) -> str:
    names = {"hybrid": "content"}  # the content member is the hybrid's content part alone
    return " + ".join(
        f"{m['weight']:.1f} {names.get(m['model'], m['model'])}" for m in params["members"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--splits", default="temporal", help="comma-separated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--num-clients", type=int, default=3)
    parser.add_argument("--table", type=Path, default=None, help="tuned quality table (CSV)")
    parser.add_argument("--out-dir", type=Path, default=PROJECT_ROOT / "var" / "benchmarks")
    args = parser.parse_args(argv)
    args.content = True
    table = args.table or PROJECT_ROOT / "benchmarks" / "results" / f"quality_{args.dataset}.csv"
    features = content_features(args, args.dataset)
    for split in args.splits.split(","):
        raw_train, test = split_raw(args.dataset, args.data_dir, args.seed, split)
        train = to_weights(raw_train)
        central = tuned_ensemble(table, args.dataset, split)
        rows = []
        for label, params in (
            ("centralized", central),
            ("federated", federated_members(central, args.num_clients)),
        ):
            row = run_model("ensemble", train, test, args.seed, args.k, features, **params)
            rows.append({"ensemble": label, **row, "members": _label(params)})
        del rows[0]["model"], rows[1]["model"]
        ratio = rows[1]["nDCG@10"] / rows[0]["nDCG@10"]
        _show(
            f"{args.dataset}: {SPLIT_TITLES[split]}, seed {args.seed}, top {args.k}; "
            f"nDCG@{args.k} federated {rows[1]['nDCG@10']:.6f} / centralized "
            f"{rows[0]['nDCG@10']:.6f} = {ratio:.4f}",
            rows,
            first="ensemble",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
