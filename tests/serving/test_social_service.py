"""The social graph through the running service: consent for groups, privacy, blocks, erasure,
and a cross-user matrix proving a user's activity never reaches someone their settings exclude."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from serving.social.store import DB_NAME, USER_COLUMNS
from tests.serving.conftest import ALL_SCOPES, HISTORIES, TITLES

SOCIAL = ALL_SCOPES
NOT_SOCIAL = [s for s in ALL_SCOPES if not s.endswith(":social")]
NAMES = {tid: title for tid, _, title, *_ in TITLES}

Bearer = Callable[..., dict[str, str]]


def _as(bearer: Bearer, user: str) -> dict[str, str]:
    return bearer(user, SOCIAL)


def befriend(client: TestClient, bearer: Bearer, a: str, b: str) -> None:
    assert (
        client.post(f"/social/friends/{b}", headers=_as(bearer, a)).json()["status"] == "requested"
    )
    r = client.post(f"/social/friend-requests/{a}/accept", headers=_as(bearer, b))
    assert r.status_code == 200, r.text


def group(client: TestClient, bearer: Bearer, caller: str, *others: str):
    return client.post(
        "/recommend/group",
        json={"members": [caller, *others], "limit": 5},
        headers=_as(bearer, caller),
    )


def test_group_needs_consent_and_hides_other_members_titles(client: TestClient, bearer) -> None:
    # issue 13: a token for alice alone could pull bob's scores and watched titles
    r = group(client, bearer, "alice", "bob")
    assert r.status_code == 403
    assert "bob" in r.json()["error"] and "friend" in r.json()["error"]
    # a nonexistent member is refused the same way (existence is not revealed)
    r = group(client, bearer, "alice", "no-such-user")
    assert r.status_code == 403 and "no-such-user" in r.json()["error"]
    # a pending request is not consent
    client.post("/social/friends/bob", headers=_as(bearer, "alice"))
    assert group(client, bearer, "alice", "bob").status_code == 403
    client.post("/social/friend-requests/alice/accept", headers=_as(bearer, "bob"))
    r = group(client, bearer, "alice", "bob")
    assert r.status_code == 200, r.text
    text = r.text
    for tid in HISTORIES["bob"]:
        assert tid not in text and NAMES[tid] not in text, f"bob's {NAMES[tid]} leaked"
    for item in r.json()["results"]:
        assert set(item["member_scores"]) == {"alice", "bob"}
        for m in item["evidence"]["members"]:
            if m["member"] == "bob":
                assert m["nearest_title_id"] is None and m["watched"] is None
        named = {n["title_id"] for n in item["evidence"]["nearest_watched"]}
        assert named <= set(HISTORIES["alice"])


def test_group_through_an_accepted_invitation(client: TestClient, bearer) -> None:
    r = client.post("/social/invitations", json={"invitee": "dave"}, headers=_as(bearer, "carol"))
    assert r.status_code == 200, r.text
    inv = r.json()["id"]
    assert group(client, bearer, "carol", "dave").status_code == 403
    # only the invitee can accept
    r = client.post(f"/social/invitations/{inv}/accept", headers=_as(bearer, "carol"))
    assert r.status_code == 404
    r = client.post(f"/social/invitations/{inv}/accept", headers=_as(bearer, "dave"))
    assert r.status_code == 200
    assert group(client, bearer, "carol", "dave").status_code == 200
    # consent is to carol only: dave cannot pull carol in, and carol cannot add a stranger
    assert group(client, bearer, "dave", "carol").status_code == 403
    assert group(client, bearer, "carol", "dave", "bob").status_code == 403
    # dave withdraws
    assert client.delete(f"/social/invitations/{inv}", headers=_as(bearer, "dave")).json()[
        "removed"
    ]
    assert group(client, bearer, "carol", "dave").status_code == 403


def test_social_routes_need_their_scopes(client: TestClient, bearer) -> None:
    assert client.get("/social/feed").status_code == 401
    r = client.get("/social/feed", headers=bearer("alice", NOT_SOCIAL))
    assert r.status_code == 403
    r = client.post("/social/friends/bob", headers=bearer("alice", ["read:social"]))
    assert r.status_code == 403
    assert client.post("/social/friends/alice", headers=_as(bearer, "alice")).status_code == 409
    r = client.put("/social/privacy", json={"activity": "everyone"}, headers=_as(bearer, "alice"))
    assert r.status_code == 422


# ---- the cross-user matrix ---------------------------------------------------------------------
OWNER = "bob"
RELATIONS = ("self", "friend", "follower", "stranger", "blocked", "blocker")
VIEWER = {
    "self": "bob",
    "friend": "alice",
    "follower": "carol",
    "stranger": "dave",
    "blocked": "sf0",  # bob blocked sf0 (they had been friends)
    "blocker": "sf1",  # sf1 blocked bob (they had been friends)
}
# (relation, visibility) -> may the viewer read the owner's activity / friend list?
VISIBLE = {
    "private": {"self"},
    "friends": {"self", "friend"},
    "public": {"self", "friend", "follower", "stranger"},
}


def _build_graph(client: TestClient, bearer: Bearer) -> None:
    befriend(client, bearer, "alice", OWNER)
    befriend(client, bearer, "sf0", OWNER)
    befriend(client, bearer, "sf1", OWNER)
    assert client.put(f"/social/following/{OWNER}", headers=_as(bearer, "carol")).status_code == 200
    assert client.put(f"/social/following/{OWNER}", headers=_as(bearer, "sf0")).status_code == 200
    assert client.put("/social/blocks/sf0", headers=_as(bearer, OWNER)).status_code == 200
    assert client.put(f"/social/blocks/{OWNER}", headers=_as(bearer, "sf1")).status_code == 200


def _reads(client: TestClient, bearer: Bearer, viewer: str) -> dict[str, bool]:
    """Each social read: did ``viewer`` get any of the owner's data through it?"""
    h = _as(bearer, viewer)
    activity = client.get(f"/social/users/{OWNER}/activity", headers=h)
    friends = client.get(f"/social/users/{OWNER}/friends", headers=h)
    feed = client.get("/social/feed", headers=h)
    me = client.get("/social/me", headers=h)
    assert feed.status_code == me.status_code == 200
    assert activity.status_code in (200, 403) and friends.status_code in (200, 403)
    bob_titles = {NAMES[t] for t in HISTORIES[OWNER]}
    if activity.status_code == 200:
        assert {i["title"] for i in activity.json()["items"]} == bob_titles
    else:
        assert not any(n in activity.text for n in bob_titles)
    in_feed = [e for e in feed.json()["entries"] if e["user"] == OWNER]
    grouped = group(client, bearer, viewer, OWNER) if viewer != OWNER else None
    return {
        "activity": activity.status_code == 200,
        "friends": friends.status_code == 200,
        "feed": bool(in_feed),
        "group": grouped is not None and grouped.status_code == 200,
    }


