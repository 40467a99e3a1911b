"""POST /search: semantic results, filters, intent echo, cursors, anonymous use, caching."""

from __future__ import annotations

from bentoml import get_current_service
from starlette.testclient import TestClient


def test_semantic_search_finds_the_described_title(client: TestClient) -> None:
    r = client.post("/search", json={"query": "movie about dreams and stealing secrets"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["content_id"] == "movie:27205"
    assert body["intent"]["parser"] == "local"
    assert body["attribution"]["availability"].startswith("Streaming availability")
    first = body["results"][0]
    assert first["offers"] and first["offers"][0]["deep_link"].startswith("https://")
    assert first["similarity"] > 0.3
    assert first["score"] > 0


def test_filters_and_intent_are_applied_and_echoed(client: TestClient) -> None:
    r = client.post(
        "/search",
        json={
            "query": "scary films under 2 hours",
            "filters": {"services": ["netflix"], "country": "US", "content_type": "movie"},
            "limit": 10,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intent"]["max_runtime"] == 120
    assert body["applied_filters"]["services"] == ["netflix"]
    assert body["results"]
    for item in body["results"]:
        assert item["type"] == "movie"
        assert item["runtime"] <= 120
        assert {o["provider_id"] for o in item["offers"]} == {"netflix"}
    assert body["results"][0]["content_id"] == "movie:138843"  # The Conjuring


def test_cursor_pages_through_all_results(client: TestClient) -> None:
    seen: list[str] = []
    body = client.post("/search", json={"query": "film", "limit": 7}).json()
    total = body["total"]
    pages = 0
    while True:
        seen += [x["content_id"] for x in body["results"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        body = client.post(
            "/search", json={"query": "film", "limit": 7, "cursor": body["next_cursor"]}
        ).json()
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 7)


def test_cursor_of_another_query_is_rejected(client: TestClient) -> None:
    cursor = client.post("/search", json={"query": "film", "limit": 2}).json()["next_cursor"]
    r = client.post("/search", json={"query": "comedy", "limit": 2, "cursor": cursor})
    assert r.status_code == 400
    assert r.json() == {"error": "cursor belongs to another query"}
    r = client.post("/search", json={"query": "film", "cursor": "!!garbage!!"})
    assert r.status_code == 400


def test_services_without_country_use_the_users_or_the_default_country(
    client: TestClient, bearer
) -> None:
    """ "comedies on netflix" (a service in the query or the filters, no country) is answered in
    the caller's country (their preferences), anonymously in the default profile's (US); it was a
    400 that the README's own example ran into."""
    for body in (
        {"query": "film", "filters": {"services": ["netflix"]}},
        {"query": "comedies on netflix"},
    ):
        r = client.post("/search", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["applied_filters"]["country"] == "US"
        for hit in r.json()["results"]:
            assert any(
                o["country"] == "US" and o["provider_id"] == "netflix" for o in hit["offers"]
            )
    alice = bearer("alice")
    client.put("/users/alice/preferences", json={"country": "GB"}, headers=alice)
    r = client.post("/search", json={"query": "film on netflix", "user": "alice"}, headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["applied_filters"]["country"] == "GB"
    assert [h["content_id"] for h in r.json()["results"]] == ["movie:27205"]


def test_personalised_search_needs_own_token(client: TestClient, bearer) -> None:
    r = client.post("/search", json={"query": "a good movie", "user": "alice"})
    assert r.status_code == 401
    r = client.post(
        "/search", json={"query": "a good movie", "user": "alice"}, headers=bearer("alice")
    )
    assert r.status_code == 200, r.text


def test_search_results_are_cached_until_feedback(client: TestClient, bearer) -> None:
    cache = get_current_service().gateway.search_cache
    q = {"query": "space travel", "user": "alice", "limit": 5}
    headers = bearer("alice")
    first = client.post("/search", json=q, headers=headers).json()
    hits = cache.hits
    assert client.post("/search", json=q, headers=headers).json() == first
    assert cache.hits == hits + 1
    client.post(
        "/feedback",
        json={"user": "alice", "content_id": "movie:329865", "rating": 5},
        headers=headers,
    )
    client.post("/search", json=q, headers=headers)
    assert cache.hits == hits + 1, "feedback from alice drops her cached pages"
