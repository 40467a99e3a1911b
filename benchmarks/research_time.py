"""Issue 8 research: does "popular when the user was active" add to EASE?

On a random (stratified) split a user's held-out titles were rated at the same times as their
training titles, so titles that *other* users rated in the same weeks could be a strong hint; on the
temporal split the same signal is "what was popular around the user's last activity". The
time-aware popularity of title ``i`` for user ``u`` is ``Σ_b share_u(b) · count_i(b)``: the
user's share of training ratings in time bin ``b`` times the title's training ratings in that bin.

For each bin width (1, 7, 30 days) and blend weight ``w`` it scores ``z(EASE) + w · z(f(time
popularity))`` (per-user z-scores over unseen titles, ``models.collaborative.ensemble.standardise`` as the
ensemble blends; ``f`` identity or ``log1p``) on a validation split carved from
the training part only (``_tuning.validation_split``), picks the best setting there, and scores that
one on the test split beside plain EASE and plain popularity. EASE's λ is the shipped default,
scaled to the data size as ``--tune`` does. Prints one table.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_time.py --dataset ml-100k --split stratified
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))  # benchmarks/serving.py must not shadow the serving package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl
from _datasets import DEFAULT_DATA_DIR
from _tuning import full_data_params, validation_split
from quality import split_raw
from rich.console import Console
from rich.table import Table

from models.base import top_k_frame
from models.collaborative.ensemble import standardise
from models.evaluation.metrics import ndcg_at_k
from models.registry import create
from models.train import to_weights

console = Console(width=120)
BIN_DAYS = (1, 7, 30)
WEIGHTS = (0.1, 0.2, 0.35, 0.5)
EASE_L2 = 500.0


class Part:
    """One train/truth pair as dense matrices over fixed user and item orders."""

    def __init__(self, raw_train: pl.DataFrame, truth: pl.DataFrame, l2: float) -> None:
        binary = to_weights(raw_train)
        model = create("ease", l2=l2).fit(binary)
        self.users = sorted(set(truth["user_id"].to_list()) & set(binary["user_id"].to_list()))
        self.items = [str(i) for i in model.data.items.ids]
        self.truth = truth.filter(pl.col("user_id").is_in(self.users))
        self.ease = model.score_users(self.users, self.items)
        user_pos = {u: n for n, u in enumerate(self.users)}
        item_pos = {i: n for n, i in enumerate(self.items)}
        rows = raw_train.filter(pl.col("user_id").is_in(self.users))
        self.u = np.asarray([user_pos[u] for u in rows["user_id"]], dtype=np.int64)
        self.i = np.asarray([item_pos[i] for i in rows["item_id"]], dtype=np.int64)
        self.t = rows["timestamp"].to_numpy()
        self.seen = np.zeros(self.ease.shape, dtype=bool)
        self.seen[self.u, self.i] = True
        all_items = np.asarray([item_pos[i] for i in raw_train["item_id"]], dtype=np.int64)
        self.popularity = np.bincount(all_items, minlength=len(self.items)).astype(np.float64)
        self.all_items, self.all_t = all_items, raw_train["timestamp"].to_numpy()

    def time_popularity(self, days: int) -> np.ndarray:
        """(users x items) ``Σ_b share_u(b) · count_i(b)`` over bins of ``days`` days."""
        start = min(self.t.min(), self.all_t.min())
        width = days * 86_400
        user_bins = (self.t - start) // width
        item_bins = (self.all_t - start) // width
        n_bins = int(max(user_bins.max(), item_bins.max())) + 1
        counts = np.zeros((n_bins, len(self.items)))
        np.add.at(counts, (item_bins, self.all_items), 1.0)
        share = np.zeros((len(self.users), n_bins))
        np.add.at(share, (self.u, user_bins), 1.0)
        share /= share.sum(axis=1, keepdims=True)
        return share @ counts

    def z(self, scores: np.ndarray) -> np.ndarray:
        """Per-user z-scores over unseen titles, as the shipped ensemble blends its members."""
        return standardise(scores, self.seen)

    def ndcg(self, scores: np.ndarray) -> float:
        masked = np.where(self.seen, -np.inf, scores)
        recs = top_k_frame(self.users, masked, np.asarray(self.items), 10)
        return ndcg_at_k(recs, self.truth, k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="stratified", choices=("stratified", "temporal"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    raw_train, test = split_raw(args.dataset, args.data_dir, args.seed, args.split)
    sub, val = validation_split(raw_train, args.split, args.seed)
    raw_sub = raw_train.join(sub.select("user_id", "item_id"), on=["user_id", "item_id"])
    val_l2 = full_data_params("ease", {"l2": EASE_L2}, sub.height / raw_train.height)["l2"]
    parts = {"validation": Part(raw_sub, val, val_l2), "test": Part(raw_train, test, EASE_L2)}

    results: dict[tuple[int, float, str], float] = {}
    v = parts["validation"]
    for days in BIN_DAYS:
        tp = v.time_popularity(days)
        for w, fn in itertools.product(WEIGHTS, ("identity", "log1p")):
            signal = np.log1p(tp) if fn == "log1p" else tp
            results[(days, w, fn)] = v.ndcg(v.z(v.ease) + w * v.z(signal))
    days, w, fn = max(results, key=results.get)

    table = Table(title=f"{args.dataset}, {args.split}: nDCG@10 (validation carved from training)")
    for col in ("model", "validation", "test"):
        table.add_column(col, justify="right" if col != "model" else "left")
    rows: dict[str, list[float]] = {}
    for part in parts.values():
        tp = part.time_popularity(days)
        signal = np.log1p(tp) if fn == "log1p" else tp
        scored = {
            "popularity": part.ndcg(np.tile(part.popularity, (len(part.users), 1))),
            f"time popularity ({days} d bins)": part.ndcg(tp),
            "EASE": part.ndcg(part.ease),
            f"EASE + {w} · z({fn} time popularity), {days} d (best on validation)": part.ndcg(
                part.z(part.ease) + w * part.z(signal)
            ),
        }
        for label, value in scored.items():
            rows.setdefault(label, []).append(value)
    for label, (val_score, test_score) in rows.items():
        table.add_row(label, f"{val_score:.4f}", f"{test_score:.4f}")
    console.print(table)
    grid = ", ".join(f"{d}d/{x}/{f}: {s:.4f}" for (d, x, f), s in sorted(results.items()))
    console.print(f"validation grid (bin days / weight / transform): {grid}")


if __name__ == "__main__":
    main()
