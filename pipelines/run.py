"""Run the nightly job once, in process, against the Dagster instance in ``paths.dagster_home``.

The run is recorded in that instance, so `make dagster` (DAGSTER_HOME=var/dagster) shows it with
all asset metadata and check results.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime

import dagster as dg
from rich.console import Console
from rich.table import Table

from media_gateway import PROJECT_ROOT
from media_gateway.settings import Settings

log = logging.getLogger(__name__)

PROMOTION_GATE = "challenger_beats_champion"
"""The blocking check in front of `champion_model`; a run stopped only by it is a normal night."""


def prepare_dagster_home(settings: Settings) -> dg.DagsterInstance:
    """Create DAGSTER_HOME with the project's dagster.yaml and return its instance."""
    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def run_nightly(
    settings: Settings,
    config_files: list[str],
    partition_key: str | None = None,
    console: Console | None = None,
) -> bool:
    """Materialise every asset (and run every check) for one daily partition. True on success."""
    from pipelines.definitions import build_definitions

    console = console or Console(stderr=True)
    instance = prepare_dagster_home(settings)
    defs = build_definitions(overlays=",".join(str(c) for c in config_files))
    job = defs.resolve_job_def("nightly")
    day = partition_key or datetime.now(UTC).strftime("%Y-%m-%d")
    with console.status(f"running nightly job for partition {day} ..."):
        result = job.execute_in_process(
            instance=instance,
            partition_key=day,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    table = Table(title=f"nightly {day} (run {result.run_id[:8]})")
    table.add_column("asset / check")
    table.add_column("result")
    table.add_column("key figures")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        figures = {
            k: v.value
            for k, v in mat.metadata.items()
            if k
            in {
                "rows",
                "encoded",
                "reused",
                "batch_resolution_rate",
                "table_version",
                "challenger_ndcg@10",
                "epsilon",
                "better_than_champion",
                "model_version",
            }
        }
        table.add_row(mat.asset_key.to_user_string(), "materialized", _fmt(figures))
    for evaluation in result.get_asset_check_evaluations():
        status = "[green]passed[/green]" if evaluation.passed else "[red]failed[/red]"
        table.add_row(evaluation.check_name, status, "")
    console.print(table)
    if result.success:
        return True
    failed = [e for e in result.all_events if e.is_step_failure]
    if failed and all(e.step_key.endswith(PROMOTION_GATE) for e in failed):
        gate = [e for e in result.get_asset_check_evaluations() if e.check_name == PROMOTION_GATE]
        reason = gate[0].metadata.get("reason") if gate else None
        if reason is not None:
            console.print(f"[yellow]nothing promoted:[/yellow] {reason.value}")
        else:
            console.print(
                "[yellow]challenger not promoted:[/yellow] it did not beat the champion by the "
                "configured margin (the champion keeps serving; see the MLflow run for the deltas)"
            )
        return True
    for event in failed:
        console.print(
            f"[red]step failed:[/red] {event.step_key}: "
            f"{event.event_specific_data.error.message.strip()}"
        )
    return False


def _fmt(values: dict) -> str:
    return ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
