"""HTTP routes of the social graph (included into :mod:`serving.http_routes`).

The acting user is always the token's subject: ``/social/...`` never takes a user id for "who
acts", only for "on whom". Reads need ``read:social``, changes ``write:social``. A
:class:`~serving.social.store.SocialError` becomes its status with ``{"error": reason}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from fastapi import APIRouter, Path, Request

from serving import auth
from serving.gateway import Gateway
from serving.guard import ApiError
from serving.openapi import error_responses
from serving.ratelimit import client_ip
from serving.social import views
from serving.social.schemas import ActivityResponse, FeedResponse, InviteBody, PrivacyBody
from serving.social.store import Privacy, SocialError, SocialStore

# Every route needs a token (401; 503 when the identity provider is down) with a scope (403), and
# any target may have blocked the caller (403); each route adds the answers of its own operation.
router = APIRouter(prefix="/social", tags=["social"], responses=error_responses(403, 503))
OtherUser = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
InvitationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def _gateway() -> Gateway:
    return bentoml.get_current_service().gateway  # type: ignore[attr-defined]


def _actor(request: Request, scope: str) -> tuple[str, Gateway]:
    """The verified subject (a token with ``scope`` is required) and the gateway."""
    gateway = _gateway()
    client = client_ip(request)
    principal = gateway.guard.check(request.headers.get("authorization"), client, scope)
    if principal is None:  # check() already refuses a missing token when a scope is required
        raise ApiError(401, "a bearer token is required")
    if principal.client:
        raise ApiError(403, "a client token acts for no user; use a delegated user token")
    return principal.subject, gateway


def _social(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except SocialError as exc:
        raise ApiError(exc.status, exc.reason) from exc


def _store(gateway: Gateway) -> SocialStore:
    return gateway.social


@router.get("/me")
def me(request: Request) -> dict[str, Any]:
    """Everything about the caller's own graph: friends, follows, blocks, requests, invitations."""
    user, gateway = _actor(request, auth.READ_SOCIAL)
    return {"user": user, **_store(gateway).export(user)}


@router.put("/privacy", responses=error_responses(400, 409, 422))
def set_privacy(body: PrivacyBody, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).set_privacy, user, Privacy(body.activity, body.friend_list))
    return {"user": user, "privacy": body.model_dump()}


@router.post("/friends/{other}", responses=error_responses(404, 409, 422))
def befriend(other: OtherUser, request: Request) -> dict[str, Any]:
    """Send a friend request (or accept the other's pending one): ``requested`` or ``friends``."""
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    return {"user": other, "status": _social(_store(gateway).request_friend, user, other)}


@router.post("/friend-requests/{requester}/accept", responses=error_responses(404, 422))
def accept_friend(requester: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).accept_friend, user, requester)
    return {"user": requester, "status": "friends"}


@router.delete("/friends/{other}", responses=error_responses(404, 422))
def unfriend(other: OtherUser, request: Request) -> dict[str, Any]:
    """End a friendship or decline/cancel a request (idempotent)."""
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    return {"user": other, "removed": _store(gateway).unfriend(user, other)}


@router.put("/following/{other}", responses=error_responses(404, 409, 422))
def follow(other: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).follow, user, other)
    return {"user": other, "following": True}


@router.delete("/following/{other}", responses=error_responses(404, 422))
def unfollow(other: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _store(gateway).unfollow(user, other)
    return {"user": other, "following": False}


@router.put("/blocks/{other}", responses=error_responses(404, 409, 422))
def block(other: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).block, user, other)
    return {"user": other, "blocked": True}


@router.delete("/blocks/{other}", responses=error_responses(404, 422))
def unblock(other: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _store(gateway).unblock(user, other)
    return {"user": other, "blocked": False}


@router.post("/invitations", responses=error_responses(400, 409, 422))
def invite(body: InviteBody, request: Request) -> dict[str, Any]:
    """Invite someone to your groups; they consent by accepting it."""
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    ttl = body.ttl_hours * 3600 if body.ttl_hours is not None else None
    inv = _social(_store(gateway).invite, user, body.invitee, ttl)
    return vars(inv)


@router.post("/invitations/{invitation_id}/accept", responses=error_responses(404, 422))
def accept_invitation(invitation_id: InvitationId, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).answer_invitation, user, invitation_id, True)
    return {"id": invitation_id, "status": "accepted"}


@router.post("/invitations/{invitation_id}/decline", responses=error_responses(404, 422))
def decline_invitation(invitation_id: InvitationId, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    _social(_store(gateway).answer_invitation, user, invitation_id, False)
    return {"id": invitation_id, "status": "declined"}


@router.delete("/invitations/{invitation_id}", responses=error_responses(404, 422))
def revoke_invitation(invitation_id: InvitationId, request: Request) -> dict[str, Any]:
    """Either party withdraws (the invitee takes back consent)."""
    user, gateway = _actor(request, auth.WRITE_SOCIAL)
    return {"id": invitation_id, "removed": _store(gateway).revoke_invitation(user, invitation_id)}


@router.get("/users/{other}/activity", responses=error_responses(404, 422))
def user_activity(other: OtherUser, request: Request) -> ActivityResponse:
    user, gateway = _actor(request, auth.READ_SOCIAL)
    return _social(
        views.activity, _store(gateway), gateway.holder.history, gateway.state.catalog, user, other
    )


@router.get("/users/{other}/friends", responses=error_responses(404, 422))
def user_friends(other: OtherUser, request: Request) -> dict[str, Any]:
    user, gateway = _actor(request, auth.READ_SOCIAL)
    return {"user": other, "friends": _social(views.friend_list, _store(gateway), user, other)}


@router.get("/feed")
def feed(request: Request) -> FeedResponse:
    """Recent titles of friends and followed users, as far as each one's privacy allows."""
    user, gateway = _actor(request, auth.READ_SOCIAL)
    return views.feed(_store(gateway), gateway.holder.history, gateway.state.catalog, user)
