"""OAuth2 bearer tokens: JWTs issued and validated per RFC 8725 (JWT best current practice).

Decisions:

* **One algorithm, pinned**: HS256 with a shared secret from ``MEDIA_GATEWAY_JWT_SECRET`` (at least
  32 bytes, RFC 7518 section 3.2). The verifier passes ``algorithms=["HS256"]``, so ``alg=none`` and
  algorithm-confusion tokens are rejected.
* **Explicit typing** (RFC 8725 section 3.11): tokens carry ``typ: at+jwt`` (RFC 9068) and the
  verifier requires it, so another kind of JWT signed with the same key is not accepted.
* **Required claims**: ``iss``, ``aud``, ``sub``, ``exp``, ``iat``; issuer and audience come from
  ``ServingSettings``; no leeway beyond ``LEEWAY_S`` for clock skew.
* **No secret, no server**: without the env var the service refuses to start
  (:class:`AuthConfigError`). For local experiments ``MEDIA_GATEWAY_JWT_EPHEMERAL=1`` makes the
  server generate a random per-process secret (logged as a warning): only anonymous calls work
  then, because no other process can sign tokens for it.
* **Scopes** (space-separated ``scope`` claim, RFC 8693 style): ``read:recommendations``
  (search personalisation, recommend, group, explain), ``write:feedback`` (feedback),
  ``read:preferences`` (export own data), ``write:preferences`` (set preferences, erase own data).
  ``write:preferences`` is our addition: changing and erasing data should not ride on a read scope.
  ``read:social`` / ``write:social`` cover the social graph (:mod:`serving.social`).
"""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from media_gateway.settings import Settings

log = logging.getLogger(__name__)

SECRET_ENV = "MEDIA_GATEWAY_JWT_SECRET"
EPHEMERAL_ENV = "MEDIA_GATEWAY_JWT_EPHEMERAL"
ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
MIN_SECRET_BYTES = 32
LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]

READ_RECOMMENDATIONS = "read:recommendations"
WRITE_FEEDBACK = "write:feedback"
READ_PREFERENCES = "read:preferences"
WRITE_PREFERENCES = "write:preferences"
READ_SOCIAL = "read:social"
WRITE_SOCIAL = "write:social"
SCOPES: dict[str, str] = {
    READ_RECOMMENDATIONS: "Personalised search, recommendations, group picks and explanations.",
    WRITE_FEEDBACK: "Send ratings and watch signals that train tomorrow's model.",
    READ_PREFERENCES: "Export everything held about the token's own user.",
    WRITE_PREFERENCES: "Set the own services/country, and erase the own data.",
    READ_SOCIAL: "See the own social graph, and friends' activity their privacy settings allow.",
    WRITE_SOCIAL: "Follow, befriend, block, invite to groups, set the own privacy settings.",
}


class AuthConfigError(RuntimeError):
    """The signing secret is missing or too weak."""


class AuthError(Exception):
    """A request failed authentication (401) or authorisation (403); ``reason`` says why."""

    def __init__(self, status: int, reason: str, *, scope: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.scope = scope

    def www_authenticate(self) -> str:
        """The RFC 6750 ``WWW-Authenticate`` header value for this failure."""
        if self.status == 403:
            return f'Bearer error="insufficient_scope", scope="{self.scope or ""}"'
        return f'Bearer error="invalid_token", error_description="{self.reason}"'


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    subject: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        """Raise 403 unless the token grants ``scope``."""
        if scope not in self.scopes:
            raise AuthError(403, f"token lacks scope {scope}", scope=scope)

    def require_self(self, user: str) -> None:
        """Raise 403 unless the token's subject is ``user`` (nobody touches another's data)."""
        if user != self.subject:
            raise AuthError(403, "token subject does not match the requested user")


def jwt_secret(*, allow_ephemeral: bool | None = None) -> bytes:
    """The signing secret from the environment (see module docstring for the ephemeral option)."""
    value = os.environ.get(SECRET_ENV, "")
    if value:
        secret = value.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise AuthConfigError(
                f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes for HS256 (RFC 7518 3.2)"
            )
        return secret
    if allow_ephemeral is None:
        allow_ephemeral = os.environ.get(EPHEMERAL_ENV, "") == "1"
    if allow_ephemeral:
        log.warning("no %s set: using an ephemeral secret, only anonymous calls work", SECRET_ENV)
        return secrets.token_bytes(MIN_SECRET_BYTES)
    raise AuthConfigError(
        f"{SECRET_ENV} is not set; set it (e.g. `openssl rand -hex 32`) or set {EPHEMERAL_ENV}=1 "
        "for an anonymous-only local server"
    )


def issue_token(
    settings: Settings,
    user: str,
    scopes: list[str],
    ttl_minutes: int = 60,
    *,
    secret: bytes | None = None,
    now: datetime | None = None,
) -> str:
    """Sign a bearer token for ``user`` with ``scopes`` valid for ``ttl_minutes``."""
    if not user:
        raise ValueError("user must not be empty")
    if ttl_minutes < 1:
        raise ValueError("ttl_minutes must be >= 1")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; choose from {sorted(SCOPES)}")
    issued = now or datetime.now(UTC)
    claims = {
        "iss": settings.serving.jwt_issuer,
        "aud": settings.serving.jwt_audience,
        "sub": user,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(minutes=ttl_minutes),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(sorted(set(scopes))),
    }
    key = secret if secret is not None else jwt_secret(allow_ephemeral=False)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})


@dataclass(frozen=True)
class TokenVerifier:
    """Validates bearer tokens against one secret, issuer and audience."""

    secret: bytes
    issuer: str
    audience: str

    @classmethod
    def from_settings(cls, settings: Settings, secret: bytes) -> TokenVerifier:
        return cls(secret, settings.serving.jwt_issuer, settings.serving.jwt_audience)

    def verify(self, token: str) -> Principal:
        """Return the principal or raise :class:`AuthError` (401) naming the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError(401, "malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthError(401, f"algorithm {header.get('alg')!r} is not allowed")
        if header.get("typ") != TOKEN_TYPE:
            raise AuthError(401, f"token type must be {TOKEN_TYPE}")
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(401, "token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(401, "wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(401, "wrong issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, f"missing claim {exc.claim}") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError(401, "token not yet valid") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(401, "bad signature") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"invalid token: {exc}") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError(401, "claim sub must be a non-empty string")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise AuthError(401, "claim scope must be a space-separated string")
        return Principal(subject=subject, scopes=frozenset(scope.split()))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when absent.

    Raises :class:`AuthError` (401) for any other scheme or an empty token.
    """
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "Authorization must be 'Bearer <token>'")
    return token.strip()
