"""The shared retry transport (tenacity) under the TMDB and JustWatch clients, against the loopback
fake servers: Retry-After honoured, exponential backoff with jitter, 4xx (but 429) never retried,
and a give-up error that names the URL without the API key."""

from __future__ import annotations

import socket

import httpx
import pytest

from core import PROJECT_ROOT
from pipelines.lib import justwatch as jw
from pipelines.lib import tmdb
from pipelines.lib.http_retry import (
    RetriesExhausted,
    RetryPolicy,
    RetryTransport,
    is_retryable_status,
)
from tests.fakes.justwatch_server import FakeJustWatchServer
from tests.fakes.tmdb_server import RECORDED_API_KEY, FakeTMDBServer

RECORDED = PROJECT_ROOT / "data" / "sample" / "recorded"


@pytest.fixture
def fake_tmdb():
    with FakeTMDBServer(RECORDED) as server:
        yield server


@pytest.fixture
def fake_jw():
    with FakeJustWatchServer(RECORDED) as server:
        yield server


def tmdb_client(base_url: str, sleeps: list[float], **kw) -> tmdb.TMDBClient:
    kw.setdefault("exports_url", base_url)
    return tmdb.TMDBClient(
        base_url, api_key=RECORDED_API_KEY, sleep=sleeps.append, progress=False, **kw
    )


def test_retryable_statuses():
    assert [s for s in (400, 401, 403, 404, 409, 422, 429) if is_retryable_status(s)] == [429]
    assert [s for s in range(500, 512) if not is_retryable_status(s)] == [501]


def test_backoff_is_exponential_with_bounded_jitter(fake_tmdb):
    sleeps: list[float] = []
    fake_tmdb.inject_429(4, retry_after=None)
    with tmdb_client(fake_tmdb.base_url, sleeps, backoff_base=0.5, jitter=0.25) as client:
        client.genres("movie")
    assert len(sleeps) == 4
    for n, wait in enumerate(sleeps):
        assert 0.5 * 2**n <= wait <= 0.5 * 2**n + 0.25
    assert len({round(w - 0.5 * 2**n, 9) for n, w in enumerate(sleeps)}) > 1  # jitter varies


def test_waits_are_capped_at_max_wait(fake_tmdb):
    sleeps: list[float] = []
    fake_tmdb.inject_429(2, retry_after=3600)
    with tmdb_client(fake_tmdb.base_url, sleeps, max_wait=5.0) as client:
        client.genres("movie")
    assert sleeps == [5.0, 5.0]


def test_tmdb_give_up_names_the_url_without_the_key(fake_tmdb):
    sleeps: list[float] = []
    fake_tmdb.inject_429(10, retry_after=1)
    with (
        tmdb_client(fake_tmdb.base_url, sleeps, max_retries=3) as client,
        pytest.raises(tmdb.TMDBRateLimited) as info,
    ):
        client.details("movie", 27205)
    gave_up = info.value.__cause__
    assert isinstance(gave_up, RetriesExhausted)
    assert (gave_up.attempts, gave_up.status) == (4, 429)
    assert str(gave_up).startswith(f"GET {fake_tmdb.base_url}/movie/27205 failed after 4 attempts")
    assert RECORDED_API_KEY not in str(gave_up) and "api_key" not in str(gave_up)
    assert sleeps == [1.0, 1.0, 1.0]


def test_connection_errors_are_retried_then_given_up():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    base = f"http://127.0.0.1:{port}/3"
    with (
        tmdb_client(base, sleeps, max_retries=2, jitter=0.0, backoff_base=0.1) as client,
        pytest.raises(tmdb.TMDBTransportError) as info,
    ):
        client.genres("tv")
    assert sleeps == [0.1, 0.2]
    message = str(info.value)
    assert f"GET {base}/genre/tv/list failed after 3 attempts: ConnectError" in message
    assert RECORDED_API_KEY not in message
    assert isinstance(info.value.__cause__, RetriesExhausted)
    assert isinstance(info.value.__cause__.__cause__, httpx.ConnectError)


def test_4xx_other_than_429_is_never_retried(fake_tmdb, fake_jw):
    sleeps: list[float] = []
    with (
        tmdb.TMDBClient(fake_tmdb.base_url, api_key="wrong", sleep=sleeps.append) as client,
        pytest.raises(tmdb.TMDBAuthError),
    ):
        client.genres("movie")
    assert len(fake_tmdb.api_requests()) == 1 and sleeps == []
    fake_jw.inject_status(404, count=3)
    with (
        jw.JustWatchClient(fake_jw.url, sleep=sleeps.append) as client,
        pytest.raises(jw.JustWatchHTTPError) as info,
    ):
        client.search_titles("Dark", "DE")
    assert info.value.status == 404 and len(fake_jw.requests) == 1 and sleeps == []


def test_justwatch_503_retry_after_is_honoured_and_gives_up_clearly(fake_jw):
    sleeps: list[float] = []
    fake_jw.inject_status(503, count=1, retry_after=4)
    with jw.JustWatchClient(fake_jw.url, sleep=sleeps.append) as client:
        assert client.search_titles("Dark", "DE")
    assert sleeps == [4.0]
    fake_jw.inject_status(503, count=9, retry_after=2)
    with (
        jw.JustWatchClient(fake_jw.url, sleep=sleeps.append, max_retries=2) as client,
        pytest.raises(jw.JustWatchHTTPError) as info,
    ):
        client.search_titles("Dark", "DE")
    assert info.value.status == 503
    assert sleeps == [4.0, 2.0, 2.0]
    assert str(info.value.__cause__) == f"POST {fake_jw.url} failed after 3 attempts: HTTP 503"


def test_transport_policy_is_validated():
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    transport = RetryTransport(RetryPolicy(), name="x")
    transport.close()
