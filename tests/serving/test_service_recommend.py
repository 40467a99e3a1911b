"""POST /recommend, /recommend/group, /explain through the BentoML ASGI app on the fixture world."""

from __future__ import annotations

from starlette.testclient import TestClient

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION


def test_built_in_endpoints_and_status(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/search", "/recommend", "/feedback", "/content/{content_id}"} <= set(spec["paths"])
    status = client.get("/status").json()
    assert status["ready"] is True
    assert status["titles"] == 24
    assert status["mode"] == "hybrid"
    assert status["champion_version"] == "1"
    assert status["serves"] == "challenger"  # which model serves and why (nightly tags)
    assert isinstance(status["serving_reason"], str)


def test_recommend_personal_filtered_and_explained(client: TestClient, bearer) -> None:
    r = client.post("/recommend", json={"user": "alice", "limit": 5}, headers=bearer("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "1"
    assert body["country"] == "US"
    assert body["attribution"] == {
        "metadata": TMDB_ATTRIBUTION,
        "availability": JUSTWATCH_ATTRIBUTION,
    }
    ids = [x["content_id"] for x in body["results"]]
    assert len(ids) == 5
    # alice watched three sci-fi titles: none comes back, and sci-fi leads
    assert not {"movie:27205", "movie:157336", "movie:603"} & set(ids)
    assert ids[0] in {"movie:329865", "movie:78", "tv:70523", "tv:66732"}
    for item in body["results"]:
        assert item["explanation"]
        assert item["offers"], "default profile keeps only titles with a US subscription/free offer"
        assert all(o["country"] == "US" for o in item["offers"])
        assert all(o["kind"] in ("subscription", "free") for o in item["offers"])
        assert item["url"].endswith(f"/content/{item['content_id']}")
        assert abs(sum(item["components"].values()) - item["score"]) < 1e-4


def test_recommend_respects_stored_services(client: TestClient, bearer) -> None:
    r = client.put(
        "/users/alice/preferences",
        json={"services": ["hulu"], "country": "US"},
        headers=bearer("alice"),
    )
    assert r.status_code == 200, r.text
    body = client.post(
        "/recommend", json={"user": "alice", "limit": 10}, headers=bearer("alice")
    ).json()
    assert body["services"] == ["hulu"]
    assert body["results"]
    for item in body["results"]:
        assert {o["provider_id"] for o in item["offers"]} == {"hulu"}


def test_recommend_context_time_and_type(client: TestClient, bearer) -> None:
    body = client.post(
        "/recommend",
        json={
            "user": "bob",
            "limit": 10,
            "context": {"time_available": 60, "content_type": "series", "mood": "funny"},
        },
        headers=bearer("bob"),
    ).json()
    assert body["results"]
    for item in body["results"]:
        assert item["type"] == "series"
        assert item["runtime"] <= 60


def test_group_recommendation_has_member_scores(client: TestClient, bearer) -> None:
    social = ["write:social"]
    assert client.post("/social/friends/bob", headers=bearer("alice", social)).status_code == 200
    assert client.post("/social/friends/alice", headers=bearer("bob", social)).json() == {
        "user": "alice",
        "status": "friends",
    }
    r = client.post(
        "/recommend/group",
        json={"members": ["alice", "bob"], "strategy": "least_misery", "limit": 3},
        headers=bearer("alice"),
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    for item in results:
        assert set(item["member_scores"]) == {"alice", "bob"}
        assert abs(item["score"] - min(item["member_scores"].values())) < 1e-4


def test_group_requires_caller_membership(client: TestClient, bearer) -> None:
    r = client.post("/recommend/group", json={"members": ["alice", "bob"]}, headers=bearer("carol"))
    assert r.status_code == 403
    assert "member" in r.json()["error"]


def test_explain_gives_evidence(client: TestClient, bearer) -> None:
    r = client.post(
        "/explain", json={"user": "alice", "content_id": "movie:329865"}, headers=bearer("alice")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Arrival"
    assert body["evidence"]["matched_genres"][0]["name"] == "Science Fiction"
    assert body["evidence"]["nearest_watched"]
    assert body["explanation"].startswith("Because")


def test_explain_unknown_content_is_404(client: TestClient, bearer) -> None:
    r = client.post(
        "/explain", json={"user": "alice", "content_id": "movie:1"}, headers=bearer("alice")
    )
    assert r.status_code == 404
    assert "movie:1" in r.json()["error"]
