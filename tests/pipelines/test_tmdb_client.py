"""TMDB client against the fake TMDB server over real HTTP, and the pure converters."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import polars as pl
import pytest

from core import PROJECT_ROOT
from core.schemas import ALIAS
from pipelines.lib import tmdb
from pipelines.lib.http_retry import retry_after_seconds
from tests.fakes.tmdb_server import RECORDED_API_KEY, FakeTMDBServer

RECORDED = PROJECT_ROOT / "data" / "sample" / "recorded"
EXPORT_DAY = date(2026, 11, 28)


@pytest.fixture
def fake():
    with FakeTMDBServer(RECORDED) as server:
        yield server


def make_client(
    fake: FakeTMDBServer, sleeps: list[float] | None = None, **kwargs
) -> tmdb.TMDBClient:
    kwargs.setdefault("api_key", RECORDED_API_KEY)
    kwargs.setdefault("jitter", 0.0)
    return tmdb.TMDBClient(
        fake.base_url,
        exports_url=fake.exports_url,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        progress=False,
        **kwargs,
    )


def test_discover_stops_at_total_pages(fake):
    with make_client(fake) as client:
        results = list(client.discover("tv", pages=50))
    pages = [r.query["page"] for r in fake.api_requests("/3/discover/tv")]
    assert pages == ["1", "2", "3", "4"]  # 65 series, 20 a page
    assert len({r["id"] for r in results}) == len(results) == 65


def test_discover_never_requests_past_page_500(fake):
    fake.discover_total_pages = 600
    with make_client(fake) as client:
        results = list(client.discover("movie", pages=1000))
    pages = [int(r.query["page"]) for r in fake.api_requests("/3/discover/movie")]
    assert pages == list(range(1, 501))
    # the 14 recorded pages (262 movies) repeat: 35 full cycles, then 10 pages of 20
    assert len(results) == 35 * 262 + 10 * 20


def test_page_501_is_an_invalid_page_error(fake):
    response = httpx.get(
        fake.base_url + "/discover/movie", params={"page": 501, "api_key": RECORDED_API_KEY}
    )
    error = tmdb.error_from_response(response)
    assert isinstance(error, tmdb.TMDBInvalidPage)
    assert (error.status, error.code) == (400, 22)


def test_429_honours_retry_after(fake):
    sleeps: list[float] = []
    fake.inject_429(2, retry_after=3)
    with make_client(fake, sleeps) as client:
        genres = client.genres("movie")
    assert genres[878] == "Science Fiction"
    assert sleeps == [3.0, 3.0]
    assert len(fake.api_requests()) == 3


def test_429_with_http_date_retry_after():
    later = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    now = later - timedelta(seconds=7)
    assert retry_after_seconds(format_datetime(later, usegmt=True), now=now) == 7.0
    assert retry_after_seconds("soon") is None


def test_429_without_retry_after_backs_off_exponentially(fake):
    sleeps: list[float] = []
    fake.inject_429(3, retry_after=None)
    with make_client(fake, sleeps, backoff_base=0.5) as client:
        client.genres("tv")
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_exhausted_raise_rate_limited(fake):
    sleeps: list[float] = []
    fake.inject_429(10, retry_after=1)
    with (
        make_client(fake, sleeps, max_retries=2) as client,
        pytest.raises(tmdb.TMDBRateLimited) as info,
    ):
        client.details("movie", 27205)
    assert (info.value.status, info.value.code) == (429, 25)
    assert len(fake.api_requests()) == 3
    assert sleeps == [1.0, 1.0]


def test_bad_key_is_an_auth_error(fake):
    with (
        make_client(fake, api_key="not-the-key") as client,
        pytest.raises(tmdb.TMDBAuthError) as info,
    ):
        client.genres("movie")
    assert (info.value.status, info.value.code) == (401, 7)
    assert "not-the-key" not in str(info.value)


def test_bearer_token_authenticates(fake):
    with make_client(fake, api_key=None, bearer_token=RECORDED_API_KEY) as client:
        assert client.genres("tv")[10765] == "Sci-Fi & Fantasy"
    assert "api_key" not in fake.api_requests()[0].query
    with (
        make_client(fake, api_key=None, bearer_token="wrong") as client,
        pytest.raises(tmdb.TMDBAuthError),
    ):
        client.genres("tv")


def test_not_found(fake):
    with make_client(fake) as client, pytest.raises(tmdb.TMDBNotFound) as info:
        client.details("movie", 1)
    assert (info.value.status, info.value.code) == (404, 34)


def test_append_to_response_is_sent_and_honoured(fake):
    with make_client(fake) as client:
        full = client.details("movie", 27205)
        credits_only = client.details("movie", 27205, append=("credits",))
    assert set(tmdb.DEFAULT_APPEND) <= full.keys()
    assert "credits" in credits_only and "keywords" not in credits_only
    assert "translations" not in credits_only
    sent = [r.query.get("append_to_response") for r in fake.api_requests("/3/movie/27205")]
    assert sent == [
        "credits,keywords,external_ids,alternative_titles,translations",
        "credits",
    ]


def test_alternative_titles_and_translations_become_aliases(fake):
    with make_client(fake) as client:
        movie = tmdb.details_to_title("movie", client.details("movie", 76341))
        series = tmdb.details_to_title("tv", client.details("tv", 80968))
        plain = tmdb.details_to_title("movie", client.details("movie", 27205))
    assert {"country": "BR", "language": "pt", "title": "Mad Max: Estrada da Fúria"} in movie[
        "aliases"
    ]
    # alternative titles carry a country but no language
    assert {"country": "US", "language": None, "title": "Mad Max 4"} in movie["aliases"]
    # TV alternative titles come as "results", not "titles"
    assert {"country": "PL", "language": "pl", "title": "Narcos: Meksyk"} in series["aliases"]
    # the title's own name (its English translation) is not repeated as an alias
    assert plain["aliases"] == []
    assert all(a["title"] != movie["title"] for a in movie["aliases"])
    frame = tmdb.titles_frame([movie, series, plain])
    assert frame.schema["aliases"] == pl.List(ALIAS)


def test_aliases_from_both_wire_shapes():
    details = {
        "alternative_titles": {"results": [{"iso_3166_1": "DE", "title": "Haus", "type": ""}]},
        "translations": {
            "translations": [
                {"iso_3166_1": "PL", "iso_639_1": "pl", "data": {"name": "Dom", "overview": ""}},
                {"iso_3166_1": "FR", "iso_639_1": "fr", "data": {"name": ""}},
                {"iso_3166_1": "US", "iso_639_1": "en", "data": {"name": "House"}},
            ]
        },
    }
    assert tmdb.aliases_of("tv", details, ["House"]) == [
        {"country": "DE", "language": None, "title": "Haus"},
        {"country": "PL", "language": "pl", "title": "Dom"},
    ]
    # a movie reads "titles" and translation "title": the TV keys give nothing
    assert tmdb.aliases_of("movie", details) == []


def test_search_by_title_and_year(fake):
    with make_client(fake) as client:
        both = client.search("movie", "Nosferatu")
        old = client.search("movie", "Nosferatu", year=1922)
        translated = client.search("tv", "Narcos: Meksyk", year=2018)
        nothing = client.search("movie", "Grandma's 80th Birthday: The Movie")
    assert [r["id"] for r in both] == [426063, 653]  # by popularity
    assert [(r["id"], r["release_date"]) for r in old] == [(653, "1922-02-16")]
    assert [(r["id"], r["name"]) for r in translated] == [(80968, "Narcos: Mexico")]
    assert nothing == []
    sent = fake.api_requests("/3/search/")
    assert sent[1].query["primary_release_year"] == "1922"
    assert sent[2].query["first_air_date_year"] == "2018"
    with pytest.raises(ValueError, match="empty"):
        client.search("movie", "  ")


def test_find_by_imdb_id(fake):
    with make_client(fake) as client:
        found = client.find_imdb("tt0013442")
        series = client.find_imdb("tt8714904")
        unknown = client.find_imdb("tt0000001")
        with pytest.raises(ValueError, match="IMDb"):
            client.find_imdb("nm0000001")
    assert [r["id"] for r in found["movie"]] == [653] and found["tv"] == []
    assert [r["id"] for r in series["tv"]] == [80968]
    assert unknown == {"movie": [], "tv": []}
    assert {r.query["external_source"] for r in fake.api_requests("/3/find/")} == {"imdb_id"}
    response = httpx.get(
        f"{fake.base_url}/find/tt0013442",
        params={"external_source": "tvdb_id", "api_key": RECORDED_API_KEY},
    )
    assert response.status_code == 400 and response.json()["status_code"] == 5


def test_details_many_respects_the_concurrency_bound():
    ids = [27205, 157336, 155, 11324, 77, 577922, 807, 210577, 146233, 1949, 1124, 862]
    with (
        FakeTMDBServer(RECORDED, latency=0.05) as fake,
        make_client(fake, max_concurrency=3) as client,
    ):
        details = client.details_many("movie", ids)
    assert [d["id"] for d in details] == ids
    assert fake.max_in_flight == 3


def test_details_many_missing_ids(fake):
    with make_client(fake) as client:
        assert [d["id"] for d in client.details_many("movie", [1, 27205], skip_missing=True)] == [
            27205
        ]
        with pytest.raises(tmdb.TMDBNotFound):
            client.details_many("movie", [27205, 1])


def test_daily_export_is_downloaded_and_parsed(fake):
    with make_client(fake) as client:
        movies = client.daily_export_ids("movie", EXPORT_DAY)
        series = client.daily_export_ids("tv", EXPORT_DAY)
        with pytest.raises(tmdb.TMDBNotFound):
            client.daily_export_ids("movie", EXPORT_DAY - timedelta(days=1))
    assert len(movies) == 262 and len(series) == 65
    assert {
        "adult": False,
        "id": 27205,
        "original_title": "Inception",
        "popularity": 98.4,
        "video": False,
    } in movies
    assert {r["id"] for r in series} >= {1396, 66732}


def test_malformed_export_line_is_named(tmp_path: Path):
    (tmp_path / "tmdb" / "exports").mkdir(parents=True)
    lines = b'{"id": 1, "original_title": "A"}\n{"id": 2, "original_title"\n'
    (tmp_path / "tmdb" / "exports" / "movie_ids_11_28_2026.json.gz").write_bytes(
        gzip.compress(lines)
    )
    with (
        FakeTMDBServer(tmp_path) as fake,
        make_client(fake) as client,
        pytest.raises(tmdb.TMDBPayloadError, match="line 2"),
    ):
        client.daily_export_ids("movie", EXPORT_DAY)


def test_from_env(monkeypatch):
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_READ_TOKEN", raising=False)
    with pytest.raises(tmdb.TMDBConfigError, match="TMDB_API_KEY"):
        tmdb.TMDBClient.from_env()
    client = tmdb.TMDBClient.from_env(environ={"TMDB_API_KEY": "k", "TMDB_READ_TOKEN": "t"})
    assert client._http.headers["Authorization"] == "Bearer t"
    client.close()


def test_movie_details_to_title(fake):
    with make_client(fake) as client:
        row = tmdb.details_to_title("movie", client.details("movie", 27205))
    assert row["title_id"] == "movie:27205" and row["type"] == "movie"
    assert row["imdb_id"] == "tt1375666" and row["year"] == 2010 and row["runtime"] == 148
    assert row["release_date"] == date(2010, 7, 15)
    assert row["directors"] == ["Christopher Nolan"]
    assert row["cast"][0] == "Leonardo DiCaprio"
    assert row["genres"] == ["Action", "Science Fiction", "Adventure"]
    assert "dream" in row["keywords"]
    assert len(row["content_hash"]) == 64


def test_tv_details_to_title(fake):
    with make_client(fake) as client:
        row = tmdb.details_to_title("tv", client.details("tv", 1396))
    assert row["title_id"] == "tv:1396" and row["type"] == "series"
    assert row["title"] == "Breaking Bad" and row["year"] == 2008
    assert row["directors"] == ["Vince Gilligan"]  # creators
    assert row["runtime"] == 47  # first episode_run_time
    assert row["imdb_id"] == "tt0903747"  # from external_ids
    assert "chemistry teacher" in row["keywords"]


def test_cast_is_top_ten_by_order_and_hash_follows_content():
    details = {
        "id": 5,
        "title": "X",
        "release_date": "",
        "runtime": 0,
        "credits": {
            "cast": [{"name": f"actor{i}", "order": i} for i in reversed(range(12))],
            "crew": [{"name": "D", "job": "Director"}, {"name": "P", "job": "Producer"}],
        },
    }
    row = tmdb.details_to_title("movie", details)
    assert row["cast"] == [f"actor{i}" for i in range(10)]
    assert row["directors"] == ["D"]
    assert row["runtime"] is None and row["year"] is None
    other = tmdb.details_to_title("movie", {**details, "overview": "A heist in a dream."})
    assert other["content_hash"] != row["content_hash"]
    with pytest.raises(tmdb.TMDBPayloadError, match="bad date"):
        tmdb.details_to_title("movie", {**details, "release_date": "2010-13-45"})


def test_providers_to_availability(fake):
    with make_client(fake) as client:
        payload = client.watch_providers("movie", 27205)
    rows = tmdb.providers_to_availability("movie", payload, countries=["US"])
    frame = tmdb.availability_frame(rows)
    assert set(frame["country"]) == {"US"}
    assert set(frame["source"]) == {"tmdb"}
    assert frame["deep_link"].str.starts_with("https://www.themoviedb.org/movie/27205").all()
    monetizations = set(frame["monetization"])
    assert {"RENT", "BUY"} <= monetizations <= {"FLATRATE", "RENT", "BUY", "ADS", "FREE"}
    assert "itunes" in set(frame["provider_id"])
    assert frame["price"].is_null().all()


def test_unknown_provider_ids_keep_their_tmdb_id():
    payload = {
        "id": 1,
        "results": {"FR": {"link": "l", "free": [{"provider_id": 999999, "provider_name": "New"}]}},
    }
    (row,) = tmdb.providers_to_availability("tv", payload)
    assert (row["title_id"], row["provider_id"], row["monetization"]) == (
        "tv:1",
        "tmdb:999999",
        "FREE",
    )
