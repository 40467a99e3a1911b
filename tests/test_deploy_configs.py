"""The scale-out configurations the README points to are valid for the code that reads them."""

from pathlib import Path

import yaml

from core import PROJECT_ROOT
from core.settings import load_settings

DEPLOY = PROJECT_ROOT / "configs" / "deploy"


def test_production_overlay_validates():
    s = load_settings(DEPLOY / "production.yaml")
    assert s.sources.tmdb.mode == "live" and s.sources.justwatch.mode == "live"
    assert s.paths.lancedb.startswith("s3://")  # object-store URI kept as is
    assert s.paths.mlflow_uri.startswith("postgresql")


def test_dagster_run_configs_target_the_app_resource():
    for name in ("dagster-k8s-run.yaml", "dagster-multiprocess-run.yaml"):
        cfg = yaml.safe_load((DEPLOY / name).read_text())
        overlays = cfg["resources"]["app"]["config"]["overlays"]
        for overlay in overlays.split(","):
            assert (PROJECT_ROOT / overlay).is_file(), overlay


def test_multiprocess_run_config_is_accepted_by_the_nightly_job():
    from pipelines.definitions import build_definitions

    job = build_definitions().resolve_job_def("nightly")
    cfg = yaml.safe_load((DEPLOY / "dagster-multiprocess-run.yaml").read_text())
    assert job.run_config_schema.config_type is not None
    from dagster import validate_run_config

    validate_run_config(job, cfg)


def test_instance_and_compose_files_parse():
    for name in ("dagster-instance.yaml", "docker-compose.yaml"):
        assert isinstance(yaml.safe_load(Path(DEPLOY / name).read_text()), dict)
