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


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_layers_base_then_overlays_then_environment_then_overrides(tmp_path: Path, monkeypatch):
    first = _yaml(
        tmp_path / "first.yaml", "training:\n  rounds: 3\n  seed: 7\nserving:\n  port: 4001\n"
    )
    second = _yaml(
        tmp_path / "second.yaml", "training:\n  rounds: 4\nsources:\n  countries: [FR]\n"
    )
    monkeypatch.setenv("MEDIA_GATEWAY_SERVING__PORT", "4002")
    monkeypatch.setenv("MEDIA_GATEWAY_SERVING__WORKERS", "3")
    s = load_settings(first, second, overrides={"serving": {"workers": 5}})
    assert s.training.rounds == 4  # the later overlay wins
    assert s.training.seed == 7  # ...and the sibling key of the earlier one survives (deep merge)
    assert s.training.target_epsilon == 1.0  # base.yaml value kept
    assert s.sources.countries == ["FR"]  # lists replace, they do not concatenate
    assert s.sources.tmdb.base_url == "https://api.themoviedb.org/3"
    assert s.serving.port == 4002  # the environment beats every file
    assert s.serving.workers == 5  # overrides beat the environment
    assert s.serving.host == "127.0.0.1"


def test_environment_lists_are_json(monkeypatch):
    monkeypatch.setenv("MEDIA_GATEWAY_SOURCES__COUNTRIES", '["DE", "AT"]')
    assert load_settings().sources.countries == ["DE", "AT"]


def test_config_variable_picks_overlays_and_arguments_win(tmp_path: Path, monkeypatch):
    a = _yaml(tmp_path / "a.yaml", "training:\n  rounds: 2\n")
    b = _yaml(tmp_path / "b.yaml", "training:\n  rounds: 6\n  seed: 1\n")
    monkeypatch.setenv("MEDIA_GATEWAY_CONFIG", f"{a}, {b}")
    s = load_settings()
    assert (s.training.rounds, s.training.seed) == (6, 1)
    assert load_settings("configs/sample.yaml").training.rounds == 5  # arguments replace the list
    monkeypatch.delenv("MEDIA_GATEWAY_CONFIG")
    assert load_settings().training.rounds == 10  # base.yaml alone


def test_bad_value_error_names_the_file_and_the_key(tmp_path: Path):
    good = _yaml(tmp_path / "good.yaml", "serving:\n  port: 4000\n")
    bad = _yaml(tmp_path / "bad.yaml", "serving:\n  workers: 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(good, bad)
    line = next(x for x in str(info.value).splitlines() if "serving.workers" in x)
    assert str(bad) in line and "good.yaml" not in line
    assert "greater than or equal to 1" in line and "got 0" in line


def test_value_overridden_by_a_later_file_is_blamed_on_that_file(tmp_path: Path):
    early = _yaml(tmp_path / "early.yaml", "training:\n  model: als\n")
    late = _yaml(tmp_path / "late.yaml", "training:\n  model: nope\n")
    with pytest.raises(ConfigError, match=rf"training\.model \({late}\).*'nope'"):
        load_settings(early, late)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("MEDIA_GATEWAY_TRAINING__ROUNDS", "many")
    with pytest.raises(
        ConfigError,
        match=r"training\.rounds \(environment variable MEDIA_GATEWAY_TRAINING__ROUNDS\)",
    ):
        load_settings()


def test_invalid_yaml_and_non_mapping_name_the_file(tmp_path: Path):
    broken = _yaml(tmp_path / "broken.yaml", "training: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: invalid YAML"):
        load_settings(broken)
    listed = _yaml(tmp_path / "listed.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="listed.yaml: top level must be a mapping"):
        load_settings(listed)
