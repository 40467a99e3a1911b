"""The whole Dagster graph materialised on the embedded sample (a real run in a real instance)."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from core.lake import read_table
from core.schemas import EMBEDDING_DIM
from core.vector_index import ContentIndex
from pipelines.definitions import build_definitions

pytestmark = pytest.mark.slow


def test_definitions_load_with_jobs_schedule_and_sensor():
    defs = build_definitions()
    assert defs.resolve_job_def("nightly").tags["dagster/max_runtime"] == str(4 * 3600)
    assert defs.resolve_schedule_def("nightly_schedule").cron_schedule == "30 2 * * *"
    assert defs.resolve_sensor_def("inbox_sensor").job_name == "import_events"
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "tmdb_titles",
        "justwatch_offers",
        "platform_catalogs",
        "titles",
        "availability",
        "watch_events",
        "unresolved_events",
        "content_embeddings",
        "content_index",
        "challenger_model",
        "champion_model",
    } <= keys


def test_nightly_on_sample_builds_lake_index_and_champion(sample_world):
    settings, _, success = sample_world
    assert success
    lake = settings.paths.lake
    titles = read_table(lake, "titles")
    assert titles.height >= 200 and titles["title_id"].is_unique().all()
    availability = read_table(lake, "availability")
    assert set(availability["country"].unique()) >= {"US", "GB"}
    events = read_table(lake, "watch_events")
    assert events["user_id"].n_unique() >= 5
    assert events["title_id"].is_in(titles["title_id"].implode()).all()
    assert read_table(lake, "unresolved_events").height >= 1  # the sample has unresolvable rows
    index = ContentIndex(settings.paths.lancedb)
    assert index.count() == titles.height
    emb = read_table(lake, "content_embeddings")
    assert emb.height == titles.height
    assert (settings.paths.models / "challenger.json").is_file()


def test_rerun_is_idempotent_and_reencodes_nothing(sample_world):
    from pipelines.run import run_nightly

    settings, files, _ = sample_world
    before = read_table(settings.paths.lake, "watch_events").height
    assert run_nightly(settings, files, partition_key="2026-11-29")
    after = read_table(settings.paths.lake, "watch_events")
    assert after.height == before
    assert after["event_id"].is_unique().all()
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey("content_embeddings"))
    assert event.asset_materialization.metadata["encoded"].value == 0


def test_corrupted_embeddings_block_the_index_swap(sample_world, tmp_path, monkeypatch):
    """Non-unit vectors fail the blocking check, so content_index keeps its old version.

    Runs on a copy of the sample world; the encoder is replaced by one returning unnormalised
    vectors, and the embeddings cache is removed so every title is re-encoded.
    """
    import shutil

    import numpy as np

    import pipelines.defs.content.assets as content_assets
    from core.settings import load_settings
    from pipelines.run import run_nightly
    from tests.conftest import write_tmp_overlay
    from tests.pipelines.world_copy import relocate_mlflow

    settings, _, _ = sample_world
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path))]
    copy = load_settings(*files)
    relocate_mlflow(tmp_path / "var" / "mlflow.db", settings.paths.lake.parent, tmp_path / "var")
    shutil.rmtree(copy.paths.lake / "content_embeddings")
    version_before = ContentIndex(copy.paths.lancedb).version

    def unnormalised(texts, batch_size=64, show_progress=False):
        return np.full((len(texts), EMBEDDING_DIM), 3.0, dtype=np.float32)

    monkeypatch.setattr(content_assets, "encode_texts", unnormalised)
    assert not run_nightly(copy, files, partition_key="2026-11-27")
    assert ContentIndex(copy.paths.lancedb).version == version_before


def test_feedback_is_trained_on_and_erasure_deletes_rows(sample_world, tmp_path):
    """API feedback lands in watch_events on the next run; an erased user's rows disappear."""
    import shutil

    from core.feedback import FeedbackRecord, append_erasure, append_feedback
    from core.settings import load_settings
    from pipelines.run import run_nightly
    from tests.conftest import write_tmp_overlay
    from tests.pipelines.world_copy import relocate_mlflow

    settings, _, _ = sample_world
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path))]
    copy = load_settings(*files)
    relocate_mlflow(tmp_path / "var" / "mlflow.db", settings.paths.lake.parent, tmp_path / "var")
    events = read_table(copy.paths.lake, "watch_events")
    users = sorted(events["user_id"].unique())
    keep, erase = users[0], users[1]
    title = events.filter(pl.col("user_id") == keep)["title_id"][0]
    event_id = append_feedback(
        copy.paths.feedback, FeedbackRecord(user_id=keep, title_id=title, rating=5.0, watched=True)
    )
    append_erasure(copy.paths.feedback, erase)

    assert run_nightly(copy, files, partition_key="2026-11-26")
    after = read_table(copy.paths.lake, "watch_events")
    assert after.filter(pl.col("event_id") == event_id)["source"].to_list() == ["feedback"]
    assert after.filter(pl.col("user_id") == erase).height == 0
    assert read_table(copy.paths.lake, "quarantine").filter(pl.col("user_id") == erase).height == 0
    # a second run adds the feedback only once
    assert run_nightly(copy, files, partition_key="2026-11-25")
    again = read_table(copy.paths.lake, "watch_events")
    assert again.filter(pl.col("event_id") == event_id).height == 1


def test_terminal_shows_progress_and_summary_and_chatter_goes_to_the_log(
    sample_world, tmp_path, capfd
):
    """One retraining run: the terminal gets the log path, per-step progress, the summary and
    which model serves; Flower/MLflow/Dagster lines go to the log file, each once."""
    import re
    import shutil

    from core.settings import load_settings
    from pipelines.run import run_nightly
    from tests.conftest import write_tmp_overlay
    from tests.pipelines.world_copy import relocate_mlflow

    settings, _, _ = sample_world
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path))]
    copy = load_settings(*files)
    relocate_mlflow(tmp_path / "var" / "mlflow.db", settings.paths.lake.parent, tmp_path / "var")
    (copy.paths.models / "challenger.fingerprint").unlink()  # force a retrain (Flower runs)
    capfd.readouterr()
    assert run_nightly(copy, files, partition_key="2026-11-24")
    captured = capfd.readouterr()
    terminal = captured.out + captured.err
    found = re.search(r"library logs go to\s+(\S+\.log)", terminal)
    assert found, terminal
    for step in ("content_embeddings", "challenger_model", "champion_model"):
        assert step in terminal
    assert "serving:" in terminal and "popularity" in terminal
    for chatter in ("flwr", "mlflow.", "alembic", "httpx", "Opacus", " - dagster - "):
        assert chatter not in terminal, chatter
    log_text = (tmp_path / "var" / "logs" / found.group(1).rsplit("/", 1)[-1]).read_text()
    assert "\x1b[" not in log_text  # Flower's coloured console copy is gone
    assert log_text.count("Starting ItemFedAvg strategy") == 1
    assert " - dagster - " in log_text and " flwr: " in log_text
