"""POST /feedback (durable, immediate effect) and the user-data routes (preferences, export, erasure)."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from pipelines.lib.feedback import read_erasures
from serving.userdata import profile_path


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
    lines = (feedback_dir / "feedback.jsonl").read_text().splitlines()
    stored = json.loads(lines[-1])
    assert stored["event_id"] == ack["event_id"]
    assert stored["title_id"] == "movie:329865"  # the alias form was canonicalised
    assert stored["context"] == {"mood": "thoughtful", "device": "tv"}


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
    stored = json.loads(profile_path(feedback_dir, "bob").read_text())
    assert stored["preferences"]["country"] == "GB"
    assert not list(profile_path(feedback_dir, "bob").parent.glob(".*tmp"))
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
    assert read_erasures(feedback_dir) == {"carol"}
    assert "carol" not in (feedback_dir / "feedback.jsonl").read_text()
    assert "alice" in (feedback_dir / "feedback.jsonl").read_text()
    assert not profile_path(feedback_dir, "carol").exists()
    # in memory too: carol is now a cold-start user, served popularity-led picks
    status = client.get("/status").json()
    assert status["ready"]
    body = client.post("/explain", json={"user": "carol", "content_id": "movie:807"}, headers=h)
    assert body.json()["evidence"]["nearest_watched"] == []
    assert client.get("/users/carol/export", headers=h).json()["feedback"] == []
