"""Dagster code location: `dagster dev -m pipelines.definitions` shows the whole graph."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.catalog import assets as catalog_assets
from pipelines.defs.catalog import checks as catalog_checks
from pipelines.defs.content import assets as content_assets
from pipelines.defs.content import checks as content_checks
from pipelines.defs.events import assets as event_assets
from pipelines.defs.events import checks as event_checks
from pipelines.defs.jobs import import_events_job, inbox_sensor, nightly_job, nightly_schedule
from pipelines.defs.resources import MediaGatewayConfig
from pipelines.defs.training import assets as training_assets


def build_definitions(overlays: str = "") -> dg.Definitions:
    """All assets, checks, jobs, the schedule and the sensor, with settings from ``overlays``."""
    modules = [catalog_assets, content_assets, event_assets, training_assets]
    check_modules = [catalog_checks, content_checks, event_checks, training_assets]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(modules),
        asset_checks=dg.load_asset_checks_from_modules(check_modules),
        jobs=[nightly_job, import_events_job],
        schedules=[nightly_schedule],
        sensors=[inbox_sensor],
        resources={"app": MediaGatewayConfig(overlays=overlays)},
    )


defs = build_definitions()
