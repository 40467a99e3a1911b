"""The nightly training cycle as plain library code (Dagster assets only call these functions).

``run_training_cycle``: watch events -> interactions -> one split -> train the challenger ->
evaluate it and the current ``@champion`` on the SAME split -> one MLflow run in experiment
``media-gateway-nightly`` (params, metrics, per-round metrics, datasets, plots, comparison, the
pyfunc model registered as a new version) -> :class:`CycleResult`.

``promote`` (gated by the caller on ``result.better``; refuses otherwise) publishes the model's
collaborative vectors to LanceDB, records the table versions in the model version's tags and then
moves the ``champion`` alias (the commit point serving follows). ``rollback`` moves the alias back
to an earlier version and restores that version's vector tables.

Decisions:

* Interactions: events of one (user, title) are aggregated by SUMMING their weights (repeated
  engagement -- rewatches, several episodes of a series -- means more confidence, as in
  implicit-feedback ALS where confidence grows with the event count); pairs whose total weight is
  not positive (negative feedback outweighing views) are dropped; ``timestamp`` is the latest event.
* Split: ``stratified_split(ratio=0.75, seed=settings.training.seed, filter_by="user")`` -- by user,
  so every test user has training history and is evaluated. Tiny data (fewer than
  :data:`MIN_STRATIFIED_INTERACTIONS` interactions, or a stratified split with an empty test set,
  which happens when every user has <= 2 interactions) falls back to leave-last-out: each user with
  at least two interactions holds out their latest one. No such user -> :class:`InsufficientDataError`.
* The champion is evaluated through :class:`mlops.champion.FoldInView` (its score_history on
  tonight's training histories, ranking tonight's training catalogue), so a champion trained on
  other users or items is still scored on exactly the challenger's test set. A champion that
  cannot be loaded fails the cycle (it is never silently treated as "no champion").
* A rerun is a new MLflow run and a new model version (each run is a record of one training); it
  changes nothing else until ``promote``. ``promote`` is idempotent for an already promoted result.
* Never worse than popularity: every cycle also fits the popularity fallback on the same training
  split and scores it on the same held-out split. A challenger whose ``ndcg@10`` is below the
  fallback's is not shipped (a tie keeps the challenger): the fallback is registered as its own
  version (its own MLflow run, tagged ``role=fallback``) and becomes the candidate;
  ``CycleResult.shipped`` and ``.reason`` say which model is the candidate and why (the
  challenger run's tags ``shipped`` and ``serving_reason`` too), the version tags ``serves`` and
  ``serving_reason`` carry it to ``/status`` (through :class:`mlops.champion.ChampionHandle`).
  A challenger that IS the popularity model skips the comparison.
* A version is *recorded* (tag :data:`RECORDED_TAG`) once the whole cycle logged it. A nightly
  killed between registering and recording leaves an unrecorded version (and a RUNNING MLflow run):
  :func:`clean_orphans`, called at the start of the next nightly, deletes such versions (never one
  holding an alias) and marks such runs FAILED.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import mlflow
import polars as pl
from pydantic import BaseModel

from core.crash import crash_point
from core.settings import Settings
from mlops.champion import (
    CHAMPION_ALIAS,
    ChampionHandle,
    FoldInView,
    NoChampionError,
    champion_version,
    load_champion,
    load_version,
)
from mlops.purge import mentions_users
from mlops.pyfunc import MODEL_DIR_ARTIFACT, SIGNATURE, RecommenderPyfunc, pip_requirements
from mlops.tracking import client as tracking_client
from mlops.tracking import (
    configure,
    finite_metrics,
    flatten_params,
    log_dataset,
    metric_key,
)
from mlops.vectors import (
    ITEMS_VERSION_TAG,
    USERS_VERSION_TAG,
    parse_version_tag,
    publish_vectors,
    restore_versions,
    version_tags,
)
from models.base import Recommender
from models.evaluation import plots
from models.evaluation.evaluate import evaluate_model, metrics_by_activity, recommend_for_test
from models.evaluation.metrics import METRICS
from models.evaluation.splits import stratified_split
from models.registry import create

log = logging.getLogger(__name__)

K = 10
"""Cut-off of every ranking metric of the cycle."""
SPLIT_RATIO = 0.75
MIN_STRATIFIED_INTERACTIONS = 100
"""Below this many interactions the split falls back to leave-last-out (see module docstring)."""
GATE_METRIC = f"ndcg@{K}"
COUNT_METRICS = ("users_evaluated", "users_skipped")
"""``evaluate_model`` outputs that are counts, not quality: logged, but no delta."""

EVENT_COLUMNS = ("user_id", "title_id", "weight", "event_time")


class NightlyInputError(ValueError):
    """The watch events cannot be turned into training interactions."""


class InsufficientDataError(ValueError):
    """Too little data to hold out a test set."""


class PromotionRefusedError(RuntimeError):
    """``promote`` was asked to promote a challenger that did not beat the champion."""


@runtime_checkable
class PrivateModel(Protocol):
    """Optional: models trained with differential privacy report their guarantee."""

    def privacy_report(self) -> dict[str, Any]: ...


RECORDED_TAG = "nightly.recorded"
"""Model-version tag set once a cycle finished logging the version (absent: a killed run)."""
SERVES_TAG = "serves"
"""Model-version tag: ``challenger`` or ``fallback`` -- which model this version is."""
REASON_TAG = "serving_reason"
"""Model-version tag: why this version is the cycle's candidate."""
FALLBACK_MODEL = "popularity"


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
    """``challenger - champion`` per metric present and finite in both (empty without champion)."""
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


