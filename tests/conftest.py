"""Shared fixtures: tiny frames, a seeded rng, temporary stores, and the `realdata` skip rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from core import PROJECT_ROOT
from core.settings import Settings, load_settings, workspace_paths

SHARED_DATA = (PROJECT_ROOT.parent / "shared" / "data").resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"realdata: {SHARED_DATA} is not present on this machine")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only reference data sets (tests using it carry the `realdata` marker)."""
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Sample-config settings with every writable path inside ``tmp_path``."""
    return load_settings(
        "configs/sample.yaml", overrides={"paths": workspace_paths(tmp_path / "var")}
    )


def write_tmp_overlay(root: Path) -> Path:
    """An overlay YAML pointing every writable path into ``root`` (used with configs/sample.yaml)."""
    overlay = root / "paths.yaml"
    overlay.write_text(yaml.safe_dump({"paths": workspace_paths(root / "var")}))
    return overlay


@pytest.fixture(scope="session")
def sample_world(tmp_path_factory: pytest.TempPathFactory):
    """The nightly Dagster job run once on the embedded sample in a temporary folder.

    Yields ``(settings, config_files, success)``; tests that need a materialised lake, LanceDB
    index and MLflow champion share it (the run takes a minute, so it happens once per session).
    """
    from pipelines.run import run_nightly

    root = tmp_path_factory.mktemp("sample_world")
    files = ["configs/sample.yaml", str(write_tmp_overlay(root))]
    settings = load_settings(*files)
    success = run_nightly(settings, files, partition_key="2026-11-28")
    yield settings, files, success
