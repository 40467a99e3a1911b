"""The nightly training cycle as plain library code (Dagster assets only call these functions).

``run_training_cycle``: watch events -> interactions -> one split -> train the challenger ->
evaluate it, the popularity fallback and the current ``@champion`` on the SAME split
(:mod:`mlops.evaluation`) -> choose the candidate (:mod:`mlops.promotion`) -> one MLflow run in
experiment ``media-gateway-nightly`` with the pyfunc model registered as a new version
(:mod:`mlops.run_logging`, :mod:`mlops.tracking`) -> :class:`CycleResult`. Promotion
(:func:`mlops.promotion.promote`, gated by the caller on ``result.better``) is a separate step.

Decisions:

* A champion that cannot be loaded fails the cycle (it is never silently treated as "no
  champion").
* A rerun is a new MLflow run and a new model version (each run is a record of one training); it
  changes nothing else until ``promote``.
* Never worse than popularity: a challenger below the popularity fallback on the held-out split is
  not shipped; the fallback is registered as its own version (its own MLflow run, tagged
  ``role=fallback``) and becomes the candidate. ``CycleResult.shipped`` and ``.reason`` say which
  model is the candidate and why (the challenger run's tags ``shipped`` and ``serving_reason``
  too); the version tags ``serves`` and ``serving_reason`` carry it to ``/status`` (through
  :class:`mlops.champion.ChampionHandle`).
* Both versions are tagged recorded (:data:`mlops.tracking.RECORDED_TAG`) only once the whole
  cycle logged them, so :func:`mlops.tracking.clean_orphans` can tell what a killed nightly left.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import mlflow
import polars as pl
from pydantic import BaseModel

from core.crash import crash_point
from core.settings import Settings
from mlops.champion import ChampionHandle, NoChampionError, load_champion
from mlops.evaluation import (
    GATE_METRIC,
    InsufficientDataError,
    evaluate_cycle,
    events_to_interactions,
    split_interactions,
)
from mlops.promotion import choose_candidate
from mlops.run_logging import log_cycle_run, register_fallback, save_model, tag_version
from mlops.tracking import REASON_TAG, RECORDED_TAG, SERVES_TAG, configure, log_model
from models.base import Recommender
from models.registry import create, takes_param

log = logging.getLogger(__name__)


@runtime_checkable
class PrivateModel(Protocol):
    """Optional: models trained with differential privacy report their guarantee."""

    def privacy_report(self) -> dict[str, Any]: ...


class CycleResult(BaseModel):
    """What one nightly cycle produced (JSON-serialisable: the Dagster check reads it back)."""

    run_id: str
    model_version: str
    model_name: str
    split: str
    metrics: dict[str, float]
    """Challenger metrics, keys like ``ndcg@10`` plus ``coverage``, ``popularity_bias``..."""
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    """The champion's metrics on the SAME split (``None`` when there was no champion)."""
    deltas: dict[str, float]
    """``candidate - champion`` per metric present and finite in both (empty without champion)."""
    privacy: dict[str, Any] | None
    challenger_dir: Path
    train_seconds: float
    margin: float
    better: bool
    """No champion, or the candidate's ``ndcg@10`` > champion ``ndcg@10`` + ``margin``."""
    fallback_metrics: dict[str, float] | None = None
    """The popularity fallback's metrics on the same split (``None``: the challenger is it)."""
    fallback_version: str | None = None
    """Registered version of the fallback, set only when the challenger lost to it."""
    shipped: str = "challenger"
    """``challenger`` or ``fallback``: the cycle's candidate for promotion."""
    reason: str = ""
    """Why the candidate is the challenger or the fallback (one sentence, with the figures)."""

    @property
    def candidate_version(self) -> str:
        """The registered version ``promote`` makes the champion."""
        return self.fallback_version if self.shipped == "fallback" else self.model_version


def model_params(settings: Settings, model_name: str) -> dict[str, Any]:
    """Constructor overrides from settings: the seed, the rounds of round-based federated models
    and the privacy budget of federated-dp."""
    training = settings.training
    params: dict[str, Any] = {"seed": training.seed}
    if takes_param(model_name, "rounds"):
        params["rounds"] = training.rounds
    if model_name == "federated-dp":
        params["target_epsilon"] = training.target_epsilon
        params["target_delta"] = training.target_delta
    return params


