"""The request guard: authentication, scope checks and rate limits, and the API's error type.

Every operation of :class:`serving.gateway.Gateway` runs behind :meth:`Guard.check`, free of any
web framework; ``service.py`` and the route modules translate :class:`ApiError` to an HTTP status,
a JSON ``{"error": reason}`` and headers.

Decisions:

* Anonymous callers are charged to their client address (``ip:<address>``, the stricter limit);
  a verified token to its subject (``sub:<subject>``). The address is the request's client as the
  server sees it: the socket peer, or the client a trusted proxy names (:mod:`serving.ratelimit`,
  uvicorn's proxy-header handling).
* A request with an invalid token is charged to the caller's address before the 401, so
  guessing tokens is rate-limited too.
* A token acts only for its own subject (:func:`require_self`): 403 otherwise.
* A rate-limit store that cannot be written answers 503 (:func:`store_errors_as_503`), never a
  silent pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from core.feedback import StoreUnavailableError
from core.settings import Settings
from serving import auth
from serving.auth import AuthError, Principal, TokenVerifier
from serving.ratelimit import Limiter, build_limiters

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 200: HTTP ``status``, a ``reason`` and extra ``headers``."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}

    @classmethod
    def from_auth(cls, exc: AuthError) -> ApiError:
        return cls(exc.status, exc.reason, {"WWW-Authenticate": exc.www_authenticate()})


@contextlib.contextmanager
def store_errors_as_503() -> Iterator[None]:
    """Turn "the user-state store cannot be written" into 503: nothing was acknowledged."""
    try:
        yield
    except StoreUnavailableError as exc:
        log.error("user-state store unavailable: %s", exc)
        raise ApiError(
            503, "storage unavailable: nothing was saved; retry later", {"Retry-After": "5"}
        ) from exc


@dataclass
class Guard:
    """Authentication, scope checks and rate limits for one request."""

    verifier: TokenVerifier
    anonymous: Limiter
    authenticated: Limiter
    rate_limits: str = "per-process"
    """Where the limits are kept (shared by all workers, or per process as a fallback)."""

    @classmethod
    def from_settings(cls, settings: Settings, secret: bytes) -> Guard:
        anonymous, authenticated, where = build_limiters(
            settings.serving.anonymous_per_minute,
            settings.serving.authenticated_per_minute,
            settings.paths.feedback,
        )
        return cls(TokenVerifier.from_settings(settings, secret), anonymous, authenticated, where)

    def _charge(self, limiter: Limiter, key: str) -> None:
        with store_errors_as_503():
            decision = limiter.acquire(key)
        if not decision.allowed:
            raise ApiError(
                429,
                "rate limit exceeded; retry later",
                {"Retry-After": decision.retry_after_header},
            )

    def check(
        self, authorization: str | None, client_ip: str | None, scope: str | None
    ) -> Principal | None:
        """The verified caller (``None`` = anonymous); raises :class:`ApiError` 401/403/429."""
        ip_key = f"ip:{client_ip or 'unknown'}"
        try:
            token = auth.bearer_token(authorization)
        except AuthError as exc:
            self._charge(self.anonymous, ip_key)
            raise ApiError.from_auth(exc) from exc
        if token is None:
            self._charge(self.anonymous, ip_key)
            if scope is not None:
                raise ApiError(
                    401,
                    f"a bearer token with scope {scope} is required",
                    {"WWW-Authenticate": f'Bearer scope="{scope}"'},
                )
            return None
        try:
            principal = self.verifier.verify(token)
        except AuthError as exc:
            self._charge(self.anonymous, ip_key)
            raise ApiError.from_auth(exc) from exc
        self._charge(self.authenticated, f"sub:{principal.subject}")
        if scope is not None:
            try:
                principal.require(scope)
            except AuthError as exc:
                raise ApiError.from_auth(exc) from exc
        return principal


def require_self(principal: Principal | None, user: str) -> Principal:
    """``principal`` if it acts for ``user``; 401 without a token, 403 for another subject."""
    if principal is None:
        raise ApiError(401, "a bearer token is required for personal data")
    try:
        principal.require_self(user)
    except AuthError as exc:
        raise ApiError.from_auth(exc) from exc
    return principal
