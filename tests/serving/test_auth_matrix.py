"""Attacker matrix: every personal operation x every forged, foreign or under-scoped token.

Rows are the operations that touch a user's data (with ``alice`` as the victim); columns are what
an attacker can present: no token, forged tokens (``alg=none``, another key, another algorithm, no
``typ``, expired, foreign audience or issuer, no subject, not a bearer scheme, garbage), a valid
token for another user (``mallory``, every scope) and alice's own token without the one scope the
operation needs. Forged tokens must get 401, the foreign user and the missing scope 403, and
afterwards alice's export must be exactly what it was: nothing was read out or written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from tests.serving.conftest import ALL_SCOPES

VICTIM = "alice"
ATTACKER = "mallory"

# (name, method, path, json body, scope the operation needs)
OPERATIONS: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
    ("recommend", "POST", "/recommend", {"user": VICTIM}, "read:recommendations"),
    ("group", "POST", "/recommend/group", {"members": [VICTIM, "bob"]}, "read:recommendations"),
    ("explain", "POST", "/explain", {"user": VICTIM, "content_id": "movie:603"},
     "read:recommendations"),
    ("feedback", "POST", "/feedback", {"user": VICTIM, "content_id": "movie:603", "rating": 1},
     "write:feedback"),
    ("personal search", "POST", "/search", {"query": "space", "user": VICTIM},
     "read:recommendations"),
    ("set preferences", "PUT", f"/users/{VICTIM}/preferences", {"country": "GB"},
     "write:preferences"),
    ("export", "GET", f"/users/{VICTIM}/export", None, "read:preferences"),
    ("erase", "DELETE", f"/users/{VICTIM}", None, "write:preferences"),
]  # fmt: skip


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part(claims)}."


def forged_headers(settings: Any, key: bytes) -> dict[str, dict[str, str]]:
    """Authorization headers that must all be refused with 401."""
    now = datetime.now(UTC)
    good = {
        "iss": settings.serving.jwt_issuer,
        "aud": settings.serving.jwt_audience,
        "sub": VICTIM,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "scope": " ".join(ALL_SCOPES),
    }

    def signed(claims: dict[str, Any], secret: bytes = key, alg: str = "HS256", typ: bool = True):
        headers = {"typ": "at+jwt"} if typ else None
        token = jwt.encode(claims, secret, algorithm=alg, headers=headers)
        return {"Authorization": f"Bearer {token}"}

    return {
        "no token": {},
        "alg none": {"Authorization": f"Bearer {_unsigned(good)}"},
        "another key": signed(good, b"attacker-key-0123456789abcdef0123456789"),
        "HS512": signed(good, alg="HS512"),
        "untyped": signed(good, typ=False),
        "expired": signed({**good, "exp": now - timedelta(minutes=10)}),
        "foreign audience": signed({**good, "aud": "another-api"}),
        "foreign issuer": signed({**good, "iss": "https://evil.example"}),
        "no subject": signed({k: v for k, v in good.items() if k != "sub"}),
        "basic scheme": {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }


def _call(client: TestClient, op: tuple, headers: dict[str, str]):
    _, method, path, body, _ = op
    return client.request(method, path, json=body, headers=headers)


def test_every_attack_on_every_personal_operation_is_refused(
    client: TestClient, signing, bearer: Callable[..., dict[str, str]]
) -> None:
    settings, key = signing

    def victims_data() -> dict[str, Any]:
        export = client.get(f"/users/{VICTIM}/export", headers=bearer(VICTIM)).json()
        return {k: v for k, v in export.items() if k != "exported_at"}

    before = victims_data()
    assert len(before["watch_events"]) == 3 and before["feedback"] == []
    forged = forged_headers(settings, key)
    outcomes: dict[tuple[str, str], int] = {}
    for op in OPERATIONS:
        name, scope = op[0], op[4]
        for kind, headers in forged.items():
            r = _call(client, op, headers)
            outcomes[(name, kind)] = r.status_code
            assert r.status_code == 401, (name, kind, r.text)
            assert r.json()["error"]
        r = _call(client, op, bearer(ATTACKER))
        outcomes[(name, "another user's token")] = r.status_code
        assert r.status_code == 403, (name, r.text)
        under_scoped = [s for s in ALL_SCOPES if s != scope]
        r = _call(client, op, bearer(VICTIM, under_scoped))
        outcomes[(name, f"own token without {scope}")] = r.status_code
        assert r.status_code == 403, (name, r.text)
        assert scope in r.json()["error"]
    assert len(outcomes) == len(OPERATIONS) * (len(forged) + 2)
    assert victims_data() == before, "an attack read or changed the victim's data"


@pytest.mark.parametrize("kind", ["alg none", "another key", "expired", "garbage"])
def test_forged_tokens_are_refused_on_anonymous_routes_too(
    client: TestClient, signing, kind: str
) -> None:
    """A token is verified wherever it is presented: a forged one is never silently anonymous."""
    headers = forged_headers(*signing)[kind]
    assert client.post("/search", json={"query": "space"}, headers=headers).status_code == 401
    assert client.get("/content/movie:603", headers=headers).status_code == 401
