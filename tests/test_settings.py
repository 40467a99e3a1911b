from pathlib import Path

import pytest

from core.settings import ConfigError, load_settings


def test_sample_overlay_merges_and_resolves_paths():
    s = load_settings("configs/sample.yaml")
    assert s.training.rounds == 5
    assert s.paths.lake.is_absolute()
    assert s.paths.mlflow_uri.startswith("sqlite:////")


def test_bad_country_is_rejected_with_file_named(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  countries: [usa]\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_settings(bad)


def test_unknown_key_is_rejected(tmp_path: Path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("trainig:\n  rounds: 3\n")
    with pytest.raises(ConfigError, match="trainig"):
        load_settings(bad)


def test_missing_overlay_names_the_file():
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_settings("configs/nope.yaml")
