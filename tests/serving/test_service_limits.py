"""Rate limits (429 + Retry-After), body size (413), bad input (4xx with a reason, never 500)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from serving.ratelimit import ProcessRateLimiter


def test_per_process_window_slides_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback limiter (limits' MemoryStorage): 60 per minute, then Retry-After until the
    oldest request leaves the window."""
    import types

    import limits.storage.memory

    import serving.ratelimit

    now = [1000.0]
    fake_time = types.SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(limits.storage.memory, "time", fake_time)
    monkeypatch.setattr(serving.ratelimit, "time", fake_time)
    limiter = ProcessRateLimiter(60)
    assert all(limiter.acquire("k").allowed for _ in range(60))
    denied = limiter.acquire("k")
    assert not denied.allowed and denied.retry_after_header == "60"
    assert limiter.acquire("other").allowed
    now[0] = 1030.0
    assert limiter.acquire("k").retry_after_header == "30"
    now[0] = 1060.5
    assert limiter.acquire("k").allowed


def test_anonymous_limit_is_per_ip_and_answers_retry_after(strict_client: TestClient) -> None:
    codes = [strict_client.get("/content/movie:603").status_code for _ in range(10)]
    assert codes == [200] * 10
    r = strict_client.get("/content/movie:603")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json() == {"error": "rate limit exceeded; retry later"}
    r = strict_client.post("/search", json={"query": "space"})
    assert r.status_code == 429


def test_authenticated_limit_is_per_subject(strict_client: TestClient, bearer) -> None:
    for _ in range(3):
        ok = strict_client.post("/recommend", json={"user": "alice"}, headers=bearer("alice"))
        assert ok.status_code == 200
    r = strict_client.post("/recommend", json={"user": "alice"}, headers=bearer("alice"))
    assert r.status_code == 429 and "Retry-After" in r.headers
    r = strict_client.post("/recommend", json={"user": "bob"}, headers=bearer("bob"))
    assert r.status_code == 200, "another subject has its own bucket"


def test_body_over_64_kib_is_413(client: TestClient) -> None:
    big = json.dumps({"query": "x" * (70 * 1024)})
    r = client.post("/search", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "exceeds" in r.json()["error"]

    def chunks():
        for _ in range(80):
            yield b" " * 1024

    r = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search", {}),
        ("/search", {"query": ""}),
        ("/search", {"query": "x", "limit": 101}),
        ("/search", {"query": "x", "limit": 0}),
        ("/search", {"query": "x", "filters": {"country": "usa"}}),
        ("/search", {"query": "x", "filters": {"year_min": "soon"}}),
        ("/search", {"query": "x", "unknown": 1}),
        ("/search", {"query": 42}),
        ("/recommend", {"user": "alice", "limit": 1000}),
        ("/recommend", {"user": "a b"}),
        ("/recommend", {"user": "alice", "context": {"mood": "angry"}}),
        ("/recommend/group", {"members": ["alice"]}),
        ("/recommend/group", {"members": ["alice", "alice"]}),
        ("/recommend/group", {"members": ["alice", "bob"], "strategy": "dictator"}),
        ("/explain", {"user": "alice"}),
        ("/feedback", {"user": "alice", "content_id": "movie:603", "completion": 2}),
    ],
)
def test_bad_input_is_4xx_with_a_reason(client: TestClient, bearer, path: str, body: dict) -> None:
    r = client.post(path, json=body, headers=bearer("alice"))
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["error"]


def test_malformed_json_and_wrong_methods(client: TestClient) -> None:
    r = client.post("/search", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert client.get("/search").status_code == 405
    assert client.post("/content/movie:603").status_code == 405
    assert client.get("/no-such-route").status_code == 404
