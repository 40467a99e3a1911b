"""OIDC access tokens against a real local issuer (HTTP on loopback): discovery, JWKS cache, key
rotation, ES256, client-credentials agents, and the same tokens through the running service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.testclient import TestClient

from core.settings import OIDCIssuerSettings, load_settings
from serving.auth import AuthError, TokenVerifier
from tests.serving.conftest import SECRET, World, start_client
from tests.serving.oidc_issuer import LocalIssuer, SigningKey

SCOPES = ["read:recommendations", "write:feedback"]


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    idp = LocalIssuer().start()
    yield idp
    idp.stop()


def verifier(idp: LocalIssuer, **config: Any) -> TokenVerifier:
    settings = load_settings(
        "configs/base.yaml",
        overrides={
            "paths": {"feedback": "/tmp/unused"},
            "serving": {"oidc": [{"issuer": idp.url, "audience": idp.audience, **config}]},
        },
    )
    return TokenVerifier.from_settings(settings, SECRET.encode())


def rejected(v: TokenVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as err:
        v.verify(token)
    return err.value


def test_discovery_jwks_cache_and_rotation(issuer: LocalIssuer) -> None:
    v = verifier(issuer, jwks_refresh_cooldown_s=0)
    p = v.verify(issuer.mint("alice", SCOPES))
    assert (p.subject, p.scopes, p.client, p.issuer) == (
        "alice",
        frozenset(SCOPES),
        False,
        issuer.url,
    )
    for _ in range(5):
        v.verify(issuer.mint("alice", SCOPES))
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1), "keys are cached"
    old = issuer.keys[-1]
    old_token = issuer.mint("alice", SCOPES)
    new = issuer.rotate("RS256")  # the old key leaves the set at once
    assert v.verify(issuer.mint("bob", SCOPES, key=new)).subject == "bob"
    assert issuer.jwks_fetches == 2, "an unknown kid refreshes the key set once"
    assert "unknown signing key" in rejected(v, old_token).reason
    assert old.kid not in {k.kid for k in issuer.keys}


def test_es256_and_overlapping_rotation(issuer: LocalIssuer) -> None:
    v = verifier(issuer, jwks_refresh_cooldown_s=0)
    v.verify(issuer.mint("alice", SCOPES))
    ec_key = issuer.rotate("ES256", keep_old=True)
    assert v.verify(issuer.mint("carol", SCOPES, key=ec_key)).subject == "carol"
    assert v.verify(issuer.mint("alice", SCOPES, key=issuer.keys[0])).subject == "alice"


def test_unknown_kids_cannot_flood_the_provider(issuer: LocalIssuer) -> None:
    v = verifier(issuer, jwks_refresh_cooldown_s=3600)
    v.verify(issuer.mint("alice", SCOPES))
    stranger = SigningKey.new("RS256")
    for _ in range(20):
        assert "unknown signing key" in rejected(v, issuer.mint("x", SCOPES, key=stranger)).reason
    assert issuer.jwks_fetches <= 2


def test_bad_tokens_are_refused_with_a_reason(issuer: LocalIssuer) -> None:
    v = verifier(issuer, algorithms=["RS256"])
    assert rejected(v, issuer.mint("a", SCOPES, ttl=-60)).reason == "token expired"
    assert rejected(v, issuer.mint("a", SCOPES, aud="someone-else")).reason == "wrong audience"
    # an issuer we do not trust is refused without any network call
    before = issuer.discovery_fetches
    assert (
        rejected(v, issuer.mint("a", SCOPES, iss="https://evil.example")).reason == "wrong issuer"
    )
    assert issuer.discovery_fetches == before
    es = issuer.rotate("ES256", keep_old=True)
    assert "not allowed" in rejected(v, issuer.mint("a", SCOPES, key=es)).reason
    # algorithm confusion: HS256 signed with the provider's public key is a dev token, and fails
    pem = (
        issuer.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forged = jwt.encode(
        {"iss": issuer.url, "aud": issuer.audience, "sub": "a", "iat": 1, "exp": 2**31},
        pem.decode()[:64],
        algorithm="HS256",
        headers={"typ": "at+jwt"},
    )
    assert rejected(v, forged).status == 401
    unsigned = jwt.encode({"iss": issuer.url, "sub": "a"}, None, algorithm="none")
    assert "not allowed" in rejected(v, unsigned).reason
    # a token signed by a key with the right kid but the wrong private key
    impostor = SigningKey.new("RS256")
    impostor.kid = issuer.keys[0].kid
    assert rejected(v, issuer.mint("a", SCOPES, key=impostor)).reason == "bad signature"


def test_provider_down_is_503_and_retried(issuer: LocalIssuer) -> None:
    v = verifier(issuer)
    token = issuer.mint("alice", SCOPES)
    issuer.stop()
    err = rejected(v, token)
    assert err.status == 503
    again = LocalIssuer(keys=issuer.keys)
    again.start()  # a new port: the configured issuer is still down
    assert rejected(v, token).status == 503
    again.stop()


def test_client_credentials_and_delegation(issuer: LocalIssuer) -> None:
    v = verifier(issuer)
    agent = v.verify(issuer.mint("agent-7", ["read:recommendations"], client_id="agent-7"))
    assert agent.client and agent.subject == "agent-7"
    with pytest.raises(AuthError, match="acts for no user"):
        agent.require_self("agent-7")
    scp = v.verify(
        issuer.mint("agent-8", [], scp=["read:recommendations"], gty="client-credentials")
    )
    assert scp.client and scp.scopes == frozenset({"read:recommendations"})
    delegated = v.verify(issuer.mint("alice", SCOPES, act={"sub": "agent-7"}, azp="agent-7"))
    assert (delegated.subject, delegated.actor, delegated.client) == ("alice", "agent-7", False)
    delegated.require_self("alice")


def test_issuer_must_be_https_except_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        OIDCIssuerSettings(issuer="http://idp.example", audience="x")
    assert OIDCIssuerSettings(issuer="https://idp.example/", audience="x").issuer == (
        "https://idp.example"
    )


@pytest.fixture
def oidc_client(
    issuer: LocalIssuer, asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    overlay = fresh_world.overlay(
        "oidc",
        anonymous_per_minute=1000,
        authenticated_per_minute=1000,
        oidc=[{"issuer": issuer.url, "audience": issuer.audience, "jwks_refresh_cooldown_s": 0}],
    )
    yield from start_client(asgi_app, overlay, service_env)


def test_service_accepts_provider_and_dev_tokens(
    issuer: LocalIssuer, oidc_client: TestClient, bearer
) -> None:
    client = oidc_client

    def call(token: str, user: str = "alice") -> Any:
        return client.post(
            "/recommend",
            json={"user": user, "limit": 3},
            headers={"Authorization": f"Bearer {token}"},
        )

    assert call(issuer.mint("alice", SCOPES)).status_code == 200
    new = issuer.rotate("ES256")
    assert call(issuer.mint("alice", SCOPES, key=new)).status_code == 200
    assert call(issuer.mint("bob", SCOPES, key=new)).status_code == 403  # not alice
    assert call(issuer.mint("alice", ["write:feedback"], key=new)).status_code == 403
    r = call(issuer.mint("agent-7", SCOPES, client_id="agent-7"), user="agent-7")
    assert r.status_code == 403 and "client" in r.json()["error"]
    # an agent with a client-credentials token may search as itself (authenticated bucket)
    token = issuer.mint("agent-7", SCOPES, client_id="agent-7")
    r = client.post(
        "/search",
        json={"query": "space", "limit": 2},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    # ...but has no social graph of its own
    agent = issuer.mint("agent-7", ["read:social"], client_id="agent-7")
    r = client.get("/social/me", headers={"Authorization": f"Bearer {agent}"})
    assert r.status_code == 403 and "client" in r.json()["error"]
    # developer tokens keep working
    assert (
        client.post(
            "/recommend", json={"user": "alice", "limit": 3}, headers=bearer("alice")
        ).status_code
        == 200
    )
    r = call(issuer.mint("alice", SCOPES, key=SigningKey.new("RS256")))
    assert r.status_code == 401 and "unknown signing key" in r.json()["error"]
    # the ARW manifest tells agents where to get tokens
    oauth = client.get("/.well-known/arw-manifest.json").json()["oauth"]
    assert oauth["issuers"][0]["issuer"] == issuer.url
    assert oauth["token_url"] == issuer.url + "/token"
    assert "client_credentials" in oauth["grant_types"]
