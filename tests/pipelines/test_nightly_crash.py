"""Crash safety: SIGKILL the nightly during import, embeddings and training; the rerun repairs all.

The killed runs are real `media-gateway nightly` processes on a copy of the sample world, killed
by the test-only crash points (``MEDIA_GATEWAY_TEST_CRASH_AT``, :mod:`core.crash`). The
three kills happen one after the other (each on the state the previous one left), and every
crashed state is checked for what readers could see (no torn Parquet, no unreadable LanceDB
version); after the kills, an ordinary run must complete and leave everything clean: no stale
Dagster run, no RUNNING MLflow run, no half-registered model version, no duplicated event.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys

import dagster as dg
import lancedb
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from core import PROJECT_ROOT
from core.crash import CRASH_ENV
from core.lake import read_table, write_table
from core.settings import Settings, load_settings
from mlops.champion import champion_version
from mlops.tracking import RECORDED_TAG
from pipelines.run import LAUNCHER, LAUNCHER_TAG, run_nightly
from tests.conftest import write_tmp_overlay
from tests.pipelines.world_copy import relocate_mlflow

pytestmark = pytest.mark.slow


def _killed_nightly(files: list[str], point: str) -> None:
    """Run the CLI nightly in a new session with a crash point; it must die of SIGKILL."""
    env = {**os.environ, CRASH_ENV: point, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [sys.executable, "-m", "media_gateway.cli", "nightly"]
    for f in files:
        args += ["-c", f]
    proc = subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever the killed run started
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-2000:]


def _readers_see_whole_tables(settings: Settings) -> None:
    """Every visible Parquet file is complete and every LanceDB version opens and reads."""
    lake = settings.paths.lake
    for path in lake.glob("*/**/*.parquet"):
        if not any(part.startswith(".") for part in path.relative_to(lake).parts):
            pl.read_parquet(path)
    events = read_table(lake, "watch_events")
    assert events["event_id"].is_unique().all()
    db = lancedb.connect(str(settings.paths.lancedb))
    for name in db.list_tables().tables:
        table = db.open_table(name)
        for version in table.list_versions():
            table.checkout(int(version["version"]))
            assert table.to_arrow().num_rows == table.count_rows()
        table.checkout_latest()


def test_three_kills_then_a_clean_rerun(sample_world, tmp_path) -> None:
    settings, _, _ = sample_world
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path))]
    copy = load_settings(*files)
    relocate_mlflow(tmp_path / "var" / "mlflow.db", settings.paths.lake.parent, tmp_path / "var")
    lake = copy.paths.lake
    events_before = read_table(lake, "watch_events")
    client = MlflowClient(tracking_uri=copy.paths.mlflow_uri, registry_uri=copy.paths.mlflow_uri)
    name = copy.training.registered_model
    versions_before = {mv.version for mv in client.search_model_versions(f"name = '{name}'")}
    champion_before = champion_version(copy)

    # 1. during import: after the first history file of the manifest
    _killed_nightly(files, "import")
    _readers_see_whole_tables(copy)

    # 2. during embeddings: 40 titles lose their vectors, so the run encodes them, then dies
    embeddings = read_table(lake, "content_embeddings")
    write_table(lake, "content_embeddings", embeddings.slice(40))
    _killed_nightly(files, "embeddings")
    _readers_see_whole_tables(copy)
    assert read_table(lake, "content_embeddings").height == embeddings.height - 40

    # 3. during training: inputs changed (fingerprint gone), killed right after registering
    (copy.paths.models / "challenger.fingerprint").unlink()
    _killed_nightly(files, "training")
    _readers_see_whole_tables(copy)
    half = [
        mv
        for mv in client.search_model_versions(f"name = '{name}'")
        if mv.version not in versions_before
    ]
    assert half and all(RECORDED_TAG not in mv.tags for mv in half)  # the kill left an orphan

    os.environ["DAGSTER_HOME"] = str(copy.paths.dagster_home)
    instance = dg.DagsterInstance.get()
    ours = dg.RunsFilter(tags={LAUNCHER_TAG: LAUNCHER})
    killed = [
        r
        for r in instance.get_runs(filters=ours)
        if r.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.FAILURE)
    ]
    # each start reports the run killed before it failed; the last one is still "STARTED"
    assert len(killed) == 3
    assert [r.status for r in killed].count(dg.DagsterRunStatus.STARTED) == 1

    assert run_nightly(copy, files, partition_key="2026-11-28")

    _readers_see_whole_tables(copy)
    leftovers = [*lake.glob(".*.old"), *lake.glob(".*.staging"), *lake.glob("**/.*.tmp")]
    assert leftovers == []  # repaired before the rerun
    events = read_table(lake, "watch_events")
    assert events.height == events_before.height and events["event_id"].is_unique().all()
    assert read_table(lake, "content_embeddings").height == embeddings.height
    runs = {r.run_id: r.status for r in instance.get_runs(filters=ours)}
    assert all(runs[r.run_id] == dg.DagsterRunStatus.FAILURE for r in killed)
    assert dg.DagsterRunStatus.STARTED not in runs.values()
    experiment = client.get_experiment_by_name("media-gateway-nightly")
    assert not client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    versions = client.search_model_versions(f"name = '{name}'")
    orphans = {mv.version for mv in half}
    assert orphans.isdisjoint({mv.version for mv in versions})  # half-registered ones deleted
    for mv in versions:
        assert mv.tags.get(RECORDED_TAG) == "true", mv.version
    assert champion_version(copy) is not None and champion_before is not None
