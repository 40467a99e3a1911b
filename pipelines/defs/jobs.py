"""Jobs, the nightly schedule and the inbox sensor."""

import json
from datetime import UTC, datetime

import dagster as dg

from pipelines.defs.resources import MediaGatewayConfig
from pipelines.lib.inbox import scan_inbox
from pipelines.partitions import daily_imports

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_imports,
    description="Ingest catalogue, availability and histories; embed; index; train; promote.",
    tags={"dagster/max_runtime": str(4 * 3600)},
)

import_events_job = dg.define_asset_job(
    "import_events",
    selection=dg.AssetSelection.assets("watch_events", "unresolved_events"),
    partitions_def=daily_imports,
    description="Import export files waiting in the inbox (triggered by the inbox sensor).",
)

nightly_schedule = dg.build_schedule_from_partitioned_job(
    nightly_job, hour_of_day=2, minute_of_hour=30, name="nightly_schedule"
)


@dg.sensor(
    job=import_events_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def inbox_sensor(context: dg.SensorEvaluationContext, app: MediaGatewayConfig):
    """Start an import run when new or changed export files appear in the inbox folder."""
    settings = app.settings()
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    items = scan_inbox(settings.paths.inbox)
    signatures = {item.signature() for item in items}
    new = sorted(signatures - seen)
    if not new:
        return dg.SkipReason(f"no new files in {settings.paths.inbox}")
    day = daily_imports.get_last_partition_key() or datetime.now(UTC).strftime("%Y-%m-%d")
    context.update_cursor(json.dumps(sorted(signatures | seen)))
    return dg.RunRequest(
        run_key="|".join(new), partition_key=day, tags={"inbox_files": str(len(new))}
    )
