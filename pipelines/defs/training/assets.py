"""Training assets: the nightly challenger and, behind a blocking check, the promoted champion.

A night whose inputs are unchanged (same events, same content vectors, same training settings)
does not retrain: the fingerprint of those inputs is stored beside ``challenger.json`` and the
promotion gate reports "unchanged inputs" instead of evaluating the same model again.
"""

import hashlib
import json

import dagster as dg
import polars as pl

from pipelines.defs.content.assets import content_embeddings
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.erasure import drop_erased
from pipelines.lib.feedback import read_erasures
from pipelines.lib.lake import read_table

GROUP = "models"
CHALLENGER_FILE = "challenger.json"
FINGERPRINT_FILE = "challenger.fingerprint"
UNCHANGED_FILE = "challenger.unchanged"


def _challenger_path(settings):
    return settings.paths.models / CHALLENGER_FILE


def _atomic_write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
    from models.nightly import run_training_cycle

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
        _atomic_write(models_dir / UNCHANGED_FILE, fingerprint)
        context.log.info("inputs unchanged since the last challenger: not retraining")
        return dg.MaterializeResult(metadata={"retrained": False, "fingerprint": fingerprint})
    (models_dir / UNCHANGED_FILE).unlink(missing_ok=True)
    result = run_training_cycle(settings, events, item_features=vectors.select("item_id", "vector"))
    _atomic_write(_challenger_path(settings), result.model_dump_json(indent=2))
    _atomic_write(previous, fingerprint)
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
            "retrained": True,
        }
    )


@dg.asset_check(
    asset=challenger_model,
    blocking=True,
    description="challenger beats the champion's nDCG@10 by the configured margin",
)
def challenger_beats_champion(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    from models.nightly import CycleResult

    settings = app.settings()
    if (settings.paths.models / UNCHANGED_FILE).is_file():
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"reason": "unchanged inputs: no new challenger to promote"},
        )
    result = CycleResult.model_validate_json(_challenger_path(settings).read_text())
    champion = result.champion_metrics or {}
    return dg.AssetCheckResult(
        passed=bool(result.better),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "challenger_ndcg@10": result.metrics.get("ndcg@10"),
            "champion_ndcg@10": champion.get("ndcg@10"),
            "margin": settings.training.promotion_margin,
            "deltas": dg.MetadataValue.json(result.deltas or {}),
        },
    )


@dg.asset(group_name=GROUP, deps=[challenger_model], kinds={"mlflow", "lancedb"})
def champion_model(app: MediaGatewayConfig) -> dg.MaterializeResult:
    """Promote the challenger: MLflow alias `champion` + a new LanceDB vector table version."""
    from models.nightly import CycleResult, promote

    settings = app.settings()
    result = CycleResult.model_validate_json(_challenger_path(settings).read_text())
    info = promote(settings, result)
    return dg.MaterializeResult(
        metadata={
            "model_version": str(result.model_version),
            "mlflow_run_id": result.run_id,
            "promotion": dg.MetadataValue.json(json.loads(json.dumps(info, default=str)))
            if info
            else "ok",
        }
    )
