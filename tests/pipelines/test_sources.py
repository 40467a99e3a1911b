"""The functions the catalogue assets call, in recorded mode (fake servers over real HTTP)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from core import PROJECT_ROOT
from core.schemas import validate
from core.settings import Settings
from pipelines.lib import sources, tmdb

RECORDED = PROJECT_ROOT / "data" / "sample" / "recorded"


def with_sources(settings: Settings, **updates) -> Settings:
    tmdb_cfg = settings.sources.tmdb.model_copy(update=updates.pop("tmdb", {}))
    return settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"tmdb": tmdb_cfg, **updates})}
    )


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    from core.settings import load_settings

    settings = load_settings(
        "configs/sample.yaml",
        overrides={
            "paths": {"lake": str(tmp_path_factory.mktemp("lake"))},
            "sources": {"countries": ["US", "GB"], "tmdb": {"discover_pages": 20}},
        },
    )
    titles = sources.fetch_tmdb_titles(settings)
    return (
        titles,
        sources.fetch_tmdb_providers(settings, titles),
        sources.fetch_justwatch_offers(settings, titles),
    )


def test_recorded_titles(recorded_run):
    titles, _, _ = recorded_run
    validate(titles, "titles")
    assert 280 <= titles.height <= 340
    assert titles["title_id"].is_unique().all()
    kinds = dict(titles.group_by("type").len().iter_rows())
    assert kinds["movie"] >= 200 and kinds["series"] >= 50
    assert titles.filter(pl.col("title_id") == "movie:27205")["title"].item() == "Inception"
    assert titles.filter(pl.col("title_id") == "tv:1396")["directors"].item().to_list() == [
        "Vince Gilligan"
    ]
    assert titles["overview"].is_not_null().all() and titles["content_hash"].is_not_null().all()


def test_recorded_availability_in_two_countries(recorded_run):
    titles, providers, offers = recorded_run
    for frame, source in ((providers, "tmdb"), (offers, "justwatch")):
        validate(frame, "availability")
        assert set(frame["country"]) == {"US", "GB"}
        assert set(frame["source"]) == {source}
        assert frame["title_id"].is_in(titles["title_id"].implode()).all()
        assert frame["title_id"].n_unique() > 0.9 * titles.height
    flatrate = offers.filter(pl.col("monetization") == "FLATRATE")
    assert {"netflix", "amazonprime", "disneyplus"} <= set(flatrate["provider_id"])
    assert offers.filter(pl.col("provider_id") == "hulu")["country"].unique().to_list() == ["US"]
    disney = offers.filter(pl.col("title_id") == "movie:862", pl.col("monetization") == "FLATRATE")
    assert set(disney["provider_id"]) == {"disneyplus"}


def test_discover_pages_setting_limits_titles(settings):
    titles = sources.fetch_tmdb_titles(with_sources(settings, tmdb={"discover_pages": 1}))
    assert dict(titles.group_by("type").len().iter_rows()) == {"movie": 20, "series": 20}


def test_live_mode_without_credentials_fails_clearly(settings, monkeypatch):
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_READ_TOKEN", raising=False)
    live = with_sources(settings, tmdb={"mode": "live", "base_url": "http://127.0.0.1:9/3"})
    with pytest.raises(tmdb.TMDBConfigError, match="TMDB_READ_TOKEN"):
        sources.fetch_tmdb_titles(live)


def test_platform_catalogs_not_configured(settings):
    extra, availability, quarantine = sources.load_platform_catalogs(
        with_sources(settings, platform_catalogs_dir=None), pl.DataFrame()
    )
    assert (extra.height, availability.height, quarantine.height) == (0, 0, 0)
    validate(extra, "titles")
    validate(availability, "availability")
    validate(quarantine, "quarantine")


def test_recordings_are_reproducible(tmp_path: Path):
    out = tmp_path / "recorded"
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "make_sample_catalog.py"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    produced = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(RECORDED) for p in RECORDED.rglob("*") if p.is_file())
    assert produced == committed
    different = [p for p in produced if (out / p).read_bytes() != (RECORDED / p).read_bytes()]
    assert different == [], "data/sample/recorded is stale: rerun scripts/make_sample_catalog.py"
