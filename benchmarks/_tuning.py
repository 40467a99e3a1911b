"""Hyper-parameter tuning for ``benchmarks/quality.py --tune``, on validation data only.

The training part of a split is split again the same way (stratified 75/25 by item with the same
seed, or per-user temporal 75/25 for the temporal split) into *sub-train* and *validation*; every
grid point is fitted on sub-train and scored by nDCG@k on validation. The test part is never read
here. The winners are refitted on the whole training part. EASE's λ competes with the counts in
``XᵀX``, which grow with the data, so it is scaled by ``training pairs / sub-train pairs`` (≈ 1.33)
for the refit; RP3beta's and ItemKNN's parameters are scale-free (probabilities, neighbour counts)
and are reused as they are.

The hybrid's inner EASE uses EASE's tuned λ. The ensemble (tuned EASE + tuned RP3beta + content
similarity) is fitted once on sub-train; its members' standardised validation scores are
then blended for every weight vector of a simplex grid (step :data:`WEIGHT_STEP`), so the weights
cost one fit. Grids are small on purpose (2 shared CPUs).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from typing import Any

import numpy as np
import polars as pl

from models.base import top_k_frame
from models.collaborative.ensemble import CONTENT_MEMBER, EnsembleRecommender
from models.evaluation.evaluate import evaluate_model
from models.evaluation.metrics import ndcg_at_k
from models.evaluation.splits import stratified_split, temporal_split
from models.registry import create
from models.train import to_weights

log = logging.getLogger("benchmarks.tuning")

GRIDS: dict[str, list[dict[str, Any]]] = {
    "ease": [{"l2": v} for v in (200.0, 500.0, 1000.0, 2000.0)],
    "rp3beta": [
        {"alpha": a, "beta": b, "topk": k}
        for a in (0.4, 0.6, 0.8)
        for b in (0.35, 0.5, 0.65)
        for k in (100, 300)
    ],
    "itemknn": [{"topk": k, "shrink": s} for k in (100, 300, 600) for s in (0.0, 20.0)],
}
"""Grid per tunable model (constructor keyword arguments)."""
ENSEMBLE_MEMBERS = ("ease", "rp3beta")
"""Tuned members of the ensemble; the content member (:data:`CONTENT_MEMBER`) has no grid."""
WEIGHT_STEP = 0.1
SCALED = {"ease": "l2"}
"""Parameters refitted on more data are multiplied by the data-size ratio (see module doc)."""


def validation_split(
    raw_train: pl.DataFrame, split: str, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(binary sub-train, validation)`` carved from the raw training part of ``split``."""
    if split == "stratified":
        sub, val = stratified_split(raw_train, ratio=0.75, seed=seed, filter_by="item")
    elif split == "temporal":
        sub, val = temporal_split(raw_train, ratio=0.75)
    else:
        raise ValueError(f"unknown split {split!r}")
    return to_weights(sub), val


def _score(
    name: str,
    params: dict[str, Any],
    sub: pl.DataFrame,
    val: pl.DataFrame,
    seed: int,
    k: int,
    features: pl.DataFrame | None,
) -> float:
    model = create(name, seed=seed, **params).fit(sub, item_features=features)
    return evaluate_model(model, sub, val, k=k)["ndcg"]


def full_data_params(name: str, params: dict[str, Any], ratio: float) -> dict[str, Any]:
    """Parameters tuned on sub-train adapted to the whole training part (``ratio`` = size ratio)."""
    out = dict(params)
    if name in SCALED and SCALED[name] in out:
        out[SCALED[name]] = float(out[SCALED[name]]) * ratio
    return out


def weight_grid(n: int, step: float = WEIGHT_STEP) -> list[np.ndarray]:
    """All weight vectors of ``n`` members on the simplex with the given step (sum 1)."""
    units = round(1 / step)
    return [
        np.asarray(c, dtype=np.float64) / units
        for c in itertools.product(range(units + 1), repeat=n)
        if sum(c) == units
    ]


