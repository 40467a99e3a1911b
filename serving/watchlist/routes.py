"""HTTP routes: ``/users/{user}/watchlist``, its alerts, and ``/users/{user}/continue-watching``.

Each needs a token for ``{user}`` itself: reads ``read:watchlist``, changes ``write:watchlist``.
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from fastapi import APIRouter, Path, Query, Request

from serving import auth
from serving.gateway import Gateway
from serving.guard import ApiError
from serving.openapi import error_responses
from serving.ratelimit import client_ip
from serving.watchlist import service

# A token for ``{user}`` itself (401/403; 503 when the identity provider is down); path and query
# parameters are validated (422); a path that cannot be routed (e.g. a line break in a parameter)
# or an unknown content id is 404.
router = APIRouter(tags=["watchlist"], responses=error_responses(403, 404, 422, 503))
UserPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
ContentPath = Annotated[str, Path(min_length=3, max_length=256)]


def _gateway() -> Gateway:
    return bentoml.get_current_service().gateway  # type: ignore[attr-defined]


def _owner(request: Request, user: str, scope: str) -> Gateway:
    """Authenticate (``scope`` required) and check the token is ``user``'s own."""
    gateway = _gateway()
    client = client_ip(request)
    principal = gateway.guard.check(request.headers.get("authorization"), client, scope)
    if principal is None:
        raise ApiError(401, "a bearer token is required")
    try:
        principal.require_self(user)
    except auth.AuthError as exc:
        raise ApiError.from_auth(exc) from exc
    return gateway


@router.get("/users/{user}/watchlist")
def get_watchlist(user: UserPath, request: Request) -> dict[str, Any]:
    return service.watchlist(_owner(request, user, auth.READ_WATCHLIST), user)


@router.put("/users/{user}/watchlist/{content_id}", responses=error_responses(409))
def add_to_watchlist(user: UserPath, content_id: ContentPath, request: Request) -> dict[str, Any]:
    return service.add(_owner(request, user, auth.WRITE_WATCHLIST), user, content_id)


@router.delete("/users/{user}/watchlist/{content_id}")
def remove_from_watchlist(
    user: UserPath, content_id: ContentPath, request: Request
) -> dict[str, Any]:
    return service.remove(_owner(request, user, auth.WRITE_WATCHLIST), user, content_id)


@router.get("/users/{user}/watchlist/alerts")
def watchlist_alerts(
    user: UserPath,
    request: Request,
    since: Annotated[int, Query(ge=0, description="last alert id already seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Watchlist titles that joined or left the user's services (checked now, then listed)."""
    return service.alerts(_owner(request, user, auth.READ_WATCHLIST), user, since, limit)


@router.get("/users/{user}/continue-watching")
def get_continue_watching(
    user: UserPath, request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """Series in progress (season/episode) and unfinished films, most recent first."""
    return service.progress(_owner(request, user, auth.READ_WATCHLIST), user, limit)
