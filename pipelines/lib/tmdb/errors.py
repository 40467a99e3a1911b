"""Typed TMDB errors: TMDB error bodies ``{"success": false, "status_code": N, "status_message":
...}`` and HTTP statuses become :class:`TMDBError` subclasses. Messages name the path, never the
query string (a v3 ``api_key`` travels there)."""

from __future__ import annotations

import httpx


class TMDBConfigError(ValueError):
    """The client is misconfigured (e.g. no credentials in the environment)."""


class TMDBError(RuntimeError):
    """An error answer from TMDB: HTTP ``status``, TMDB ``code`` (``status_code``) and message."""

    def __init__(self, status: int | None, code: int | None, message: str, path: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        where = f" for {path}" if path else ""
        super().__init__(f"TMDB error{where}: HTTP {status}, code {code}: {message}")


class TMDBAuthError(TMDBError):
    """Code 7 / HTTP 401: invalid or missing API key."""


class TMDBNotFound(TMDBError):
    """Code 34 / HTTP 404: the resource does not exist."""


class TMDBRateLimited(TMDBError):
    """Code 25 / HTTP 429, still throttled after every retry."""


class TMDBInvalidPage(TMDBError):
    """Code 22: page outside 1..500."""


class TMDBTransportError(TMDBError):
    """The request never got an answer (connection, timeout), after every retry."""


class TMDBPayloadError(TMDBError):
    """An answer that is not the expected JSON shape (the message says what is wrong)."""


_BY_CODE: dict[int, type[TMDBError]] = {
    7: TMDBAuthError,
    34: TMDBNotFound,
    25: TMDBRateLimited,
    22: TMDBInvalidPage,
}
_BY_STATUS: dict[int, type[TMDBError]] = {
    401: TMDBAuthError,
    404: TMDBNotFound,
    429: TMDBRateLimited,
}


def error_from_response(response: httpx.Response) -> TMDBError:
    """The typed error for an error response (TMDB body when present, else the HTTP status)."""
    path = response.request.url.path if response.request is not None else ""
    code: int | None = None
    message = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "status_code" in body:
        code = int(body["status_code"])
        message = str(body.get("status_message", message))
    cls = _BY_CODE.get(code) if code is not None else None
    cls = cls or _BY_STATUS.get(response.status_code, TMDBError)
    return cls(response.status_code, code, message, path)
