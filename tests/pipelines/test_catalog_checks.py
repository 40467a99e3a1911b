"""Blocking catalogue checks fail on corrupted input (real Dagster materialisations, tmp lake)."""

import dagster as dg
import polars as pl

from core.lake import write_table
from core.schemas import empty
from core.settings import load_settings
from pipelines.defs.catalog import assets as catalog_assets
from pipelines.defs.catalog import checks as catalog_checks
from pipelines.defs.resources import MediaGatewayConfig
from tests.conftest import write_tmp_overlay


def _check_titles(tmp_path, tmdb_titles: pl.DataFrame) -> dg.AssetCheckEvaluation:
    """Materialise `titles` from the given TMDB rows and return its blocking check's verdict."""
    overlay = write_tmp_overlay(tmp_path)
    settings = load_settings("configs/sample.yaml", overlay)
    write_table(settings.paths.lake, "tmdb_titles", tmdb_titles)
    write_table(settings.paths.lake, "platform_titles", empty("titles"))
    result = dg.materialize(
        [catalog_assets.titles, catalog_checks.titles_are_valid],
        resources={"app": MediaGatewayConfig(overlays=f"configs/sample.yaml,{overlay}")},
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_null_ids_and_names_fail_the_blocking_check(tmp_path):
    bad = pl.DataFrame({"title_id": ["movie:1", None, "movie:3"], "title": ["A", "B", None]})
    evaluation = _check_titles(tmp_path, bad)
    assert not evaluation.passed
    assert evaluation.metadata["null_title_ids"].value == 1
    assert evaluation.metadata["null_titles"].value == 1


def test_clean_titles_pass(tmp_path):
    good = pl.DataFrame({"title_id": ["movie:1", "movie:2"], "title": ["A", "B"]})
    evaluation = _check_titles(tmp_path, good)
    assert evaluation.passed
    assert evaluation.metadata["rows_observed"].value == 2