@pytest.mark.parametrize("visibility", ["private", "friends", "public"])
def test_cross_user_matrix(client: TestClient, bearer, visibility: str) -> None:
    _build_graph(client, bearer)
    r = client.put(
        "/social/privacy",
        json={"activity": visibility, "friend_list": visibility},
        headers=_as(bearer, OWNER),
    )
    assert r.status_code == 200
    seen = {rel: _reads(client, bearer, VIEWER[rel]) for rel in RELATIONS}
    for rel in RELATIONS:
        may = rel in VISIBLE[visibility]
        assert seen[rel]["activity"] is may, (rel, visibility, seen[rel])
        assert seen[rel]["friends"] is may, (rel, visibility, seen[rel])
        # the feed carries only friends' and followed users' visible activity
        assert seen[rel]["feed"] is (may and rel in ("friend", "follower")), (rel, seen[rel])
        # a group needs consent, whatever the privacy setting
        assert seen[rel]["group"] is (rel == "friend"), (rel, seen[rel])
    # the friend list a friend sees never names the users bob blocked or who blocked him
    if visibility != "private":
        friends = client.get(f"/social/users/{OWNER}/friends", headers=_as(bearer, "alice"))
        assert friends.json()["friends"] == ["alice"]


def test_erased_user_leaves_every_graph(client: TestClient, bearer, feedback_dir) -> None:
    _build_graph(client, bearer)
    client.put("/social/privacy", json={"activity": "public"}, headers=_as(bearer, OWNER))
    client.post("/social/invitations", json={"invitee": "dave"}, headers=_as(bearer, OWNER))
    assert (
        client.get(f"/social/users/{OWNER}/activity", headers=_as(bearer, "dave")).status_code
        == 200
    )
    export = client.get(f"/users/{OWNER}/export", headers=_as(bearer, OWNER)).json()
    assert export["social"]["friends"] == ["alice"]
    assert export["social"]["privacy"]["activity"] == "public"
    assert client.delete(f"/users/{OWNER}", headers=_as(bearer, OWNER)).status_code == 200
    conn = sqlite3.connect(feedback_dir / DB_NAME)
    for table, column in USER_COLUMNS:
        n = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column}=?", (OWNER,)).fetchone()[0]
        assert n == 0, (table, column)
    for rel in ("friend", "follower", "stranger", "blocked", "blocker"):
        viewer = VIEWER[rel]
        got = _reads(client, bearer, viewer)
        assert got == {"activity": False, "friends": False, "feed": False, "group": False}, rel
        me = client.get("/social/me", headers=_as(bearer, viewer)).json()
        assert OWNER not in str(me)
