"""POST /feedback (durable, immediate effect) and the user-data routes (preferences, export, erasure)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from core.feedback import (
    load_profile_payload,
    read_erasures,
    read_feedback,
    read_feedback_records,
)


def _recommend(client: TestClient, bearer, user: str, **extra) -> list[str]:
    r = client.post("/recommend", json={"user": user, "limit": 5, **extra}, headers=bearer(user))
    assert r.status_code == 200, r.text
    return [x["content_id"] for x in r.json()["results"]]


def test_feedback_is_on_disk_when_acknowledged(client: TestClient, bearer, feedback_dir) -> None:
    r = client.post(
        "/feedback",
        json={
            "user": "alice",
            "content_id": "movie-329865",
            "rating": 4.5,
            "completion": 0.9,
            "context": {"mood": "thoughtful", "device": "tv"},
        },
        headers=bearer("alice"),
    )
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["durable"] is True
    stored = read_feedback_records(feedback_dir)[-1]  # committed in the shared store
    assert stored.event_id == ack["event_id"]
    assert stored.title_id == "movie:329865"  # the alias form was canonicalised
    assert stored.context == {"mood": "thoughtful", "device": "tv"}


def test_feedback_changes_the_next_recommendation(client: TestClient, bearer) -> None:
    before = _recommend(client, bearer, "dave")  # family/animation history
    for tid in ("movie:329865", "movie:78", "tv:70523", "movie:603"):
        client.post(
            "/feedback",
            json={"user": "dave", "content_id": tid, "rating": 5, "watched": True},
            headers=bearer("dave"),
        )
    after = _recommend(client, bearer, "dave")
    assert not {"movie:329865", "movie:78", "tv:70523", "movie:603"} & set(after)
    assert after != before
    assert {"movie:27205", "movie:157336"} & set(after), "sci-fi feedback pulls in sci-fi"


def test_feedback_validation_and_unknown_title(client: TestClient, bearer) -> None:
    h = bearer("alice")
    r = client.post("/feedback", json={"user": "alice", "content_id": "movie:603"}, headers=h)
    assert r.status_code == 400 and "needs a rating" in r.text
    r = client.post(
        "/feedback", json={"user": "alice", "content_id": "movie:603", "rating": 9}, headers=h
    )
    assert r.status_code == 400
    r = client.post(
        "/feedback", json={"user": "alice", "content_id": "movie:999", "rating": 3}, headers=h
    )
    assert r.status_code == 404


def test_preferences_are_stored_atomically_and_validated(
    client: TestClient, bearer, feedback_dir: Path
) -> None:
    h = bearer("bob")
    r = client.put(
        "/users/bob/preferences",
        json={"services": ["netflix"], "country": "GB", "monetization": ["subscription", "rent"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert load_profile_payload(feedback_dir, "bob")["country"] == "GB"
    r = client.put("/users/bob/preferences", json={"country": "gb"}, headers=h)
    assert r.status_code == 422
    r = client.put("/users/bob/preferences", json={"colour": "red"}, headers=h)
    assert r.status_code == 422
    body = client.post("/recommend", json={"user": "bob"}, headers=h).json()
    assert body["country"] == "GB"
    assert all(o["country"] == "GB" for x in body["results"] for o in x["offers"])


def test_export_contains_everything_held(client: TestClient, bearer) -> None:
    h = bearer("carol")
    client.put("/users/carol/preferences", json={"services": ["hulu"]}, headers=h)
    client.post(
        "/feedback", json={"user": "carol", "content_id": "movie:807", "rating": 2}, headers=h
    )
    r = client.get("/users/carol/export", headers=h)
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["user_id"] == "carol"
    assert data["profile"]["services"] == ["hulu"]
    assert [e["title_id"] for e in data["watch_events"]] == [
        "movie:138843",
        "movie:493922",
        "movie:807",
    ]
    assert [f["title_id"] for f in data["feedback"]] == ["movie:807"]


def test_erasure_removes_data_now_and_records_it(
    client: TestClient, bearer, feedback_dir: Path
) -> None:
    h = bearer("carol")
    client.put("/users/carol/preferences", json={"services": ["hulu"]}, headers=h)
    client.post(
        "/feedback", json={"user": "carol", "content_id": "movie:807", "rating": 5}, headers=h
    )
    client.post(
        "/feedback",
        json={"user": "alice", "content_id": "movie:78", "rating": 5},
        headers=bearer("alice"),
    )
    r = client.delete("/users/carol", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["feedback_lines_removed"] == 1 and r.json()["profile_deleted"] is True
    assert set(read_erasures(feedback_dir)) == {"carol"}
    assert set(read_feedback(feedback_dir)["user_id"]) == {"alice"}
    assert load_profile_payload(feedback_dir, "carol") is None
    # in memory too: carol is now a cold-start user, served popularity-led picks
    status = client.get("/status").json()
    assert status["ready"]
    body = client.post("/explain", json={"user": "carol", "content_id": "movie:807"}, headers=h)
    assert body.json()["evidence"]["nearest_watched"] == []
    assert client.get("/users/carol/export", headers=h).json()["feedback"] == []


def test_feedback_after_erasure_is_kept(client: TestClient, bearer, feedback_dir: Path) -> None:
    """Erasure is time-bounded: what the user sends afterwards is stored, served and exported."""
    h = bearer("bob")
    client.post(
        "/feedback", json={"user": "bob", "content_id": "movie:807", "rating": 5}, headers=h
    )
    assert client.delete("/users/bob", headers=h).status_code == 200
    r = client.post(
        "/feedback", json={"user": "bob", "content_id": "movie:603", "rating": 5}, headers=h
    )
    assert r.status_code == 200 and r.json()["durable"] is True
    exported = client.get("/users/bob/export", headers=h).json()
    assert [f["title_id"] for f in exported["feedback"]] == ["movie:603"]
    assert exported["watch_events"] == []  # the lake history is covered by the erasure
    assert read_feedback(feedback_dir).filter(user_id="bob")["title_id"].to_list() == ["movie:603"]
    body = client.post("/explain", json={"user": "bob", "content_id": "movie:27205"}, headers=h)
    assert [w["title_id"] for w in body.json()["evidence"]["nearest_watched"]] == ["movie:603"]