def tune_ensemble_weights(
    members: list[dict[str, Any]],
    sub: pl.DataFrame,
    val: pl.DataFrame,
    seed: int,
    k: int,
    features: pl.DataFrame | None,
) -> tuple[np.ndarray, float, list[dict[str, Any]]]:
    """Fit the ensemble once on ``sub`` and pick the member weights with the best validation
    nDCG@k; returns ``(weights, best nDCG, every grid row)``."""
    ensemble = EnsembleRecommender(members, seed=seed).fit(sub, item_features=features)
    data = ensemble.data
    known = set(data.users.to_json())
    users = sorted(u for u in val["user_id"].unique().to_list() if u in known)
    truth = val.select("user_id", "item_id").filter(pl.col("user_id").is_in(users))
    rows = data.user_rows(users)
    parts = ensemble.member_scores(rows)
    seen = data.matrix[rows].toarray() > 0
    best, best_ndcg, grid_rows = None, -1.0, []
    for weights in weight_grid(len(members)):
        scores = ensemble.blend(parts, weights)
        scores[seen] = -np.inf
        recs = top_k_frame(users, scores, data.items.ids, k)
        ndcg = ndcg_at_k(recs, truth, k)
        grid_rows.append({"weights": weights.round(2).tolist(), "val nDCG": ndcg})
        if ndcg > best_ndcg:
            best, best_ndcg = weights, ndcg
    assert best is not None
    return best, best_ndcg, grid_rows


def tune(
    models: list[str],
    raw_train: pl.DataFrame,
    split: str,
    seed: int,
    k: int,
    features: pl.DataFrame | None,
    fixed: tuple[str, ...] | list[str] = (),
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Tuned constructor parameters (for the whole training part) of every tunable model in
    ``models``, plus the tuning log rows (``model, params, val nDCG@k, seconds``). Models in
    ``fixed`` keep their defaults (no grid; e.g. EASE on a large catalogue, where every grid point
    is a dense inversion)."""
    sub, val = validation_split(raw_train, split, seed)
    ratio = to_weights(raw_train).height / sub.height
    log.info("validation split: %d sub-train pairs, %d validation rows", sub.height, val.height)
    wanted = set(models)
    if "ensemble" in wanted:
        wanted |= {"ease", "rp3beta"}
    if "hybrid" in wanted:
        wanted.add("ease")
    best: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for name, grid in GRIDS.items():
        if name not in wanted:
            continue
        if name in fixed:
            best[name] = {}
            rows.append(
                {"model": f"{name} best", "params": "defaults (not tuned)", "val nDCG@10": math.nan}
            )
            continue
        scored = []
        for params in grid:
            started = time.perf_counter()
            ndcg = _score(name, params, sub, val, seed, k, None)
            seconds = time.perf_counter() - started
            scored.append((ndcg, params))
            rows.append(
                {"model": name, "params": json.dumps(params), "val nDCG@10": ndcg, "s": seconds}
            )
            log.info("tuning %s %s: %.4f", name, params, ndcg)
        top_ndcg, top_params = max(scored, key=lambda t: t[0])
        best[name] = top_params
        rows.append(
            {"model": f"{name} best", "params": json.dumps(top_params), "val nDCG@10": top_ndcg}
        )
    if "hybrid" in wanted:
        best["hybrid"] = {"base_params": best["ease"]}
    if "ensemble" in models:
        members = [
            *({"model": m, "params": best[m], "weight": 1.0} for m in ENSEMBLE_MEMBERS),
            {**CONTENT_MEMBER, "weight": 1.0},
        ]
        started = time.perf_counter()
        weights, ndcg, grid_rows = tune_ensemble_weights(members, sub, val, seed, k, features)
        seconds = time.perf_counter() - started
        rows += [
            {"model": "ensemble", "params": json.dumps(r["weights"]), "val nDCG@10": r["val nDCG"]}
            for r in grid_rows
        ]
        rows.append(
            {
                "model": "ensemble best",
                "params": json.dumps(weights.round(2).tolist()),
                "val nDCG@10": ndcg,
                "s": seconds,
            }
        )
        best["ensemble"] = {
            "members": [{**m, "weight": float(w)} for m, w in zip(members, weights, strict=True)]
        }
    return {name: _for_full(name, params, ratio) for name, params in best.items()}, rows


def _for_full(name: str, params: dict[str, Any], ratio: float) -> dict[str, Any]:
    if name == "hybrid" and params.get("base", "ease") == "ease" and "base_params" in params:
        return {**params, "base_params": full_data_params("ease", params["base_params"], ratio)}
    if name == "ensemble":
        return {
            "members": [
                {**m, "params": _for_full(m["model"], m["params"], ratio)}
                for m in params["members"]
            ]
        }
    return full_data_params(name, params, ratio)
