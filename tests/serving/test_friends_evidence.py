""" "Friends are watching" evidence in /recommend, /explain and GraphQL, through the running service.

alice watched SCIFI[:3]; the sf* users watched overlapping sci-fi windows, so the titles alice is
recommended are in their histories. Only friends whose activity setting admits alice may be named,
and only for titles their activity page would show her; cached answers must follow every change.
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.serving.conftest import ALL_SCOPES, HISTORIES, TITLES
from tests.serving.test_social_service import Bearer, befriend

NAMES = {tid: title for tid, _, title, *_ in TITLES}
CALLER = "alice"
TARGET = "movie:329865"  # in sf1..sf4's histories, not in alice's
EVERY = ALL_SCOPES


def _h(bearer: Bearer, user: str) -> dict[str, str]:
    return bearer(user, EVERY)


def privacy(client: TestClient, bearer: Bearer, user: str, activity: str) -> None:
    r = client.put("/social/privacy", json={"activity": activity}, headers=_h(bearer, user))
    assert r.status_code == 200, r.text


def recommend(client: TestClient, bearer: Bearer) -> dict[str, dict[str, Any]]:
    r = client.post("/recommend", json={"user": CALLER, "limit": 100}, headers=_h(bearer, CALLER))
    assert r.status_code == 200, r.text
    return {item["content_id"]: item for item in r.json()["results"]}


def explain(client: TestClient, bearer: Bearer, tid: str = TARGET) -> dict[str, Any]:
    r = client.post(
        "/explain", json={"user": CALLER, "content_id": tid}, headers=_h(bearer, CALLER)
    )
    assert r.status_code == 200, r.text
    return r.json()


def named_friends(client: TestClient, bearer: Bearer) -> dict[str, list[str]]:
    """Title -> friends named in alice's recommendations (titles with nobody named left out)."""
    return {
        tid: item["evidence"]["friends_watched"]
        for tid, item in recommend(client, bearer).items()
        if item["evidence"]["friends_watched"]
    }


def test_visible_friends_are_named_and_the_cache_follows_every_change(
    client: TestClient, bearer
) -> None:
    assert TARGET in HISTORIES["sf1"] and TARGET in HISTORIES["sf2"]
    assert TARGET not in HISTORIES[CALLER]
    befriend(client, bearer, CALLER, "sf1")
    befriend(client, bearer, CALLER, "sf2")
    # friends, but both private by default: nothing, and the answer is cached
    assert named_friends(client, bearer) == {}
    assert explain(client, bearer)["evidence"]["friends_watched"] == []
    # a privacy change must not be answered from the cache
    privacy(client, bearer, "sf1", "friends")
    privacy(client, bearer, "sf2", "public")
    named = named_friends(client, bearer)
    assert named[TARGET] == ["sf1", "sf2"]
    for tid, friends in named.items():
        for friend in friends:
            assert tid in HISTORIES[friend]
    item = recommend(client, bearer)[TARGET]
    assert "2 friends watched this (sf1 and sf2)" in item["explanation"]
    assert item["explanation"] == item["evidence"]["sentence"]
    ex = explain(client, bearer)
    assert ex["evidence"]["friends_watched"] == ["sf1", "sf2"]
    assert "2 friends watched this" in ex["explanation"]
    # the titles alice's own evidence quotes are still hers only
    for n in ex["evidence"]["nearest_watched"]:
        assert n["title_id"] in HISTORIES[CALLER]
    # back to private: gone at once (no stale cache)
    privacy(client, bearer, "sf2", "private")
    assert named_friends(client, bearer)[TARGET] == ["sf1"]
    assert "1 friend watched this (sf1)" in recommend(client, bearer)[TARGET]["explanation"]
    # a friend's new activity shows up at once
    fresh = next(t for t in recommend(client, bearer) if t not in HISTORIES["sf1"])
    r = client.post(
        "/feedback",
        json={"user": "sf1", "content_id": fresh, "rating": 5},
        headers=_h(bearer, "sf1"),
    )
    assert r.status_code == 200, r.text
    assert named_friends(client, bearer)[fresh] == ["sf1"]
    assert explain(client, bearer, fresh)["evidence"]["friends_watched"] == ["sf1"]
    # unfriending removes it
    assert client.delete("/social/friends/sf1", headers=_h(bearer, CALLER)).status_code == 200
    assert named_friends(client, bearer) == {}


def test_strangers_followers_blocked_private_and_erased_are_never_named(
    client: TestClient, bearer
) -> None:
    # sf1: stranger with public activity; sf2: followed by alice, public
    privacy(client, bearer, "sf1", "public")
    privacy(client, bearer, "sf2", "public")
    assert client.put("/social/following/sf2", headers=_h(bearer, CALLER)).status_code == 200
    # sf3: friend with private activity
    befriend(client, bearer, CALLER, "sf3")
    # sf4: friend, public, then blocks alice; sf5: friend, public, then erased
    for user in ("sf4", "sf5"):
        befriend(client, bearer, CALLER, user)
        privacy(client, bearer, user, "public")
    assert named_friends(client, bearer)[TARGET] == ["sf4", "sf5"]  # cached before the changes
    assert client.put(f"/social/blocks/{CALLER}", headers=_h(bearer, "sf4")).status_code == 200
    assert client.delete("/users/sf5", headers=_h(bearer, "sf5")).status_code == 200
    r = client.post("/recommend", json={"user": CALLER, "limit": 100}, headers=_h(bearer, CALLER))
    assert r.status_code == 200
    assert all(not i["evidence"]["friends_watched"] for i in r.json()["results"])
    for other in ("sf1", "sf2", "sf3", "sf4", "sf5"):
        assert other not in r.text, f"{other} named in alice's recommendations"
    for tid in {TARGET, *HISTORIES["sf3"]} - set(HISTORIES[CALLER]):
        ex = explain(client, bearer, tid)
        assert ex["evidence"]["friends_watched"] == [], tid
        text = str(ex)
        assert not any(u in text for u in ("sf1", "sf2", "sf3", "sf4", "sf5")), tid
        # the only titles an explanation quotes are the candidate and alice's own
        for n in ex["evidence"]["nearest_watched"]:
            assert n["title_id"] in HISTORIES[CALLER]


def test_graphql_carries_the_same_friend_evidence(client: TestClient, bearer) -> None:
    befriend(client, bearer, CALLER, "sf1")
    privacy(client, bearer, "sf1", "friends")
    r = client.post(
        "/graphql",
        json={
            "query": 'query Ex($id: ID!) { explanation(user: "alice", contentId: $id) '
            '{ explanation evidence } recommendations(user: "alice", limit: 100) '
            "{ results { contentId evidence } } }",
            "variables": {"id": TARGET},
        },
        headers=_h(bearer, CALLER),
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["explanation"]["evidence"]["friends_watched"] == ["sf1"]
    assert data["explanation"] == {
        k: v for k, v in explain(client, bearer).items() if k in ("explanation", "evidence")
    }
    by_id = {i["contentId"]: i["evidence"] for i in data["recommendations"]["results"]}
    assert by_id[TARGET]["friends_watched"] == ["sf1"]
