"""The ARW manifest shape, llms.txt, headers, and every declared action exists (non-404/405)."""

from __future__ import annotations

import yaml
from starlette.testclient import TestClient

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION


def test_manifest_shape(client: TestClient) -> None:
    r = client.get("/.well-known/arw-manifest.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["AI-ARW-Level"] == "ARW-3"
    assert TMDB_ATTRIBUTION in r.headers["AI-Attribution"]
    m = r.json()
    assert m["version"] == "0.1" and m["profile"] == "ARW-3"
    assert {"name", "homepage", "description"} <= set(m["site"])
    assert m["site"]["homepage"] == "http://testserver/"
    for entry in m["content"]:
        assert {"url", "machine_view", "purpose", "priority"} <= set(entry)
    for action in m["actions"]:
        assert {
            "id",
            "name",
            "description",
            "endpoint",
            "method",
            "auth",
            "scopes",
            "schema",
        } <= set(action)
        assert action["auth"] in ("oauth2", "none")
    assert m["protocols"] == []
    assert m["realtime"]["url"] == "ws://testserver/ws"
    assert {"authorization_url", "token_url", "scopes"} <= set(m["oauth"])
    policies = m["policies"]
    assert policies["training"] == {"allowed": False}
    assert policies["inference"]["allowed"] is True
    assert policies["attribution"]["required"] is True
    assert JUSTWATCH_ATTRIBUTION in policies["attribution"]["template"]
    assert "1000 requests per minute" in policies["rate_limits"]["anonymous"]


def test_every_declared_action_exists(client: TestClient) -> None:
    manifest = client.get("/.well-known/arw-manifest.json").json()
    assert {"recommend_group", "befriend", "invite_to_groups", "friends_feed"} <= {
        a["id"] for a in manifest["actions"]
    }
    for action in manifest["actions"]:
        path = action["endpoint"].replace("{id}", "movie:27205").replace("{user}", "alice")
        r = client.request(action["method"], path, json={})
        assert r.status_code not in (404, 405), (action["id"], r.status_code, r.text)
        if action["auth"] == "oauth2":
            assert r.status_code in (400, 401, 422), (action["id"], r.status_code)
        # a wrong method on the same path is refused, so the check above is meaningful
        other = "PATCH"  # no route takes PATCH
        assert client.request(other, path).status_code in (404, 405), (action["id"], other)
    for entry in manifest["content"]:
        url = entry["machine_view"].replace("{id}", "movie:27205")
        assert client.get(url).status_code == 200, url


def test_schemas_in_manifest_validate_real_requests(client: TestClient) -> None:
    manifest = client.get("/.well-known/arw-manifest.json").json()
    schemas = {a["id"]: a["schema"] for a in manifest["actions"]}
    assert set(schemas["search"]["properties"]) >= {"query", "filters", "user", "limit", "cursor"}
    assert schemas["feedback"]["required"] == ["user", "content_id"]


def test_llms_txt_is_yaml_of_the_manifest(client: TestClient) -> None:
    r = client.get("/llms.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    data = yaml.safe_load(r.text)
    manifest = client.get("/.well-known/arw-manifest.json").json()
    assert data["version"] == "0.1"
    assert [a["id"] for a in data["actions"]] == [a["id"] for a in manifest["actions"]]
    assert data["policies"] == manifest["policies"]
