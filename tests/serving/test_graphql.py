"""GraphQL through the running service, answers compared with the REST routes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import strawberry
from starlette.testclient import TestClient

from serving.graphql.app import persisted_operations
from serving.graphql.limits import limit_extensions
from tests.serving.conftest import ALL_SCOPES, HISTORIES

EVERY = ALL_SCOPES


def gql(client: TestClient, query: str, headers: dict[str, str] | None = None, **variables: Any):
    r = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_recommendations_explanation_and_search_match_rest(client: TestClient, bearer) -> None:
    h = bearer("alice", EVERY)
    body = gql(
        client,
        """query Recs($user: String!) { recommendations(user: $user, limit: 5) {
            user modelVersion country services
            results { contentId title score explanation components offers { providerId kind } } } }""",
        h,
        user="alice",
    )
    assert "errors" not in body, body
    got = body["data"]["recommendations"]
    rest = client.post("/recommend", json={"user": "alice", "limit": 5}, headers=h).json()
    assert [r["contentId"] for r in got["results"]] == [r["content_id"] for r in rest["results"]]
    assert [r["score"] for r in got["results"]] == [r["score"] for r in rest["results"]]
    assert [r["explanation"] for r in got["results"]] == [r["explanation"] for r in rest["results"]]
    assert got["results"][0]["components"] == rest["results"][0]["components"]
    assert (got["modelVersion"], got["country"]) == (rest["model_version"], rest["country"])

    top = rest["results"][0]["content_id"]
    ex = gql(
        client,
        'query Ex($id: ID!) { explanation(user: "alice", contentId: $id) '
        "{ title score explanation evidence } }",
        h,
        id=top,
    )["data"]["explanation"]
    rest_ex = client.post("/explain", json={"user": "alice", "content_id": top}, headers=h).json()
    assert (ex["title"], ex["score"], ex["explanation"]) == (
        rest_ex["title"],
        rest_ex["score"],
        rest_ex["explanation"],
    )
    assert ex["evidence"] == rest_ex["evidence"]

    search = gql(
        client,
        'query { search(query: "space thriller", limit: 5) { total results { contentId score } } }',
    )["data"]["search"]
    rest_search = client.post("/search", json={"query": "space thriller", "limit": 5}).json()
    assert search["total"] == rest_search["total"]
    assert [(r["contentId"], r["score"]) for r in search["results"]] == [
        (r["content_id"], r["score"]) for r in rest_search["results"]
    ]


def test_title_availability_history_and_group(client: TestClient, bearer) -> None:
    data = gql(
        client,
        """{ title(id: "movie:27205") { contentId name jsonld }
             availability(id: "movie:27205", country: "US") {
                 contentId offers { providerId kind price } } }""",
    )["data"]
    assert data["title"]["jsonld"] == client.get("/content/movie:27205").json()
    rest = client.get("/content/movie:27205/availability?country=US").json()
    assert [(o["providerId"], o["kind"], o["price"]) for o in data["availability"]["offers"]] == [
        (o["provider_id"], o["kind"], o["price"]) for o in rest["offers"]
    ]
    h = bearer("alice", EVERY)
    hist = gql(client, '{ history(user: "alice") { contentId title weight } }', h)["data"][
        "history"
    ]
    assert [x["contentId"] for x in hist] == HISTORIES["alice"][::-1]
    # group: consent first, then GraphQL and REST agree
    client.post("/social/friends/bob", headers=h)
    client.post("/social/friend-requests/alice/accept", headers=bearer("bob", EVERY))
    q = """{ groupRecommendations(members: ["alice", "bob"], strategy: "least_misery", limit: 3) {
        results { contentId score memberScores } } }"""
    got = gql(client, q, h)["data"]["groupRecommendations"]["results"]
    rest_group = client.post(
        "/recommend/group",
        json={"members": ["alice", "bob"], "strategy": "least_misery", "limit": 3},
        headers=h,
    ).json()["results"]
    assert [(g["contentId"], g["score"], g["memberScores"]) for g in got] == [
        (r["content_id"], r["score"], r["member_scores"]) for r in rest_group
    ]
    refused = gql(client, '{ groupRecommendations(members: ["alice", "carol"]) { members } }', h)
    assert refused["errors"][0]["extensions"]["status"] == 403


def test_mutations_feedback_preferences_watchlist(client: TestClient, bearer) -> None:
    h = bearer("bob", EVERY)
    first = client.post("/recommend", json={"user": "bob", "limit": 1}, headers=h).json()
    top = first["results"][0]["content_id"]
    ack = gql(
        client,
        'mutation Fb($id: ID!) { sendFeedback(user: "bob", contentId: $id, rating: 5, '
        "watched: true) { eventId durable } }",
        h,
        id=top,
    )["data"]["sendFeedback"]
    assert ack["durable"] is True and ack["eventId"]
    after = client.post("/recommend", json={"user": "bob", "limit": 5}, headers=h).json()
    assert top not in [r["content_id"] for r in after["results"]]  # watched: not recommended again
    prefs = gql(
        client,
        'mutation { setPreferences(user: "bob", services: ["hulu"], country: "US") '
        "{ services country monetization } }",
        h,
    )["data"]["setPreferences"]
    assert prefs == {
        "services": ["hulu"],
        "country": "US",
        "monetization": ["subscription", "free"],
    }
    rest = client.post("/recommend", json={"user": "bob", "limit": 3}, headers=h).json()
    assert rest["services"] == ["hulu"]
    added = gql(
        client, 'mutation { addToWatchlist(user: "bob", contentId: "movie:329865") { changed } }', h
    )
    assert added["data"]["addToWatchlist"]["changed"] is True
    wl = gql(client, '{ watchlist(user: "bob") { items { contentId available } } }', h)
    rest_wl = client.get("/users/bob/watchlist", headers=h).json()
    assert wl["data"]["watchlist"]["items"] == [
        {"contentId": i["content_id"], "available": i["available"]} for i in rest_wl["items"]
    ]
    bad = gql(
        client, 'mutation { sendFeedback(user: "bob", contentId: "movie:603") { eventId } }', h
    )
    assert bad["errors"][0]["extensions"]["status"] == 400  # no rating/completion/watched


def test_same_auth_and_scopes_as_rest(client: TestClient, bearer) -> None:
    q = '{ recommendations(user: "alice", limit: 2) { user } }'
    anon = gql(client, q)
    assert anon["errors"][0]["extensions"]["status"] == 401
    other = gql(client, q, bearer("bob", EVERY))
    assert other["errors"][0]["extensions"]["status"] == 403
    scope = gql(client, q, bearer("alice", ["write:feedback"]))
    assert scope["errors"][0]["extensions"]["status"] == 403
    r = client.post("/graphql", json={"query": q}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    wl = gql(
        client,
        '{ watchlist(user: "alice") { user } }',
        bearer("alice", [s for s in ALL_SCOPES if "watchlist" not in s]),
    )
    assert wl["errors"][0]["extensions"]["status"] == 403


def test_depth_and_cost_limits(client: TestClient, bearer) -> None:
    h = bearer("alice", EVERY)
    fields = "results { contentId offers { providerId } }"
    heavy = " ".join(
        f'g{i}: groupRecommendations(members: ["alice", "bob"], limit: 100) {{ {fields} }}'
        for i in range(5)
    )
    r = gql(client, "{ " + heavy + " }", h)
    assert "cost" in r["errors"][0]["message"] and r.get("data") is None
    aliases = " ".join(f'a{i}: availability(id: "movie:603") {{ contentId }}' for i in range(20))
    assert "aliases" in gql(client, "{ " + aliases + " }")["errors"][0]["message"]


@strawberry.type
class Node:
    name: str

    @strawberry.field
    def child(self) -> Node:
        return Node(name=self.name + "!")


@strawberry.type
class Q:
    @strawberry.field
    def root(self) -> Node:
        return Node(name="r")


def test_depth_limit_guards_recursive_types() -> None:
    """Today's schema has no recursive type; the same limits stop a deep query on one."""

    schema = strawberry.Schema(query=Q, extensions=limit_extensions())
    ok = schema.execute_sync("{ root { child { child { name } } } }")
    assert ok.errors is None
    deep = "{ root " + "{ child " * 7 + "{ name }" + " }" * 7 + " }"
    result = schema.execute_sync(deep)
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


