"""OAuth2 bearer tokens: JWTs issued and validated per RFC 8725 (JWT best current practice).

Two kinds of tokens are accepted, told apart by the pinned header ``alg``:

* **Identity-provider tokens** (RS256/ES256) from the OpenID Connect issuers in
  ``serving.oidc``, verified by discovery + JWKS with key rotation (:mod:`serving.oidc`); the
  issuer is chosen by the exact ``iss`` claim, an unknown issuer is refused before any network
  call. Users, agents acting for a user (``act``) and client-credentials agents.
* **Developer tokens** (HS256) signed with the local secret, described below; switched off with
  ``serving.dev_tokens: false``. Both kinds share one user-id namespace (a provider's ``sub`` is the
  user id): configure one source of identity per deployment.

Decisions for developer tokens:

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
  ``read:social`` / ``write:social`` cover the social graph (:mod:`serving.social`),
  ``read:watchlist`` / ``write:watchlist`` the watchlist (:mod:`serving.watchlist`).
"""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from core.settings import Settings
from serving.oidc import (
    OIDCProvider,
    ProviderUnavailable,
    TokenRejected,
    actor,
    is_client_token,
    token_scopes,
)

log = logging.getLogger(__name__)

SECRET_ENV = "MEDIA_GATEWAY_JWT_SECRET"
EPHEMERAL_ENV = "MEDIA_GATEWAY_JWT_EPHEMERAL"
ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
MIN_SECRET_BYTES = 32
LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]
OIDC_ALGORITHMS = ("RS256", "ES256")

READ_RECOMMENDATIONS = "read:recommendations"
WRITE_FEEDBACK = "write:feedback"
READ_PREFERENCES = "read:preferences"
WRITE_PREFERENCES = "write:preferences"
READ_SOCIAL = "read:social"
WRITE_SOCIAL = "write:social"
READ_WATCHLIST = "read:watchlist"
WRITE_WATCHLIST = "write:watchlist"
SCOPES: dict[str, str] = {
    READ_RECOMMENDATIONS: "Personalised search, recommendations, group picks and explanations.",
    WRITE_FEEDBACK: "Send ratings and watch signals that train tomorrow's model.",
    READ_PREFERENCES: "Export everything held about the token's own user.",
    WRITE_PREFERENCES: "Set the own services/country, and erase the own data.",
    READ_SOCIAL: "See the own social graph, and friends' activity their privacy settings allow.",
    WRITE_SOCIAL: "Follow, befriend, block, invite to groups, set the own privacy settings.",
    READ_WATCHLIST: "Read the own watchlist, its availability alerts and continue-watching.",
    WRITE_WATCHLIST: "Add titles to and remove them from the own watchlist.",
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
    client: bool = False
    """A client-credentials agent acting as itself (never a user: no personal data)."""
    actor: str | None = None
    """The agent acting for ``subject`` (RFC 8693 ``act``), if any."""
    issuer: str | None = None

    def require(self, scope: str) -> None:
        """Raise 403 unless the token grants ``scope``."""
        if scope not in self.scopes:
            raise AuthError(403, f"token lacks scope {scope}", scope=scope)

    def require_self(self, user: str) -> None:
        """Raise 403 unless the token's subject is ``user`` (nobody touches another's data)."""
        if self.client:
            raise AuthError(403, "a client token acts for no user; use a delegated user token")
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
    """Validates bearer tokens: HS256 developer tokens and the configured OIDC providers'."""

    secret: bytes
    issuer: str
    audience: str
    providers: tuple[OIDCProvider, ...] = ()
    dev_tokens: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, secret: bytes) -> TokenVerifier:
        s = settings.serving
        providers = tuple(OIDCProvider(p) for p in s.oidc)
        return cls(secret, s.jwt_issuer, s.jwt_audience, providers, s.dev_tokens)

    def provider(self, issuer: object) -> OIDCProvider | None:
        return next((p for p in self.providers if p.issuer == issuer), None)

    def verify(self, token: str) -> Principal:
        """Return the principal or raise :class:`AuthError` (401, or 503 when the identity
        provider cannot be reached) naming the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError(401, "malformed token") from exc
        alg = header.get("alg")
        if alg == ALGORITHM and self.dev_tokens:
            return self._verify_dev(token, header)
        if alg in OIDC_ALGORITHMS and self.providers:
            return self._verify_oidc(token, header)
        raise AuthError(401, f"algorithm {alg!r} is not allowed")

    def _verify_dev(self, token: str, header: dict[str, Any]) -> Principal:
        if header.get("typ") != TOKEN_TYPE:
            raise AuthError(401, f"token type must be {TOKEN_TYPE}")
        claims = _checked(
            lambda: jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        )
        return _principal(claims, issuer=self.issuer, oidc=False)

    def _verify_oidc(self, token: str, header: dict[str, Any]) -> Principal:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError as exc:
            raise AuthError(401, "malformed token") from exc
        provider = self.provider(unverified.get("iss"))
        if provider is None:
            raise AuthError(401, "wrong issuer")
        try:
            claims = _checked(lambda: provider.decode(token, header))
        except ProviderUnavailable as exc:
            log.warning("identity provider unavailable", extra={"issuer": provider.issuer})
            raise AuthError(503, "identity provider unavailable; retry later") from exc
        except TokenRejected as exc:
            raise AuthError(401, str(exc)) from exc
        return _principal(claims, issuer=provider.issuer, oidc=True)


def _checked(decode: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a ``jwt.decode`` call, mapping its errors to :class:`AuthError` 401 with a reason."""
    try:
        return decode()
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


def _principal(claims: dict[str, Any], *, issuer: str, oidc: bool) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError(401, "claim sub must be a non-empty string")
    if oidc:
        try:
            scopes = token_scopes(claims)
        except TokenRejected as exc:
            raise AuthError(401, str(exc)) from exc
        return Principal(subject, scopes, is_client_token(claims), actor(claims), issuer)
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise AuthError(401, "claim scope must be a space-separated string")
    return Principal(subject=subject, scopes=frozenset(scope.split()), issuer=issuer)


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
