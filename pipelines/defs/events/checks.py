"""Checks on watch events: schema, unique event ids, resolution rate."""

import dagster as dg
import polars as pl

from core.lake import read_table
from core.schemas import SchemaError, validate
from pipelines.defs.resources import MediaGatewayConfig


@dg.asset_check(
    asset="watch_events",
    blocking=True,
    description="schema, unique event ids, non-null ids, resolution rate",
)
def watch_events_are_valid(app: MediaGatewayConfig) -> dg.AssetCheckResult:
    settings = app.settings()
    lake = settings.paths.lake
    events = read_table(lake, "watch_events")
    unresolved = read_table(lake, "unresolved_events")
    try:
        validate(events, "watch_events")
        schema = "ok"
    except SchemaError as exc:
        schema = str(exc)
    duplicates = events.height - events["event_id"].n_unique()
    null_ids = events.select(
        pl.col("user_id").null_count() + pl.col("title_id").null_count()
    ).item()
    imported = events.filter(pl.col("source") != "feedback").height
    rate = imported / max(1, imported + unresolved.height)
    passed = (
        schema == "ok"
        and duplicates == 0
        and null_ids == 0
        and rate >= settings.checks.min_resolution_rate
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "schema": schema,
            "duplicate_event_ids": duplicates,
            "null_ids": null_ids,
            "resolution_rate_observed": rate,
            "resolution_rate_expected_at_least": settings.checks.min_resolution_rate,
        },
    )
