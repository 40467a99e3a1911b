"""Challenger vs champion on one split: interactions, the split, metrics and their comparison.

The nightly cycle (:mod:`mlops.nightly`) turns watch events into interactions, splits them once,
and scores every model of the night on that SAME split with :mod:`models.evaluation`:
the challenger, the popularity fallback and the current champion (through
:class:`mlops.champion.FoldInView`). :func:`evaluate_cycle` returns all of it as one
:class:`CycleEvaluation`, including the per-activity breakdown and the challenger's test
recommendations the run's plots are drawn from (:mod:`mlops.run_logging`).

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
  other users or items is still scored on exactly the challenger's test set.
* Every cycle also fits the popularity fallback on the same training split and scores it on the
  same held-out split (the "never worse than popularity" rule of :mod:`mlops.promotion`); a
  challenger that IS the popularity model skips it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import polars as pl

from mlops.champion import ChampionHandle, FoldInView
from models.base import Recommender
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
FALLBACK_MODEL = "popularity"
"""Registry name of the model every challenger must not be worse than."""

EVENT_COLUMNS = ("user_id", "title_id", "weight", "event_time")


class NightlyInputError(ValueError):
    """The watch events cannot be turned into training interactions."""


class InsufficientDataError(ValueError):
    """Too little data to hold out a test set."""


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


# ---- metrics -------------------------------------------------------------------------------
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


@dataclass
class CycleEvaluation:
    """Every model of one cycle scored on the same split (metric keys as :func:`with_k`)."""

    train: pl.DataFrame
    test: pl.DataFrame
    split: str
    """Split description: ``stratified-user-0.75`` or ``leave-last-out``."""
    metrics: dict[str, float]
    """The challenger's metrics."""
    fallback: Recommender | None
    """The popularity fallback fitted on ``train`` (``None``: the challenger is popularity)."""
    fallback_metrics: dict[str, float] | None
    champion_view: FoldInView | None
    """The champion seen through ``train`` (``None`` without a champion)."""
    champion_metrics: dict[str, float] | None
    by_activity: pl.DataFrame
    """``bucket, min_interactions, users, ndcg, model``: nDCG@K per activity bucket of the
    challenger (``model = "challenger"``) and, with a champion, of ``champion v<version>``."""
    test_recommendations: pl.DataFrame
    """The challenger's top-K for the test users (``RECS_SCHEMA``)."""

    @property
    def challenger_deltas(self) -> dict[str, float]:
        """``challenger - champion`` per metric (empty without a champion)."""
        return deltas(self.metrics, self.champion_metrics) if self.champion_metrics else {}


def evaluate_cycle(
    challenger: Recommender,
    model_name: str,
    champion: ChampionHandle | None,
    train: pl.DataFrame,
    test: pl.DataFrame,
    split: str,
    seed: int,
) -> CycleEvaluation:
    """Score the fitted ``challenger``, the popularity fallback and ``champion`` on ``train/test``.

    The fallback is fitted here (on ``train``, with ``seed``) unless ``model_name`` is the
    fallback itself.
    """
    metrics = with_k(evaluate_model(challenger, train, test, k=K))
    fallback: Recommender | None = None
    fallback_metrics: dict[str, float] | None = None
    if model_name != FALLBACK_MODEL:
        fallback = create(FALLBACK_MODEL, seed=seed)
        fallback.fit(train)
        fallback_metrics = with_k(evaluate_model(fallback, train, test, k=K))
    champion_view = champion_metrics = None
    if champion is not None:
        champion_view = FoldInView(champion.recommender, train)
        champion_metrics = with_k(evaluate_model(champion_view, train, test, k=K))
    frames = [
        metrics_by_activity(challenger, train, test, k=K).with_columns(model=pl.lit("challenger"))
    ]
    if champion is not None and champion_view is not None:
        frames.append(
            metrics_by_activity(champion_view, train, test, k=K).with_columns(
                model=pl.lit(f"champion v{champion.version}")
            )
        )
    return CycleEvaluation(
        train=train,
        test=test,
        split=split,
        metrics=metrics,
        fallback=fallback,
        fallback_metrics=fallback_metrics,
        champion_view=champion_view,
        champion_metrics=champion_metrics,
        by_activity=pl.concat(frames),
        test_recommendations=recommend_for_test(challenger, train, test, K),
    )
