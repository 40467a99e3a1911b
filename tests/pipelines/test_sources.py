"""The functions the catalogue assets call, with the recorded sources (files read directly), and
the same functions through the live HTTP clients against the loopback fake servers: same frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from core import PROJECT_ROOT
from core.schemas import validate
from core.settings import Settings
from pipelines.lib import justwatch, sources, tmdb
from pipelines.lib.replay import RecordedJustWatchClient, RecordedTMDBClient
from tests.fakes.justwatch_server import FakeJustWatchServer
from tests.fakes.tmdb_server import RECORDED_API_KEY, FakeTMDBServer

RECORDED = PROJECT_ROOT / "data" / "sample" / "recorded"


def with_sources(settings: Settings, **updates) -> Settings:
    tmdb_cfg = settings.sources.tmdb.model_copy(update=updates.pop("tmdb", {}))
    return settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"tmdb": tmdb_cfg, **updates})}
    )


COUNTRIES = ["US", "GB"]


def fetch_all(
    tmdb_source: tmdb.TMDBSource, jw_source: justwatch.JustWatchSource, pages: int = 20
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    titles = sources.fetch_tmdb_titles(tmdb_source, pages)
    return (
        titles,
        sources.fetch_tmdb_providers(tmdb_source, titles, COUNTRIES),
        sources.fetch_justwatch_offers(jw_source, titles, COUNTRIES),
    )


@pytest.fixture(scope="module")
def recorded_run() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    with RecordedTMDBClient(RECORDED) as t, RecordedJustWatchClient(RECORDED) as j:
        return fetch_all(t, j)


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


def test_recorded_sources_answer_like_the_live_clients_over_the_fakes(recorded_run):
    with (
        FakeTMDBServer(RECORDED) as fake_tmdb,
        FakeJustWatchServer(RECORDED) as fake_jw,
        tmdb.TMDBClient(
            fake_tmdb.base_url,
            api_key=RECORDED_API_KEY,
            exports_url=fake_tmdb.exports_url,
            progress=False,
        ) as live_tmdb,
        justwatch.JustWatchClient(fake_jw.url) as live_jw,
    ):
        live = fetch_all(live_tmdb, live_jw)
    for got, want in zip(recorded_run, live, strict=True):
        assert got.height > 0
        assert got.drop("last_seen", strict=False).equals(want.drop("last_seen", strict=False))


def test_settings_pick_the_source(settings):
    with sources.tmdb_client(settings) as t, sources.justwatch_client(settings) as j:
        assert isinstance(t, RecordedTMDBClient) and isinstance(j, RecordedJustWatchClient)
    live = with_sources(
        settings,
        justwatch=settings.sources.justwatch.model_copy(update={"mode": "live"}),
    )
    with sources.justwatch_client(live) as j:
        assert isinstance(j, justwatch.JustWatchClient)


def test_discover_pages_setting_limits_titles(settings):
    with sources.tmdb_client(settings) as client:
        titles = sources.fetch_tmdb_titles(client, pages=1)
    assert dict(titles.group_by("type").len().iter_rows()) == {"movie": 20, "series": 20}


def test_recorded_sources_raise_the_live_errors():
    with RecordedTMDBClient(RECORDED) as t, RecordedJustWatchClient(RECORDED) as j:
        with pytest.raises(tmdb.TMDBNotFound):
            t.details_many("movie", [999_999_999])
        assert t.details_many("movie", [999_999_999, 27205], skip_missing=True)[0]["id"] == 27205
        with pytest.raises(ValueError, match="IMDb"):
            t.find_imdb("nm0000001")
        with pytest.raises(ValueError, match="kind"):
            t.search("person", "Inception")
        with pytest.raises(justwatch.JustWatchNotFound):
            j.title_offers("tm1", ["US"])
        with pytest.raises(justwatch.JustWatchInputError):
            j.search_titles("Dark", "de")


def test_recorded_source_without_recordings_fails_clearly(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="tmdb"):
        RecordedTMDBClient(tmp_path)


def test_live_mode_without_credentials_fails_clearly(settings, monkeypatch):
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_READ_TOKEN", raising=False)
    live = with_sources(settings, tmdb={"mode": "live", "base_url": "http://127.0.0.1:9/3"})
    with pytest.raises(tmdb.TMDBConfigError, match="TMDB_READ_TOKEN"), sources.tmdb_client(live):
        pass


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
