"""JWT validation (RFC 8725 rules) and the 401/403 answers of the service."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from starlette.testclient import TestClient

from core.settings import load_settings
from serving.auth import (
    AuthConfigError,
    AuthError,
    TokenVerifier,
    bearer_token,
    issue_token,
    jwt_secret,
)

KEY = b"k" * 32


@pytest.fixture
def cfg():
    return load_settings("configs/base.yaml")


@pytest.fixture
def verifier(cfg) -> TokenVerifier:
    return TokenVerifier.from_settings(cfg, KEY)


def _unsigned(claims: dict) -> str:
    def part(obj: dict) -> str:
        raw = json.dumps(obj, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part(claims)}."


def test_round_trip_gives_subject_and_scopes(cfg, verifier) -> None:
    token = issue_token(cfg, "alice", ["write:feedback", "read:recommendations"], 5, secret=KEY)
    principal = verifier.verify(token)
    assert principal.subject == "alice"
    assert principal.scopes == {"write:feedback", "read:recommendations"}
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda c: {**c, "aud": "someone-else"}, "wrong audience"),
        (lambda c: {**c, "iss": "evil"}, "wrong issuer"),
        (lambda c: {**c, "exp": datetime.now(UTC) - timedelta(minutes=1)}, "token expired"),
        (lambda c: {k: v for k, v in c.items() if k != "exp"}, "missing claim exp"),
        (lambda c: {k: v for k, v in c.items() if k != "sub"}, "missing claim sub"),
    ],
)
def test_bad_claims_are_rejected_with_reason(cfg, verifier, mutate, reason) -> None:
    now = datetime.now(UTC)
    claims = {
        "iss": cfg.serving.jwt_issuer,
        "aud": cfg.serving.jwt_audience,
        "sub": "alice",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "scope": "read:recommendations",
    }
    token = jwt.encode(mutate(claims), KEY, algorithm="HS256", headers={"typ": "at+jwt"})
    with pytest.raises(AuthError) as err:
        verifier.verify(token)
    assert err.value.status == 401
    assert err.value.reason == reason


def test_alg_none_wrong_key_other_alg_and_untyped_are_rejected(cfg, verifier) -> None:
    good = issue_token(cfg, "alice", [], 5, secret=KEY)
    claims = jwt.decode(good, options={"verify_signature": False})
    cases = {
        _unsigned(claims): "algorithm 'none' is not allowed",
        issue_token(cfg, "alice", [], 5, secret=b"x" * 32): "bad signature",
        jwt.encode(claims, KEY, algorithm="HS512", headers={"typ": "at+jwt"}): (
            "algorithm 'HS512' is not allowed"
        ),
        jwt.encode(claims, KEY, algorithm="HS256"): "token type must be at+jwt",
        "not-a-token": "malformed token",
    }
    for token, reason in cases.items():
        with pytest.raises(AuthError) as err:
            verifier.verify(token)
        assert err.value.reason == reason


def test_bearer_header_parsing() -> None:
    assert bearer_token(None) is None
    assert bearer_token("Bearer abc") == "abc"
    with pytest.raises(AuthError):
        bearer_token("Basic dXNlcjpwdw==")


def test_secret_is_required_and_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDIA_GATEWAY_JWT_SECRET", raising=False)
    monkeypatch.delenv("MEDIA_GATEWAY_JWT_EPHEMERAL", raising=False)
    with pytest.raises(AuthConfigError, match="not set"):
        jwt_secret()
    monkeypatch.setenv("MEDIA_GATEWAY_JWT_EPHEMERAL", "1")
    assert len(jwt_secret()) == 32
    monkeypatch.setenv("MEDIA_GATEWAY_JWT_SECRET", "short")
    with pytest.raises(AuthConfigError, match="at least 32 bytes"):
        jwt_secret()


def test_issue_rejects_unknown_scope(cfg) -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        issue_token(cfg, "alice", ["admin"], 5, secret=KEY)


# ---- through the service ---------------------------------------------------------------------


def _claims(settings, **changes) -> dict:
    now = datetime.now(UTC)
    claims = {
        "iss": settings.serving.jwt_issuer,
        "aud": settings.serving.jwt_audience,
        "sub": "alice",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "scope": "read:recommendations write:feedback read:preferences write:preferences",
    }
    claims.update(changes)
    return claims


def test_service_answers_401_with_reason(client: TestClient, signing) -> None:
    settings, key = signing
    body = {"user": "alice"}
    cases = {
        _unsigned(_claims(settings)): "algorithm 'none' is not allowed",
        jwt.encode(_claims(settings, aud="other"), key, "HS256", {"typ": "at+jwt"}): (
            "wrong audience"
        ),
        jwt.encode(_claims(settings, iss="other"), key, "HS256", {"typ": "at+jwt"}): (
            "wrong issuer"
        ),
        jwt.encode(
            _claims(settings, exp=datetime.now(UTC) - timedelta(hours=1)),
            key,
            "HS256",
            {"typ": "at+jwt"},
        ): "token expired",
    }
    for token, reason in cases.items():
        r = client.post("/recommend", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
        assert r.json() == {"error": reason}
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    r = client.post("/recommend", json=body)
    assert r.status_code == 401
    assert "bearer token" in r.json()["error"]
    r = client.get("/users/alice/export", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_missing_scope_is_403(client: TestClient, bearer) -> None:
    r = client.post(
        "/recommend", json={"user": "alice"}, headers=bearer("alice", ["write:feedback"])
    )
    assert r.status_code == 403
    assert r.json() == {"error": "token lacks scope read:recommendations"}
    assert "insufficient_scope" in r.headers["WWW-Authenticate"]
    r = client.post(
        "/feedback",
        json={"user": "alice", "content_id": "movie:603", "watched": True},
        headers=bearer("alice", ["read:recommendations"]),
    )
    assert r.status_code == 403
    r = client.get("/users/alice/export", headers=bearer("alice", ["read:recommendations"]))
    assert r.status_code == 403


def test_token_for_one_user_cannot_touch_another(client: TestClient, bearer) -> None:
    mallory = bearer("mallory")
    calls = [
        client.post("/recommend", json={"user": "alice"}, headers=mallory),
        client.post("/explain", json={"user": "alice", "content_id": "movie:603"}, headers=mallory),
        client.post(
            "/feedback",
            json={"user": "alice", "content_id": "movie:603", "rating": 1},
            headers=mallory,
        ),
        client.post("/search", json={"query": "space", "user": "alice"}, headers=mallory),
        client.put("/users/alice/preferences", json={"country": "GB"}, headers=mallory),
        client.get("/users/alice/export", headers=mallory),
        client.delete("/users/alice", headers=mallory),
    ]
    for r in calls:
        assert r.status_code == 403, (r.request.url, r.text)
        assert r.json() == {"error": "token subject does not match the requested user"}
    # nothing changed for alice
    export = client.get("/users/alice/export", headers=bearer("alice")).json()
    assert export["profile"] is None and export["feedback"] == []
    assert len(export["watch_events"]) == 3


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        # a direct client cannot choose its identity
        (["10.0.0.0/8"], "203.0.113.9", "1.2.3.4", "203.0.113.9"),
        # behind the load balancer: the right-most untrusted hop is the client
        (["10.0.0.0/8"], "10.0.0.5", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.5", "198.51.100.7, 10.0.0.9", "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.5", None, "10.0.0.5"),
        (["10.0.0.5/8"], "10.0.0.5", "1.2.3.4", "1.2.3.4"),  # host bits: still the network
        (["10.0.0.5"], "10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ([], "10.0.0.5", "1.2.3.4", "10.0.0.5"),
        ([], "127.0.0.1", "1.2.3.4", "127.0.0.1"),  # uvicorn alone would trust loopback
    ],
)
def test_forwarded_for_counts_only_from_trusted_proxies(
    trusted: list[str],
    peer: str,
    forwarded_for: str | None,
    client: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The address the service sees is uvicorn's, configured from ``serving.trusted_proxies``."""
    from tests.serving.conftest import client_seen_by_app

    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    assert client_seen_by_app(trusted, peer, headers, monkeypatch)[0] == client


def test_trusted_proxies_are_validated():
    import pytest

    from core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="not an address or CIDR"):
        load_settings(overrides={"serving": {"trusted_proxies": ["lb.example"]}})