# ---- data -----------------------------------------------------------------------------------
def events_to_interactions(
    events: pl.DataFrame, erased_users: set[str] | frozenset[str] = frozenset()
) -> pl.DataFrame:
    """WATCH_EVENTS rows -> ``user_id, item_id, weight, timestamp`` (one row per user-title).

    Weights of a user-title are summed; non-positive totals are dropped; erased users are removed.
    Raises :class:`NightlyInputError` on missing columns or null ids/weights/times.
    """
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise NightlyInputError(f"watch events lack columns {missing}; have {events.columns}")
    for column in EVENT_COLUMNS:
        nulls = events[column].null_count()
        if nulls:
            raise NightlyInputError(f"watch events: {nulls} rows have a null {column!r}")
    kept = events.filter(~pl.col("user_id").is_in(sorted(erased_users))) if erased_users else events
    interactions = (
        kept.group_by("user_id", "title_id")
        .agg(
            pl.col("weight").cast(pl.Float64).sum().alias("weight"),
            pl.col("event_time").max().alias("timestamp"),
        )
        .filter(pl.col("weight") > 0)
        .rename({"title_id": "item_id"})
        .select(
            pl.col("user_id").cast(pl.String),
            pl.col("item_id").cast(pl.String),
            "weight",
            "timestamp",
        )
        .sort("user_id", "item_id")
    )
    log.info(
        "interactions built",
        extra={
            "events": events.height,
            "erased_users": len(erased_users),
            "interactions": interactions.height,
        },
    )
    return interactions


