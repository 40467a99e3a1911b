"""The code location found by the defs-folder loader: exactly these assets, checks, jobs,
schedules, sensors and resources (the list the hand-written definitions used to have)."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.defs.resources import JustWatchResource, MediaGatewayConfig, TMDBResource

ASSETS = {
    "tmdb_titles",
    "justwatch_offers",
    "platform_catalogs",
    "tmdb_late_titles",
    "titles",
    "availability",
    "watch_events",
    "unresolved_events",
    "content_embeddings",
    "content_index",
    "challenger_model",
    "champion_model",
}
CHECKS = {
    ("titles", "titles_are_valid"),
    ("availability", "availability_is_valid"),
    ("watch_events", "watch_events_are_valid"),
    ("content_embeddings", "one_unit_vector_per_title"),
    ("challenger_model", "candidate_not_worse_than_popularity"),
}


def test_defs_folder_yields_the_whole_code_location():
    defs = build_definitions("configs/sample.yaml")
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} == CHECKS
    repo = defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs()} - {"__ASSET_JOB"} == {"nightly", "import_events"}
    assert {s.name for s in repo.schedule_defs} == {"nightly_schedule"}
    assert {s.name for s in repo.sensor_defs} == {"inbox_sensor"}
    assert set(defs.resources or {}) == {"app", "tmdb", "justwatch"}


def test_resources_share_the_overlays():
    resources = build_definitions("configs/sample.yaml").resources or {}
    assert isinstance(resources["app"], MediaGatewayConfig)
    assert isinstance(resources["tmdb"], TMDBResource)
    assert isinstance(resources["justwatch"], JustWatchResource)
    for key in ("tmdb", "justwatch"):
        assert resources[key].app.overlays == "configs/sample.yaml"


def test_nightly_job_selects_every_asset():
    job = build_definitions().resolve_job_def("nightly")
    assert isinstance(job, dg.JobDefinition)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == ASSETS
