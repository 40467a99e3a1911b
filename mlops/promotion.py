"""Which model a cycle ships, whether it replaces the champion, and the alias moves themselves.

Rules (applied by :mod:`mlops.nightly` to a :class:`mlops.evaluation.CycleEvaluation`):

* Never worse than popularity (:func:`beats_fallback`): a challenger whose ``ndcg@10`` is below the
  popularity fallback's on the held-out split is not shipped (a tie keeps the challenger); the
  fallback becomes the cycle's candidate instead.
* Better than the champion (:func:`is_better`): no champion, or the candidate's ``ndcg@10`` >
  champion ``ndcg@10`` + ``training.promotion_margin``. A non-finite candidate is never better.
* A champion trained on users who have since been erased must be replaced whatever the figures
  (:func:`must_replace`).

Whether tonight promotes is an explicit, typed outcome: :func:`decide_promotion` returns a
:class:`PromotionDecision` -- promote, or skip with the reason (the candidate did not beat the
champion, or the inputs were unchanged and there is no new candidate). A skip is a normal night,
not a failed check: the Dagster asset ``champion_model`` records it as an ``AssetObservation``
whose metadata says ``promoted: False`` and why, and materialises nothing.

Actions: :func:`promote` publishes the model's collaborative vectors to LanceDB, records the
table versions in the model version's tags and then moves the ``champion`` alias (the commit point
serving follows); it refuses a result that was not better and is idempotent for an already
promoted one. :func:`rollback` moves the alias back to an earlier version and restores that
version's vector tables. :func:`register_champion` seeds a store without evaluation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow

from core.settings import Settings
from mlops.champion import CHAMPION_ALIAS, ChampionHandle, champion_version, load_version
from mlops.evaluation import GATE_METRIC, CycleEvaluation, deltas
from mlops.purge import mentions_users
from mlops.tracking import RECORDED_TAG, configure, log_model
from mlops.tracking import client as tracking_client
from mlops.vectors import (
    ITEMS_VERSION_TAG,
    USERS_VERSION_TAG,
    parse_version_tag,
    publish_vectors,
    restore_versions,
    version_tags,
)
from models.base import Recommender

if TYPE_CHECKING:
    from mlops.nightly import CycleResult

log = logging.getLogger(__name__)


class PromotionRefusedError(RuntimeError):
    """``promote`` was asked to promote a challenger that did not beat the champion."""


# ---- rules ---------------------------------------------------------------------------------
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


def must_replace(champion: ChampionHandle | None, erased_users: set[str] | frozenset[str]) -> bool:
    """The champion was trained on users who have since been erased (it must go)."""
    return (
        champion is not None
        and bool(erased_users)
        and mentions_users(champion.model_dir, erased_users)
    )


@dataclass(frozen=True)
class Candidate:
    """The model a cycle ships (``challenger`` or ``fallback``), why, and whether it is better
    than the champion."""

    shipped: str
    reason: str
    """One sentence with the figures (plus the erasure note when the champion must go)."""
    better: bool
    """No champion, the candidate beat it by more than the margin, or the champion must go."""
    metrics: dict[str, float]
    """The candidate's metrics on the cycle's split."""
    deltas: dict[str, float]
    """``candidate - champion`` per metric (empty without a champion)."""

    @property
    def better_than_champion(self) -> bool:
        """The challenger itself ships and is better (the challenger run's tag)."""
        return self.better and self.shipped == "challenger"


def choose_candidate(
    evaluation: CycleEvaluation,
    champion: ChampionHandle | None,
    margin: float,
    erased_users: set[str] | frozenset[str] = frozenset(),
) -> Candidate:
    """Apply the rules of the module docstring to one cycle's evaluation."""
    challenger_wins, reason = beats_fallback(evaluation.metrics, evaluation.fallback_metrics)
    metrics = (
        evaluation.metrics
        if challenger_wins or evaluation.fallback_metrics is None
        else evaluation.fallback_metrics
    )
    champion_metrics = evaluation.champion_metrics
    better = is_better(metrics, champion_metrics, margin)
    if champion is not None and must_replace(champion, erased_users):
        better = True
        reason += f"; champion v{champion.version} was trained on erased users and must be replaced"
    return Candidate(
        shipped="challenger" if challenger_wins else "fallback",
        reason=reason,
        better=better,
        metrics=metrics,
        deltas=deltas(metrics, champion_metrics) if champion_metrics else {},
    )


@dataclass(frozen=True)
class PromotionDecision:
    """Tonight's promotion outcome: promote the result's candidate, or skip and say why."""

    promote: bool
    reason: str
    """Why nothing is promoted (empty when promoting)."""


def decide_promotion(
    result: CycleResult, current_champion: str | None, inputs_unchanged: bool
) -> PromotionDecision:
    """Promote ``result``'s candidate unless it did not beat the champion, or the inputs were
    unchanged (no new training) and the candidate already serves or was not better.

    ``current_champion``: the version holding ``@champion`` now (``None``: nothing promoted).
    """
    if inputs_unchanged and (current_champion == result.candidate_version or not result.better):
        return PromotionDecision(
            False, "unchanged inputs: no new challenger; the champion keeps serving"
        )
    if not result.better:
        return PromotionDecision(
            False,
            f"the {result.shipped} (v{result.candidate_version}) did not beat champion "
            f"v{result.champion_version} on nDCG@10 by more than {result.margin} "
            f"(delta {result.deltas.get('ndcg@10', float('nan')):+.4f}); "
            "the champion keeps serving",
        )
    return PromotionDecision(True, "")


# ---- actions -------------------------------------------------------------------------------
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
        version = log_model(settings, recommender.name, model_dir)
    client = tracking_client(settings)
    client.set_registered_model_alias(settings.training.registered_model, CHAMPION_ALIAS, version)
    client.set_model_version_tag(settings.training.registered_model, version, RECORDED_TAG, "true")
    return version
