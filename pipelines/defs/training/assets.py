"""Training assets: the nightly challenger and, behind a blocking check, the promoted champion.

A night whose inputs are unchanged (same events, same content vectors, same training settings)
does not retrain: the fingerprint of those inputs is stored beside ``challenger.json``.

The blocking check ``candidate_not_worse_than_popularity`` fails only on a defect: a candidate
with a non-finite nDCG@10, or one below the popularity fallback on the same split (the cycle ships
the fallback in that case, so a failure means the decision itself is broken). Whether the
candidate replaces the champion is a decision, not a check: ``champion_model`` asks
:func:`mlops.promotion.decide_promotion` and either promotes (a materialisation) or *skips* -- it
records an ``AssetObservation`` with ``promoted: False`` and the reason (the candidate did not beat
the champion, or the inputs were unchanged), materialises nothing, and the run succeeds.

``champion_model`` then sweeps erased users out of every model store
(:func:`mlops.purge.purge_erased_users`): the champion was just replaced by a model trained
without them when it held them, so older versions naming them can be deleted.
"""

import hashlib
import json

import dagster as dg
import polars as pl

from core.atomic import atomic_write_text
from core.feedback import read_erasures
from core.lake import read_table
from pipelines.defs.content.assets import content_embeddings
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.erasure import drop_erased

GROUP = "models"
CHALLENGER_FILE = "challenger.json"
FINGERPRINT_FILE = "challenger.fingerprint"
UNCHANGED_FILE = "challenger.unchanged"


def _challenger_path(settings):
    return settings.paths.models / CHALLENGER_FILE


def inputs_fingerprint(settings, events: pl.DataFrame, vectors: pl.DataFrame) -> str:
    """sha256 over event ids and weights, content hashes and the training settings."""
    digest = hashlib.sha256(settings.training.model_dump_json().encode())
    for frame, cols in ((events, ["event_id", "weight"]), (vectors, ["item_id", "content_hash"])):
        rows = frame.select(cols).sort(cols[0])
        digest.update(str(rows.hash_rows().sum()).encode())
        digest.update(str(rows.height).encode())
    return digest.hexdigest()


@dg.asset(group_name=GROUP, deps=["watch_events", content_embeddings], kinds={"mlflow", "pytorch"})
def challenger_model(
    context: dg.AssetExecutionContext, app: MediaGatewayConfig
) -> dg.MaterializeResult:
    """Train tonight's challenger on all watch events; evaluate it and the champion on one split."""
    from mlops.nightly import run_training_cycle

    settings = app.settings()
    lake = settings.paths.lake
    events = read_table(lake, "watch_events")
    erased = read_erasures(settings.paths.feedback)
    events = drop_erased(events, erased)
    vectors = read_table(lake, "content_embeddings").select(
        pl.col("title_id").alias("item_id"), "content_hash", "vector"
    )
    models_dir = settings.paths.models
    fingerprint = inputs_fingerprint(settings, events, vectors)
    previous = models_dir / FINGERPRINT_FILE
    if (
        previous.is_file()
        and previous.read_text() == fingerprint
        and _challenger_path(settings).is_file()
    ):
        atomic_write_text(models_dir / UNCHANGED_FILE, fingerprint)
        context.log.info("inputs unchanged since the last challenger: not retraining")
        return dg.MaterializeResult(metadata={"retrained": False, "fingerprint": fingerprint})
    (models_dir / UNCHANGED_FILE).unlink(missing_ok=True)
    result = run_training_cycle(
        settings,
        events,
        item_features=vectors.select("item_id", "vector"),
        erased_users=set(erased),
    )
    atomic_write_text(_challenger_path(settings), result.model_dump_json(indent=2))
    atomic_write_text(previous, fingerprint)
    metrics = {f"challenger_{k}": float(v) for k, v in result.metrics.items()}
    deltas = {f"delta_{k}": float(v) for k, v in (result.deltas or {}).items()}
    privacy = result.privacy or {}
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": result.run_id,
            "model_version": str(result.model_version),
            **metrics,
            **deltas,
            "epsilon": privacy.get("epsilon"),
            "delta": privacy.get("delta"),
            "privacy_unit": privacy.get("privacy_unit"),
            "better_than_champion": result.better,
            "shipped": result.shipped,
            "candidate_version": result.candidate_version,
            "reason": result.reason,
            "retrained": True,
        }
    )


@dg.asset_check(
    asset=challenger_model,
    blocking=True,
    description="the shipped candidate has a finite nDCG@10, not below the popularity fallback",
)
def candidate_not_worse_than_popularity(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    import math

    from mlops.nightly import CycleResult

    settings = app.settings()
    result = CycleResult.model_validate_json(_challenger_path(settings).read_text())
    shipped = result.metrics if result.shipped == "challenger" else result.fallback_metrics or {}
    ours = shipped.get("ndcg@10", math.nan)
    floor = (result.fallback_metrics or {}).get("ndcg@10", -math.inf)
    unchanged = (settings.paths.models / UNCHANGED_FILE).is_file()
    return dg.AssetCheckResult(
        passed=bool(math.isfinite(ours) and ours >= floor),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "shipped": result.shipped,
            "candidate_ndcg@10": ours,
            "popularity_ndcg@10": None if math.isinf(floor) else floor,
            "reason": result.reason,
            "inputs_unchanged": unchanged,
        },
    )


@dg.asset(
    group_name=GROUP,
    deps=[challenger_model],
    kinds={"mlflow", "lancedb"},
    output_required=False,
)
def champion_model(context: dg.AssetExecutionContext, app: MediaGatewayConfig):
    """Promote the candidate (MLflow alias `champion` + LanceDB vectors) or skip, saying why;
    then sweep erased users out of the model stores."""
    from mlops.champion import champion_version
    from mlops.nightly import CycleResult
    from mlops.promotion import decide_promotion, promote
    from mlops.purge import purge_erased_users

    settings = app.settings()
    result = CycleResult.model_validate_json(_challenger_path(settings).read_text())
    decision = decide_promotion(
        result,
        current_champion=champion_version(settings),
        inputs_unchanged=(settings.paths.models / UNCHANGED_FILE).is_file(),
    )
    info = promote(settings, result) if decision.promote else None
    purged = purge_erased_users(settings, set(read_erasures(settings.paths.feedback)))
    sweep = {
        "erasure_deleted_versions": ", ".join(purged.deleted_versions) or "none",
        "erasure_deleted_folders": len(purged.deleted_folders),
        "erasure_user_vectors_deleted": purged.user_vectors_deleted,
    }
    if not decision.promote:
        context.log.info(f"nothing promoted: {decision.reason}")
        context.log_event(
            dg.AssetObservation(
                asset_key="champion_model",
                metadata={"promoted": False, "reason": decision.reason, **sweep},
            )
        )
        return
    yield dg.MaterializeResult(
        metadata={
            "model_version": str(result.candidate_version),
            "shipped": result.shipped,
            "reason": result.reason,
            "mlflow_run_id": result.run_id,
            "promotion": dg.MetadataValue.json(json.loads(json.dumps(info, default=str))),
            **sweep,
        }
    )
