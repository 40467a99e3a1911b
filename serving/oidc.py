"""Access tokens from OpenID Connect providers: discovery, JWKS with cached keys and rotation.

For each configured issuer (``serving.oidc`` in the settings):

* **Discovery** (OpenID Connect Discovery 1.0): ``<issuer>/.well-known/openid-configuration`` is
  read once, on the first token from that issuer; its ``issuer`` must equal the configured one
  (section 4.3) and its ``jwks_uri`` gives the keys. A failed read is not cached (the next token
  retries) and answers 503: the provider is unreachable, the token is not known to be bad.
* **Keys**: :class:`jwt.PyJWKClient` caches the key set for ``jwks_cache_s``; a token whose ``kid``
  is not in the cached set forces one refresh (the provider rotated its key), at most once per
  ``jwks_refresh_cooldown_s`` so made-up ``kid`` values cannot flood the provider.
* **Algorithms**: RS256 and ES256 only (per issuer configurable), pinned to the key's own
  algorithm, so a token cannot pick a weaker one; HS256 never reaches this module (HS256 is only
  for the local developer secret, :mod:`serving.auth`).
* **Claims**: ``iss`` (exact), ``aud``, ``exp``, ``iat`` and ``sub`` required; scopes from ``scope``
  (space-separated, RFC 9068) or ``scp`` (list, as some providers send).
* **Clients and agents**: a client-credentials token (``sub`` equal to ``client_id``/``azp``, or
  ``gty: client-credentials``) is an agent acting as itself: it gets its scopes and the
  authenticated rate limit, never a user's data. An agent acting for a user presents a delegated
  token (RFC 8693 token exchange): ``sub`` is the user, ``act.sub`` the agent.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt

from core.settings import OIDCIssuerSettings

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]


class ProviderUnavailable(RuntimeError):
    """The provider's discovery document or key set could not be read."""


class TokenRejected(ValueError):
    """The token is not valid for this provider; the message says why."""


def _allowed_url(url: str) -> bool:
    parsed = urlparse(url)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    return parsed.scheme == "https" or (parsed.scheme == "http" and loopback)


class OIDCProvider:
    """One issuer: lazily discovered, keys cached (thread-safe)."""

    def __init__(self, config: OIDCIssuerSettings) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def issuer(self) -> str:
        return self.config.issuer

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The discovery document once read (``None`` before the first token)."""
        return self._metadata

    def discover(self) -> dict[str, Any]:
        """Read and check the discovery document (once; a failure is retried next time)."""
        with self._lock:
            if self._metadata is not None:
                return self._metadata
            url = self.issuer + DISCOVERY_PATH
            try:
                response = httpx.get(url, timeout=self.config.http_timeout_s)
                response.raise_for_status()
                doc = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ProviderUnavailable(f"cannot read {url}: {exc}") from exc
            if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
                raise ProviderUnavailable(f"{url}: issuer does not match {self.issuer!r}")
            jwks_uri = doc.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not _allowed_url(jwks_uri):
                raise ProviderUnavailable(f"{url}: jwks_uri missing or not https")
            self._jwks = jwt.PyJWKClient(
                jwks_uri,
                cache_keys=False,
                lifespan=self.config.jwks_cache_s,
                timeout=self.config.http_timeout_s,
                cooldown_duration=self.config.jwks_refresh_cooldown_s,
            )
            self._metadata = doc
            log.info("oidc provider discovered", extra={"issuer": self.issuer})
            return doc

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        if not kid:
            raise TokenRejected("token has no kid")
        self.discover()
        assert self._jwks is not None
        try:
            return self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise ProviderUnavailable(f"cannot read the key set of {self.issuer}: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise TokenRejected(f"unknown signing key {kid!r}") from exc

    def decode(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """Verified claims of ``token`` (raises :class:`TokenRejected` or a ``jwt`` error)."""
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise TokenRejected(f"algorithm {alg!r} is not allowed for {self.issuer}")
        if self.config.token_type is not None and header.get("typ") != self.config.token_type:
            raise TokenRejected(f"token type must be {self.config.token_type}")
        key = self.signing_key(header.get("kid"))
        if key.algorithm_name != alg:
            raise TokenRejected(f"key {key.key_id!r} is for {key.algorithm_name}, token says {alg}")
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=self.config.audience,
            issuer=self.issuer,
            leeway=LEEWAY_S,
            options={"require": REQUIRED_CLAIMS},
        )


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated) or ``scp`` (list or string)."""
    scope = claims.get("scope")
    if scope is None:
        scope = claims.get("scp", "")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        return frozenset(scope)
    raise TokenRejected("claim scope must be a space-separated string (or scp a list)")


def is_client_token(claims: dict[str, Any]) -> bool:
    """A client-credentials token: the client is its own subject (no user behind it)."""
    if claims.get("gty") == "client-credentials":
        return True
    sub = claims.get("sub")
    return sub is not None and sub in (claims.get("client_id"), claims.get("azp"))


def actor(claims: dict[str, Any]) -> str | None:
    """The agent acting for the subject (RFC 8693 ``act.sub``), if any."""
    act = claims.get("act")
    if isinstance(act, dict) and isinstance(act.get("sub"), str):
        return act["sub"]
    return None
