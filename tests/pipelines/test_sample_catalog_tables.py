"""The sample generator's hand tables are validated data: bad entries fail naming file and entry."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from core import PROJECT_ROOT


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    path = PROJECT_ROOT / "scripts" / "make_sample_catalog.py"
    spec = importlib.util.spec_from_file_location("make_sample_catalog", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while being created
    spec.loader.exec_module(module)
    return module


def _write(tmp_path: Path, generator: ModuleType, section: str, value: object) -> Path:
    raw = yaml.safe_load(generator.DEFAULT_TABLES.read_text(encoding="utf-8"))
    raw[section] = value if not isinstance(value, dict) else {**raw[section], **value}
    path = tmp_path / "catalog_tables.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_tables_load(generator: ModuleType) -> None:
    tables = generator.load_tables()
    assert tables.movie_genres[878] == "Science Fiction"
    assert generator.PROVIDERS["netflix"].package_id == 8
    assert generator.PRICES["US"]["HD"] == (3.99, 14.99)
    assert generator.ORIGIN_OVERRIDES["Amores Perros"] == "MX"


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("jw_genres", {"Drama": "drama"}, "entry jw_genres.Drama"),
        ("country_names", {"usa": "United States"}, "entry country_names.usa"),
        ("subscription_pool", {"crunchyroll": 3}, "unknown provider 'crunchyroll'"),
        ("movie_genres", {1: "Space Opera"}, "jw_genres has no entry for genre 'Space Opera'"),
        ("prices", {"FR": {"old": [1.0, 2.0]}}, "prices.FR: needs old, HD, _4K"),
        ("miniseries", "all", "entry miniseries"),
    ],
)
def test_invalid_tables_name_the_file_and_the_entry(
    tmp_path: Path, generator: ModuleType, section: str, value: object, message: str
) -> None:
    path = _write(tmp_path, generator, section, value)
    with pytest.raises(generator.TablesError) as err:
        generator.load_tables(path)
    assert str(path) in str(err.value) and message in str(err.value)
