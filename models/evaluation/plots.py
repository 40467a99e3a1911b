"""Evaluation figures shared by the nightly MLflow logging and the notebooks.

Every function returns a matplotlib ``Figure`` built with the object-oriented API (``Figure()``,
not ``pyplot``): no backend is switched, nothing is registered with pyplot, so there is nothing to
close and no display is needed. Callers save it (``fig.savefig(path)`` renders with Agg) or log it
(``mlflow.log_figure(fig, "name.png")``); in a notebook the returned figure displays inline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from models.evaluation.metrics import item_popularity_percentile


class PlotInputError(ValueError):
    """The data handed to a plot function cannot be drawn (empty, missing keys or columns)."""


def plot_metric_per_round(history: list[dict], metrics: Sequence[str] | None = None) -> Figure:
    """One line per metric against the federated round.

    ``history`` is a list of dicts with a ``round`` key and numeric metric values, e.g.
    ``{"round": 3, "ndcg": 0.31, "epsilon": 0.6}``; ``metrics`` picks keys (default: every numeric
    key except ``round``). Metrics are drawn in one panel each, sharing the round axis.
    """
    if not history:
        raise PlotInputError("history is empty")
    if any("round" not in row for row in history):
        raise PlotInputError("every history entry needs a 'round' key")
    rows = sorted(history, key=lambda row: row["round"])
    if metrics is None:
        metrics = sorted(
            {
                key
                for row in rows
                for key, value in row.items()
                if key != "round" and isinstance(value, int | float) and not isinstance(value, bool)
            }
        )
    if not metrics:
        raise PlotInputError("history has no numeric metric besides 'round'")
    fig = Figure(figsize=(6, 2.6 * len(metrics)))
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        points = [(row["round"], row[metric]) for row in rows if row.get(metric) is not None]
        if not points:
            raise PlotInputError(f"no values for metric {metric!r} in history")
        x, y = zip(*points, strict=True)
        ax.plot(x, y, marker="o")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("round")
    axes[0].set_title("Metrics per federated round")
    fig.tight_layout()
    return fig


def plot_privacy_utility(points: list[dict], metric: str = "ndcg") -> Figure:
    """Utility against privacy budget: ``metric`` (default nDCG@10) versus ε on a log x axis.

    ``points`` are dicts ``{"epsilon": float | None, "ndcg": float, "label": str}``. Points whose
    epsilon is ``None`` or infinite are non-private references ("no DP") and are drawn as
    horizontal dashed lines; the rest are joined per label.
    """
    if not points:
        raise PlotInputError("no privacy/utility points")
    for point in points:
        if metric not in point:
            raise PlotInputError(f"point {point} has no {metric!r} value")
    private = [
        p for p in points if p.get("epsilon") is not None and math.isfinite(float(p["epsilon"]))
    ]
    private_ids = {id(p) for p in private}
    reference = [p for p in points if id(p) not in private_ids]
    if any(float(p["epsilon"]) <= 0 for p in private):
        raise PlotInputError("epsilon values must be > 0 for a log axis")
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    labels = sorted({str(p.get("label", "DP")) for p in private})
    for label in labels:
        series = sorted(
            (float(p["epsilon"]), float(p[metric]))
            for p in private
            if str(p.get("label", "DP")) == label
        )
        x, y = zip(*series, strict=True)
        ax.plot(x, y, marker="o", label=label)
    for n, p in enumerate(reference):
        ax.axhline(
            float(p[metric]),
            linestyle="--",
            color=f"C{len(labels) + n}",
            label=str(p.get("label", "no DP")),
        )
    ax.set_xscale("log")
    if not private:
        ax.set_xlim(0.1, 10)
    ax.set_xlabel("privacy budget ε (log scale; smaller = more private)")
    ax.set_ylabel(f"{metric}@10" if "@" not in metric else metric)
    ax.set_title("Privacy / utility trade-off")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_metrics_by_activity(frame: pl.DataFrame) -> Figure:
    """Bar chart of nDCG per user-activity bucket (output of ``metrics_by_activity``).

    Expects ``bucket, users, ndcg``; a ``model`` column, when present, draws grouped bars.
    """
    missing = {"bucket", "users", "ndcg"} - set(frame.columns)
    if missing:
        raise PlotInputError(f"activity frame is missing columns {sorted(missing)}")
    if frame.height == 0:
        raise PlotInputError("activity frame is empty")
    buckets = list(dict.fromkeys(frame["bucket"].to_list()))
    models = list(dict.fromkeys(frame["model"].to_list())) if "model" in frame.columns else [None]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(buckets))
    for n, model in enumerate(models):
        part = frame if model is None else frame.filter(pl.col("model") == model)
        values = dict(zip(part["bucket"].to_list(), part["ndcg"].to_list(), strict=True))
        heights = [np.nan if values.get(b) is None else values[b] for b in buckets]
        ax.bar(x + n * width - 0.4 + width / 2, heights, width, label=model or "nDCG@10")
    users = dict(zip(frame["bucket"].to_list(), frame["users"].to_list(), strict=False))
    ax.set_xticks(x, [f"{b}\n({users.get(b, 0)} users)" for b in buckets])
    ax.set_xlabel("training interactions per user")
    ax.set_ylabel("nDCG@10")
    ax.set_title("Quality by user activity")
    if models != [None]:
        ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_popularity_bias(recs: pl.DataFrame, train: pl.DataFrame, bins: int = 20) -> Figure:
    """Histogram of recommended items' popularity percentile against the catalogue's.

    The catalogue histogram is flat by construction (percentiles of all training items); mass piled
    up near 1 in the recommendations shows a bias towards blockbusters.
    """
    if recs.height == 0:
        raise PlotInputError("no recommendations to plot")
    if "item_id" not in recs.columns:
        raise PlotInputError("recommendations frame needs an item_id column")
    pop = item_popularity_percentile(train)
    if pop.height == 0:
        raise PlotInputError("training frame is empty")
    rec_pct = (
        recs.select(pl.col("item_id").cast(pl.String))
        .join(pop, on="item_id", how="left")["percentile"]
        .fill_null(0.0)
        .to_numpy()
    )
    edges = np.linspace(0, 1, bins + 1)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    ax.hist(pop["percentile"].to_numpy(), bins=edges, density=True, alpha=0.5, label="catalogue")
    ax.hist(rec_pct, bins=edges, density=True, alpha=0.6, label="recommended")
    ax.axvline(float(rec_pct.mean()), color="C1", linestyle="--", label="mean recommended")
    ax.set_xlabel("item popularity percentile in training (1 = most popular)")
    ax.set_ylabel("density")
    ax.set_title("Popularity of recommended items vs catalogue")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_model_comparison(table: pl.DataFrame, metrics: Sequence[str] | None = None) -> Figure:
    """Grouped bars: one group per metric, one bar per model.

    ``table`` has a ``model`` column plus numeric metric columns (e.g. the benchmark table);
    ``metrics`` selects columns (default: every numeric column except timings in seconds).
    """
    if "model" not in table.columns:
        raise PlotInputError("comparison table needs a 'model' column")
    if table.height == 0:
        raise PlotInputError("comparison table is empty")
    if metrics is None:
        metrics = [
            c
            for c, dtype in table.schema.items()
            if c != "model" and dtype.is_numeric() and "second" not in c
        ]
    if not metrics:
        raise PlotInputError("comparison table has no numeric metric columns")
    missing = set(metrics) - set(table.columns)
    if missing:
        raise PlotInputError(f"comparison table is missing columns {sorted(missing)}")
    models = table["model"].cast(pl.String).to_list()
    fig = Figure(figsize=(max(6, 1.3 * len(metrics) * max(1, len(models)) / 2), 4))
    ax = fig.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(metrics))
    for n, model in enumerate(models):
        row = table.row(n, named=True)
        heights = [float(row[m]) if row[m] is not None else np.nan for m in metrics]
        ax.bar(x + n * width - 0.4 + width / 2, heights, width, label=model)
    ax.set_xticks(x, list(metrics))
    ax.set_xlabel("metric")
    ax.set_ylabel("value")
    ax.set_title("Model comparison")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