def leave_last_out(interactions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each user with >= 2 interactions holds out the latest (ties: largest item_id) in test."""
    ranked = interactions.with_columns(
        pl.struct("timestamp", "item_id")
        .rank(method="ordinal", descending=True)
        .over("user_id")
        .alias("_recency"),
        pl.len().over("user_id").alias("_n"),
    )
    held = (pl.col("_recency") == 1) & (pl.col("_n") >= 2)
    train = ranked.filter(~held).drop("_recency", "_n")
    test = ranked.filter(held).drop("_recency", "_n")
    return train, test


def split_interactions(
    interactions: pl.DataFrame, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """``(train, test, split description)`` following the rule in the module docstring."""
    if interactions.height >= MIN_STRATIFIED_INTERACTIONS:
        train, test = stratified_split(interactions, ratio=SPLIT_RATIO, seed=seed, filter_by="user")
        if test.height:
            return train, test, f"stratified-user-{SPLIT_RATIO}"
    train, test = leave_last_out(interactions)
    if test.height == 0:
        raise InsufficientDataError(
            f"{interactions.height} interactions and no user has two or more: nothing to hold out"
        )
    log.warning("tiny data: leave-last-out split", extra={"interactions": interactions.height})
    return train, test, "leave-last-out"


# ---- training and evaluation -------------------------------------------------------------------
def model_params(settings: Settings, model_name: str) -> dict[str, Any]:
    """Constructor overrides from settings: the seed, and the privacy budget/rounds if federated."""
    training = settings.training
    params: dict[str, Any] = {"seed": training.seed}
    if model_name.startswith("federated"):
        params["rounds"] = training.rounds
    if model_name == "federated-dp":
        params["target_epsilon"] = training.target_epsilon
        params["target_delta"] = training.target_delta
    return params


def with_k(metrics: dict[str, float], k: int = K) -> dict[str, float]:
    """``evaluate_model`` keys -> cycle keys: ranking metrics gain ``@k`` (``ndcg`` -> ``ndcg@10``)."""
    return {(f"{name}@{k}" if name in METRICS else name): float(v) for name, v in metrics.items()}


def deltas(challenger: dict[str, float], champion: dict[str, float]) -> dict[str, float]:
    """``challenger - champion`` for every quality metric finite in both (user counts excluded:
    both models are evaluated on the same split, so their difference says nothing)."""
    out = {}
    for name, value in challenger.items():
        if name in COUNT_METRICS:
            continue
        other = champion.get(name)
        if other is not None and math.isfinite(value) and math.isfinite(other):
            out[name] = value - other
    return out


def is_better(
    challenger: dict[str, float], champion: dict[str, float] | None, margin: float
) -> bool:
    """The promotion rule; a non-finite challenger ``ndcg@10`` is never better."""
    ours = challenger.get(GATE_METRIC, math.nan)
    if not math.isfinite(ours):
        return False
    if champion is None:
        return True
    theirs = champion.get(GATE_METRIC, math.nan)
    return not math.isfinite(theirs) or ours > theirs + margin


def beats_fallback(
    challenger: dict[str, float], fallback: dict[str, float] | None
) -> tuple[bool, str]:
    """``(challenger wins, reason)``: the challenger ships unless it is strictly below the
    fallback (a tie keeps the configured model)."""
    ours = challenger.get(GATE_METRIC, math.nan)
    if fallback is None:
        return True, "the challenger is the popularity model"
    theirs = fallback.get(GATE_METRIC, math.nan)
    if math.isfinite(ours) and (not math.isfinite(theirs) or ours >= theirs):
        return True, (
            f"challenger {GATE_METRIC} {ours:.4f} >= popularity fallback {theirs:.4f} "
            "on the held-out split"
        )
    return False, (
        f"challenger {GATE_METRIC} {ours:.4f} < popularity fallback {theirs:.4f} on the "
        "held-out split: the fallback is shipped instead"
    )


def _save_atomic(model: Recommender, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.staging")
    try:
        model.save(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _current_champion(settings: Settings) -> ChampionHandle | None:
    try:
        return load_champion(settings)
    except NoChampionError:
        log.info("no champion yet: the challenger is compared with nothing")
        return None


# ---- MLflow logging ----------------------------------------------------------------------------
def log_round_history(history: list[dict[str, Any]]) -> None:
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


def _log_plots(
    challenger: Recommender,
    train: pl.DataFrame,
    test: pl.DataFrame,
    metrics: dict[str, float],
    history: list[dict[str, Any]],
    privacy: dict[str, Any] | None,
    champion: ChampionHandle | None,
    champion_view: Recommender | None,
    champion_metrics: dict[str, float] | None,
) -> None:
    """Figures of :mod:`models.evaluation.plots` as run artifacts under ``plots/``.

    Always: quality by activity bucket (challenger and champion side by side), popularity bias
    of the challenger's test recommendations, privacy/utility (this run's point plus the
    champion's; a non-DP model is a dashed reference line). With a champion: model comparison.
    With a round history (federated models): metrics per round.
    """
    frames = [
        metrics_by_activity(challenger, train, test, k=K).with_columns(model=pl.lit("challenger"))
    ]
    points = [_privacy_point("challenger", privacy, metrics[GATE_METRIC])]
    if champion is not None and champion_view is not None and champion_metrics is not None:
        label = f"champion v{champion.version}"
        frames.append(
            metrics_by_activity(champion_view, train, test, k=K).with_columns(model=pl.lit(label))
        )
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
        plots.plot_metrics_by_activity(pl.concat(frames)), "plots/metrics_by_activity.png"
    )
    recs = recommend_for_test(challenger, train, test, K)
    mlflow.log_figure(plots.plot_popularity_bias(recs, train), "plots/popularity_bias.png")
    mlflow.log_figure(plots.plot_privacy_utility(points), "plots/privacy_utility.png")
    if history:
        mlflow.log_figure(plots.plot_metric_per_round(history), "plots/metric_per_round.png")


def _log_model(settings: Settings, model_name: str, model_dir: Path) -> str:
    started = time.perf_counter()
    with warnings.catch_warnings():
        # No input example on purpose: it would store a real user id in the artifact, and the
        # explicit SIGNATURE already describes the input.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RecommenderPyfunc(),
            artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
            registered_model_name=settings.training.registered_model,
            pip_requirements=pip_requirements(model_name),
            signature=SIGNATURE,
        )
    log.info("model logged", extra={"seconds": round(time.perf_counter() - started, 2)})
    if info.registered_model_version is None:
        raise RuntimeError("MLflow did not register a model version")
    return str(info.registered_model_version)


def register_champion(
    settings: Settings,
    recommender: Recommender,
    model_dir: Path,
    metrics: dict[str, float] | None = None,
) -> str:
    """Save ``recommender``, log it as a new registered version and point ``@champion`` at it.

    No evaluation and no gate: for seeding a store (fixtures, benchmarks, a first deployment).
    The nightly cycle promotes only through :func:`promote`. Returns the new version.
    """
    recommender.save(model_dir)
    configure(settings)
    with mlflow.start_run():
        for key, value in (metrics or {}).items():
            mlflow.log_metric(key, value)
        version = _log_model(settings, recommender.name, model_dir)
    client = tracking_client(settings)
    client.set_registered_model_alias(settings.training.registered_model, CHAMPION_ALIAS, version)
    client.set_model_version_tag(settings.training.registered_model, version, RECORDED_TAG, "true")
    return version


def _register_fallback(
    settings: Settings,
    fallback: Recommender,
    metrics: dict[str, float],
    split: str,
    stamp: str,
    challenger_run: str,
    reason: str,
    better: bool,
) -> str:
    """Log the popularity fallback as its own run and registered version; returns the version."""
    fallback_dir = _save_atomic(
        fallback,
        Path(settings.paths.models) / "challengers" / f"popularity-fallback-{stamp}",
    )
    with mlflow.start_run(run_name=f"popularity-fallback-{stamp}"):
        mlflow.log_params({"model": FALLBACK_MODEL, "split": split, "k": K})
        mlflow.log_metrics({metric_key(k): v for k, v in finite_metrics(metrics).items()})
        mlflow.set_tags(
            {"role": "fallback", "fallback_for_run": challenger_run, REASON_TAG: reason}
        )
        version = _log_model(settings, FALLBACK_MODEL, fallback_dir)
    client = tracking_client(settings)
    registered = settings.training.registered_model
    for key, value in {
        "model": FALLBACK_MODEL,
        "split": split,
        "better_than_champion": str(better).lower(),
        SERVES_TAG: "fallback",
        REASON_TAG: reason,
    }.items():
        client.set_model_version_tag(registered, version, key, value)
    log.warning("private challenger lost to popularity: fallback registered", extra={"v": version})
    return version


# ---- the cycle -----------------------------------------------------------------------------
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
    challenger_dir = _save_atomic(
        challenger,
        Path(settings.paths.models) / "challengers" / f"{name}-{stamp}-{uuid.uuid4().hex[:8]}",
    )
    hyper = Recommender.read_manifest(challenger_dir).get("params", {})

    metrics = with_k(evaluate_model(challenger, train, test, k=K))
    fallback: Recommender | None = None
    fallback_metrics: dict[str, float] | None = None
    if name != FALLBACK_MODEL:
        fallback = create(FALLBACK_MODEL, seed=seed)
        fallback.fit(train)
        fallback_metrics = with_k(evaluate_model(fallback, train, test, k=K))
    challenger_wins, reason = beats_fallback(metrics, fallback_metrics)
    candidate = metrics if challenger_wins or fallback_metrics is None else fallback_metrics
    champion_metrics = champion_view = None
    if champion is not None:
        champion_view = FoldInView(champion.recommender, train)
        champion_metrics = with_k(evaluate_model(champion_view, train, test, k=K))
    challenger_delta = deltas(metrics, champion_metrics) if champion_metrics else {}
    delta = deltas(candidate, champion_metrics) if champion_metrics else {}
    margin = settings.training.promotion_margin
    better = is_better(candidate, champion_metrics, margin)
    if champion is not None and erased_users and mentions_users(champion.model_dir, erased_users):
        better = True
        reason += f"; champion v{champion.version} was trained on erased users and must be replaced"
    privacy = challenger.privacy_report() if isinstance(challenger, PrivateModel) else None
    history = list(getattr(challenger, "round_history", None) or [])

    configure(settings)
    source = Path(settings.paths.lake) / dataset_name
    with mlflow.start_run(run_name=f"{name}-{stamp}") as run:
        mlflow.log_params(
            flatten_params(
                {
                    "model": name,
                    "hyper": hyper,
                    "split": split,
                    "split_ratio": SPLIT_RATIO,
                    "seed": seed,
                    "k": K,
                    "promotion_margin": margin,
                    "dataset": dataset_name,
                    "data": {
                        "events": events.height,
                        "interactions": interactions.height,
                        "users": interactions["user_id"].n_unique(),
                        "items": interactions["item_id"].n_unique(),
                        "train_rows": train.height,
                        "test_rows": test.height,
                    },
                    "item_features": item_features is not None,
                    "champion_version": champion.version if champion else "none",
                }
            )
        )
        log_dataset(train, f"{dataset_name}-train", "training", source)
        log_dataset(test, f"{dataset_name}-test", "evaluation", source)
        mlflow.log_metrics({metric_key(k): v for k, v in finite_metrics(metrics).items()})
        mlflow.log_metric("train.seconds", train_seconds)
        if champion_metrics:
            mlflow.log_metrics(
                {metric_key(k): v for k, v in finite_metrics(champion_metrics, "champion.").items()}
            )
            mlflow.log_metrics({metric_key(f"delta.{k}"): v for k, v in challenger_delta.items()})
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
                "shipped": "challenger" if challenger_wins else "fallback",
                "reason": reason,
                "deltas": challenger_delta,
                "gate_metric": GATE_METRIC,
                "margin": margin,
                "better": better,
            },
            "champion_comparison.json",
        )
        _log_plots(
            challenger,
            train,
            test,
            metrics,
            history,
            privacy,
            champion,
            champion_view,
            champion_metrics,
        )
        shipped = "challenger" if challenger_wins else "fallback"
        mlflow.set_tags(
            {
                "better_than_champion": str(better and challenger_wins).lower(),
                "shipped": shipped,
                REASON_TAG: reason,
            }
        )
        version = _log_model(settings, name, challenger_dir)
        crash_point("training")
        run_id = run.info.run_id

    client = tracking_client(settings)
    registered = settings.training.registered_model
    version_tags_ = {
        "model": name,
        "split": split,
        "better_than_champion": str(better and challenger_wins).lower(),
        SERVES_TAG: "challenger",
        REASON_TAG: reason,
    }
    for key, value in version_tags_.items():
        client.set_model_version_tag(registered, version, key, value)
    fallback_version = None
    if not challenger_wins and fallback is not None and fallback_metrics is not None:
        fallback_version = _register_fallback(
            settings, fallback, fallback_metrics, split, stamp, run_id, reason, better
        )
    for registered_version in filter(None, (version, fallback_version)):
        client.set_model_version_tag(registered, registered_version, RECORDED_TAG, "true")
    result = CycleResult(
        run_id=run_id,
        model_version=version,
        model_name=name,
        split=split,
        metrics=metrics,
        champion_version=champion.version if champion else None,
        champion_metrics=champion_metrics,
        deltas=delta,
        privacy=json.loads(json.dumps(privacy, default=str)) if privacy is not None else None,
        challenger_dir=challenger_dir,
        train_seconds=train_seconds,
        margin=margin,
        better=better,
        fallback_metrics=fallback_metrics,
        fallback_version=fallback_version,
        shipped=shipped,
        reason=reason,
    )
    log.info(
        "nightly cycle done",
        extra={
            "run_id": run_id,
            "version": version,
            "better": better,
            GATE_METRIC: metrics.get(GATE_METRIC),
        },
    )
    return result


# ---- promotion and rollback ----------------------------------------------------------------
def promote(settings: Settings, result: CycleResult) -> dict[str, Any]:
    """Make ``result``'s model version the champion (refuses when ``result.better`` is False).

    Order: publish vectors (new LanceDB table versions) -> record them in the model version's
    tags -> move the ``champion`` alias (the commit point) -> tag the run ``promoted=true``.
    Returns what was done (model version, table versions, previous champion).
    """
    if not result.better:
        raise PromotionRefusedError(
            f"model version {result.model_version} did not beat champion "
            f"{result.champion_version} on {GATE_METRIC} by more than {result.margin}: "
            f"deltas {result.deltas}"
        )
    registered = settings.training.registered_model
    client = tracking_client(settings)
    previous = champion_version(settings)
    target = result.candidate_version
    if previous == target:
        log.info("already champion; nothing to do", extra={"version": previous})
        tags = client.get_model_version(registered, target).tags
        return {"model_version": previous, "already_champion": True, **tags}
    handle = load_version(settings, target)
    versions = publish_vectors(settings, handle.recommender, target)
    tags = version_tags(versions)
    for key, value in tags.items():
        client.set_model_version_tag(registered, target, key, value)
    if versions.reason:
        client.set_model_version_tag(registered, target, "vectors.note", versions.reason)
    client.set_registered_model_alias(registered, CHAMPION_ALIAS, target)
    client.set_tag(handle.run_id, "promoted", "true")
    log.info("promoted", extra={"version": target, "previous": previous, **tags})
    return {
        "model_version": target,
        "previous_champion": previous,
        "shipped": result.shipped,
        "reason": result.reason,
        **tags,
    }


def rollback(settings: Settings, version: str) -> dict[str, Any]:
    """Make an earlier promoted ``version`` the champion again and restore its vector tables.

    The version must have been promoted before (it carries the LanceDB version tags). Table
    versions tagged ``none`` (a model without vectors) leave that table untouched.
    """
    registered = settings.training.registered_model
    client = tracking_client(settings)
    mv = client.get_model_version(registered, version)
    if ITEMS_VERSION_TAG not in mv.tags:
        raise PromotionRefusedError(
            f"model version {version} was never promoted (no {ITEMS_VERSION_TAG} tag); "
            "only a former champion can be rolled back to"
        )

    restored = restore_versions(
        settings,
        parse_version_tag(mv.tags, ITEMS_VERSION_TAG),
        parse_version_tag(mv.tags, USERS_VERSION_TAG),
    )
    previous = champion_version(settings)
    client.set_registered_model_alias(registered, CHAMPION_ALIAS, str(version))
    client.set_tag(mv.run_id, "rolled_back_to_at", datetime.now(UTC).isoformat())
    log.info("rolled back", extra={"version": version, "previous": previous})
    return {
        "model_version": str(version),
        "previous_champion": previous,
        "restored_items_version": restored.items,
        "restored_users_version": restored.users,
    }


# ---- crash recovery ------------------------------------------------------------------------
def clean_orphans(settings: Settings) -> list[str]:
    """Repair what a killed nightly left in MLflow; returns what was cleaned (for the summary).

    Call only while no other nightly runs (``pipelines.run`` holds a lock). Runs of the nightly
    experiment still ``RUNNING`` are marked ``FAILED``. A model version is an orphan when it has
    no alias, was never recorded (:data:`RECORDED_TAG`) and its run did not finish or it lacks
    the ``model`` tag every cycle sets: it is deleted with its logged-model files, so no
    half-registered version can be promoted or rolled back to.
    """
    from mlflow.entities import RunStatus

    from mlops.tracking import EXPERIMENT

    client = tracking_client(settings)
    cleaned: list[str] = []
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        running = client.search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
        for run in running:
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
            client.set_tag(run.info.run_id, "killed", "true")
            cleaned.append(f"run {run.info.run_id[:8]} marked FAILED")
    registered = settings.training.registered_model
    if not client.search_registered_models(filter_string=f"name = '{registered}'"):
        return cleaned
    aliased = set(client.get_registered_model(registered).aliases.values())
    for mv in client.search_model_versions(f"name = '{registered}'"):
        if str(mv.version) in {str(v) for v in aliased} or mv.tags.get(RECORDED_TAG) == "true":
            continue
        finished = bool(mv.run_id) and client.get_run(mv.run_id).info.status == "FINISHED"
        if finished and "model" in mv.tags:
            continue
        client.delete_model_version(registered, mv.version)
        if mv.source.startswith("models:/m-"):
            model_id = mv.source.removeprefix("models:/")
            client.delete_logged_model(model_id)
            shutil.rmtree(Path(settings.paths.mlflow_artifacts) / "models" / model_id, True)
        cleaned.append(f"model version {mv.version} deleted (never recorded)")
    return cleaned
