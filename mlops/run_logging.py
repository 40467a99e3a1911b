"""What one nightly cycle writes to MLflow (experiment ``media-gateway-nightly``).

The challenger run (:func:`log_cycle_run`, inside the run :mod:`mlops.nightly` opens): parameters
(model, hyper-parameters, split, seed, k, margin, data sizes), the train/test datasets as run
inputs, the challenger's metrics (``ndcg_at_10`` ...), ``train.seconds``, ``champion.*`` and
``delta.*`` (challenger - champion) with a champion, ``fallback.*``, per-round metrics
(``round.*``, federated models), the privacy report (``privacy.*`` metrics, ``privacy.unit``
parameter and tag, ``privacy_report.json``), ``champion_comparison.json``, the plots under
``plots/`` and the tags ``better_than_champion``, ``shipped``, ``serving_reason``. The model
itself is registered by :func:`mlops.tracking.log_model`; :func:`tag_version` then sets the
version's tags. A challenger that lost to the popularity fallback gets a second run and version
for the fallback (:func:`register_fallback`, tagged ``role=fallback``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import polars as pl

from core.atomic import staged_dir
from core.settings import Settings
from mlops.champion import ChampionHandle
from mlops.evaluation import FALLBACK_MODEL, GATE_METRIC, SPLIT_RATIO, CycleEvaluation, K
from mlops.promotion import Candidate
from mlops.tracking import (
    REASON_TAG,
    SERVES_TAG,
    finite_metrics,
    flatten_params,
    log_dataset,
    log_model,
    metric_key,
)
from mlops.tracking import client as tracking_client
from models.base import Recommender
from models.evaluation import plots
from models.evaluation.metrics import METRICS

log = logging.getLogger(__name__)


def save_model(model: Recommender, target: Path) -> Path:
    """Save ``model`` into folder ``target`` atomically (a staging folder swapped in)."""
    with staged_dir(target) as staging:
        model.save(staging)
    return target


def log_round_history(history: list[dict[str, Any]]) -> None:
    """Per-round figures of a federated model as ``round.*`` metrics (step = round)."""
    for position, entry in enumerate(history, start=1):
        step = int(entry.get("round", position))
        for name, value in finite_metrics(entry).items():
            if name != "round":
                mlflow.log_metric(f"round.{metric_key(name)}", value, step=step)


def log_privacy(report: dict[str, Any]) -> None:
    """The report as an artifact, its numbers as ``privacy.*`` metrics (one level of nesting:
    per-client figures such as ``{"epsilon_by_client": {"0": 0.9}}`` become
    ``privacy.epsilon_by_client.0``), and the privacy unit as a parameter and a tag."""
    numbers = dict(finite_metrics(report))
    for name, value in report.items():
        if isinstance(value, dict):
            numbers.update(finite_metrics(value, prefix=f"{name}."))
    mlflow.log_metrics({f"privacy.{metric_key(k)}": v for k, v in numbers.items()})
    unit = str(report.get("privacy_unit", "unknown"))
    mlflow.log_param("privacy.unit", unit)
    mlflow.set_tag("privacy_unit", unit)
    mlflow.log_dict(report, "privacy_report.json")


def _privacy_point(label: str, privacy: dict[str, Any] | None, ndcg: float) -> dict[str, Any]:
    """A privacy/utility point; a model without a DP guarantee has ``epsilon=None`` (reference)."""
    epsilon = None if privacy is None else privacy.get("epsilon")
    return {"label": label, "epsilon": epsilon, "ndcg": ndcg}


def log_plots(
    evaluation: CycleEvaluation,
    history: list[dict[str, Any]],
    privacy: dict[str, Any] | None,
    champion: ChampionHandle | None,
) -> None:
    """Figures of :mod:`models.evaluation.plots` as run artifacts under ``plots/``.

    Always: quality by activity bucket (challenger and champion side by side), popularity bias
    of the challenger's test recommendations, privacy/utility (this run's point plus the
    champion's; a non-DP model is a dashed reference line). With a champion: model comparison.
    With a round history (federated models): metrics per round.
    """
    metrics = evaluation.metrics
    champion_metrics = evaluation.champion_metrics
    points = [_privacy_point("challenger", privacy, metrics[GATE_METRIC])]
    if champion is not None and champion_metrics is not None:
        label = f"champion v{champion.version}"
        points.append(_privacy_point(label, champion.privacy, champion_metrics[GATE_METRIC]))
        names = [name for name in metrics if name in champion_metrics]
        table = pl.DataFrame(
            [
                {"model": "challenger", **{n: metrics[n] for n in names}},
                {"model": label, **{n: champion_metrics[n] for n in names}},
            ]
        )
        shown = [f"{m}@{K}" for m in METRICS] + ["coverage", "popularity_bias"]
        figure = plots.plot_model_comparison(table, [n for n in shown if n in names])
        mlflow.log_figure(figure, "plots/model_comparison.png")
    mlflow.log_figure(
        plots.plot_metrics_by_activity(evaluation.by_activity), "plots/metrics_by_activity.png"
    )
    mlflow.log_figure(
        plots.plot_popularity_bias(evaluation.test_recommendations, evaluation.train),
        "plots/popularity_bias.png",
    )
    mlflow.log_figure(plots.plot_privacy_utility(points), "plots/privacy_utility.png")
    if history:
        mlflow.log_figure(plots.plot_metric_per_round(history), "plots/metric_per_round.png")


def log_cycle_run(
    *,
    model_name: str,
    hyper: dict[str, Any],
    seed: int,
    margin: float,
    dataset_name: str,
    source: Path,
    events: int,
    interactions: pl.DataFrame,
    item_features: bool,
    evaluation: CycleEvaluation,
    candidate: Candidate,
    champion: ChampionHandle | None,
    train_seconds: float,
    history: list[dict[str, Any]],
    privacy: dict[str, Any] | None,
) -> None:
    """Everything but the model into the ACTIVE challenger run (see the module docstring).

    ``events``: number of watch events the interactions were built from; ``item_features``:
    whether the challenger got content vectors; ``source``: the lake folder of the dataset.
    """
    train, test = evaluation.train, evaluation.test
    mlflow.log_params(
        flatten_params(
            {
                "model": model_name,
                "hyper": hyper,
                "split": evaluation.split,
                "split_ratio": SPLIT_RATIO,
                "seed": seed,
                "k": K,
                "promotion_margin": margin,
                "dataset": dataset_name,
                "data": {
                    "events": events,
                    "interactions": interactions.height,
                    "users": interactions["user_id"].n_unique(),
                    "items": interactions["item_id"].n_unique(),
                    "train_rows": train.height,
                    "test_rows": test.height,
                },
                "item_features": item_features,
                "champion_version": champion.version if champion else "none",
            }
        )
    )
    log_dataset(train, f"{dataset_name}-train", "training", source)
    log_dataset(test, f"{dataset_name}-test", "evaluation", source)
    metrics = evaluation.metrics
    mlflow.log_metrics({metric_key(k): v for k, v in finite_metrics(metrics).items()})
    mlflow.log_metric("train.seconds", train_seconds)
    champion_metrics = evaluation.champion_metrics
    challenger_delta = evaluation.challenger_deltas
    if champion_metrics:
        mlflow.log_metrics(
            {metric_key(k): v for k, v in finite_metrics(champion_metrics, "champion.").items()}
        )
        mlflow.log_metrics({metric_key(f"delta.{k}"): v for k, v in challenger_delta.items()})
    fallback_metrics = evaluation.fallback_metrics
    if fallback_metrics:
        mlflow.log_metrics(
            {metric_key(k): v for k, v in finite_metrics(fallback_metrics, "fallback.").items()}
        )
    log_round_history(history)
    if privacy is not None:
        log_privacy(privacy)
    mlflow.log_dict(
        {
            "challenger": metrics,
            "champion": champion_metrics,
            "champion_version": champion.version if champion else None,
            "fallback": fallback_metrics,
            "shipped": candidate.shipped,
            "reason": candidate.reason,
            "deltas": challenger_delta,
            "gate_metric": GATE_METRIC,
            "margin": margin,
            "better": candidate.better,
        },
        "champion_comparison.json",
    )
    log_plots(evaluation, history, privacy, champion)
    mlflow.set_tags(
        {
            "better_than_champion": str(candidate.better_than_champion).lower(),
            "shipped": candidate.shipped,
            REASON_TAG: candidate.reason,
        }
    )


def tag_version(settings: Settings, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on model version ``version`` of ``training.registered_model``."""
    client = tracking_client(settings)
    registered = settings.training.registered_model
    for key, value in tags.items():
        client.set_model_version_tag(registered, version, key, value)


def register_fallback(
    settings: Settings,
    fallback: Recommender,
    metrics: dict[str, float],
    split: str,
    stamp: str,
    challenger_run: str,
    candidate: Candidate,
) -> str:
    """Log the popularity fallback as its own run and registered version; returns the version."""
    fallback_dir = save_model(
        fallback,
        Path(settings.paths.models) / "challengers" / f"popularity-fallback-{stamp}",
    )
    with mlflow.start_run(run_name=f"popularity-fallback-{stamp}"):
        mlflow.log_params({"model": FALLBACK_MODEL, "split": split, "k": K})
        mlflow.log_metrics({metric_key(k): v for k, v in finite_metrics(metrics).items()})
        mlflow.set_tags(
            {"role": "fallback", "fallback_for_run": challenger_run, REASON_TAG: candidate.reason}
        )
        version = log_model(settings, FALLBACK_MODEL, fallback_dir)
    tag_version(
        settings,
        version,
        {
            "model": FALLBACK_MODEL,
            "split": split,
            "better_than_champion": str(candidate.better).lower(),
            SERVES_TAG: "fallback",
            REASON_TAG: candidate.reason,
        },
    )
    log.warning("private challenger lost to popularity: fallback registered", extra={"v": version})
    return version