def _current_champion(settings: Settings) -> ChampionHandle | None:
    try:
        return load_champion(settings)
    except NoChampionError:
        log.info("no champion yet: the challenger is compared with nothing")
        return None


def run_training_cycle(
    settings: Settings,
    events: pl.DataFrame,
    item_features: pl.DataFrame | None = None,
    model_name: str | None = None,
    dataset_name: str = "watch_events",
    erased_users: set[str] | frozenset[str] = frozenset(),
) -> CycleResult:
    """Train, evaluate (with the champion, same split), log and register tonight's challenger."""
    name = model_name or settings.training.model
    seed = settings.training.seed
    interactions = events_to_interactions(events, erased_users)
    if interactions.height == 0:
        raise InsufficientDataError("no interactions left after aggregation and erasure")
    train, test, split = split_interactions(interactions, seed)

    champion = _current_champion(settings)
    challenger = create(name, **model_params(settings, name))
    started = time.perf_counter()
    challenger.fit(train, item_features)
    train_seconds = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    challenger_dir = save_model(
        challenger,
        Path(settings.paths.models) / "challengers" / f"{name}-{stamp}-{uuid.uuid4().hex[:8]}",
    )
    hyper = Recommender.read_manifest(challenger_dir).get("params", {})

    evaluation = evaluate_cycle(challenger, name, champion, train, test, split, seed)
    margin = settings.training.promotion_margin
    candidate = choose_candidate(evaluation, champion, margin, erased_users)
    privacy = challenger.privacy_report() if isinstance(challenger, PrivateModel) else None
    history = list(getattr(challenger, "round_history", None) or [])

    configure(settings)
    with mlflow.start_run(run_name=f"{name}-{stamp}") as run:
        log_cycle_run(
            model_name=name,
            hyper=hyper,
            seed=seed,
            margin=margin,
            dataset_name=dataset_name,
            source=Path(settings.paths.lake) / dataset_name,
            events=events.height,
            interactions=interactions,
            item_features=item_features is not None,
            evaluation=evaluation,
            candidate=candidate,
            champion=champion,
            train_seconds=train_seconds,
            history=history,
            privacy=privacy,
        )
        version = log_model(settings, name, challenger_dir)
        crash_point("training")
        run_id = run.info.run_id

    tag_version(
        settings,
        version,
        {
            "model": name,
            "split": split,
            "better_than_champion": str(candidate.better_than_champion).lower(),
            SERVES_TAG: "challenger",
            REASON_TAG: candidate.reason,
        },
    )
    fallback_version = None
    fallback, fallback_metrics = evaluation.fallback, evaluation.fallback_metrics
    if candidate.shipped == "fallback" and fallback is not None and fallback_metrics is not None:
        fallback_version = register_fallback(
            settings, fallback, fallback_metrics, split, stamp, run_id, candidate
        )
    for registered_version in filter(None, (version, fallback_version)):
        tag_version(settings, registered_version, {RECORDED_TAG: "true"})
    result = CycleResult(
        run_id=run_id,
        model_version=version,
        model_name=name,
        split=split,
        metrics=evaluation.metrics,
        champion_version=champion.version if champion else None,
        champion_metrics=evaluation.champion_metrics,
        deltas=candidate.deltas,
        privacy=json.loads(json.dumps(privacy, default=str)) if privacy is not None else None,
        challenger_dir=challenger_dir,
        train_seconds=train_seconds,
        margin=margin,
        better=candidate.better,
        fallback_metrics=evaluation.fallback_metrics,
        fallback_version=fallback_version,
        shipped=candidate.shipped,
        reason=candidate.reason,
    )
    log.info(
        "nightly cycle done",
        extra={
            "run_id": run_id,
            "version": version,
            "better": candidate.better,
            GATE_METRIC: evaluation.metrics.get(GATE_METRIC),
        },
    )
    return result