def test_get_queries_and_persisted_ids(client: TestClient, bearer) -> None:
    h = bearer("alice", EVERY)
    q = '{ availability(id: "movie:27205", country: "GB") { offers { providerId } } }'
    r = client.get("/graphql", params={"query": q})
    assert r.status_code == 200 and r.json()["data"]["availability"]["offers"] == [
        {"providerId": "netflix"}
    ]
    m = 'mutation { addToWatchlist(user: "alice", contentId: "movie:78") { changed } }'
    assert client.get("/graphql", params={"query": m}, headers=h).status_code in (400, 405)
    ops = persisted_operations()
    by_name = {name: digest for digest, (name, _) in ops.items()}
    assert {"Recommendations", "Search", "Availability", "Watchlist"} <= set(by_name)
    digest = by_name["Recommendations"]
    assert digest == hashlib.sha256(ops[digest][1].encode()).hexdigest()
    r = client.get(
        "/graphql",
        params={"id": digest, "variables": json.dumps({"user": "alice", "limit": 3})},
        headers=h,
    )
    assert r.status_code == 200, r.text
    ids = [x["contentId"] for x in r.json()["data"]["recommendations"]["results"]]
    rest = client.post("/recommend", json={"user": "alice", "limit": 3}, headers=h).json()
    assert ids == [x["content_id"] for x in rest["results"]]
    assert client.get("/graphql", params={"id": "0" * 64}).status_code == 404
