"""Agent-Ready Web (ARW v0.1 draft) discovery: the manifest, ``llms.txt`` and ``.llm.md`` views.

The manifest declares every action of the API with its endpoint, method, auth and JSON schema (the
pydantic request models), so an agent can call it without scraping. Decisions:

* ``profile`` is ``ARW-3``: discovery (manifest, llms.txt), machine views (``.llm.md`` and
  schema.org JSON-LD per title, ``AI-*`` headers) and OAuth-scoped actions; no MCP/ACP/A2A
  endpoint, so not ARW-4 and ``protocols`` is empty.
* Tokens come from the identity providers in ``serving.oidc`` (listed under ``oauth.issuers``
  with their discovery documents: an agent reads ``token_endpoint`` there and uses the
  client-credentials grant, or token exchange to act for a user) or, locally, out of band
  (``media-gateway token``). The service is no authorization server itself, so
  ``oauth.authorization_url``/``token_url`` are the first provider's (from its discovery document,
  once read) or ``null`` rather than URLs that would 404.
* Policies: no training on our data (it contains TMDB/JustWatch data we may not relicense);
  inference allowed with attribution, within the rate limits of the settings.
* ``llms.txt`` carries the same data as YAML, as the draft asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION
from core.settings import Settings
from serving import auth
from serving.schemas import (
    ExplainRequest,
    FeedbackRequest,
    GroupRequest,
    PreferencesBody,
    RecommendRequest,
    SearchRequest,
)
from serving.social.schemas import InviteBody, PrivacyBody

ARW_VERSION = "0.1"
ARW_PROFILE = "ARW-3"
ATTRIBUTION_HEADER = f"{TMDB_ATTRIBUTION} {JUSTWATCH_ATTRIBUTION}"
ARW_HEADERS = {"AI-ARW-Level": ARW_PROFILE, "AI-Attribution": ATTRIBUTION_HEADER}
SITE_NAME = "Media Gateway"
SITE_DESCRIPTION = (
    "What to watch tonight across your streaming services: natural-language search, personalised "
    "and group recommendations with explanations, and where each title streams in your country."
)


def _action(
    id_: str,
    name: str,
    description: str,
    endpoint: str,
    method: str,
    scopes: Sequence[str] = (),
    schema: type[BaseModel] | None = None,
    *,
    auth_kind: str = "oauth2",
) -> dict[str, Any]:
    return {
        "id": id_,
        "name": name,
        "description": description,
        "endpoint": endpoint,
        "method": method,
        "auth": auth_kind,
        "scopes": list(scopes),
        "schema": schema.model_json_schema() if schema else None,
    }


def actions() -> list[dict[str, Any]]:
    """Every action the API offers (paths are relative to the site's homepage)."""
    rec = [auth.READ_RECOMMENDATIONS]
    return [
        _action(
            "search",
            "Search titles",
            "Natural-language search with filters; anonymous allowed, a bearer token with "
            "read:recommendations personalises it for its own user.",
            "/search",
            "POST",
            schema=SearchRequest,
            auth_kind="none",
        ),
        _action(
            "recommend",
            "Recommend for a user",
            "Personalised picks on the user's services in their country, with explanations.",
            "/recommend",
            "POST",
            rec,
            RecommendRequest,
        ),
        _action(
            "recommend_group",
            "Recommend for a group",
            "Picks for several people watching together (average or least-misery); the caller "
            "must be one of the members and every other member must have consented (a friend, "
            "or an accepted invitation: see invite_to_groups).",
            "/recommend/group",
            "POST",
            rec,
            GroupRequest,
        ),
        _action(
            "explain",
            "Explain a recommendation",
            "Evidence why a title suits the user: similar watched titles, shared genres, model.",
            "/explain",
            "POST",
            rec,
            ExplainRequest,
        ),
        _action(
            "feedback",
            "Send feedback",
            "Rating / watched / completion for a title; stored durably and used at once.",
            "/feedback",
            "POST",
            [auth.WRITE_FEEDBACK],
            FeedbackRequest,
        ),
        _action(
            "availability",
            "Where to watch",
            "Offers (service, kind, price, deep link) of a title in a country (?country=US).",
            "/content/{id}/availability",
            "GET",
            auth_kind="none",
        ),
        _action(
            "set_preferences",
            "Set streaming preferences",
            "The user's services, country and accepted offer kinds.",
            "/users/{user}/preferences",
            "PUT",
            [auth.WRITE_PREFERENCES],
            PreferencesBody,
        ),
        _action(
            "export_user_data",
            "Export own data",
            "Everything held about the user (GDPR access and portability), as JSON.",
            "/users/{user}/export",
            "GET",
            [auth.READ_PREFERENCES],
        ),
        _action(
            "erase_user_data",
            "Erase own data",
            "Deletes profile and feedback now and the watch history at the next nightly run.",
            "/users/{user}",
            "DELETE",
            [auth.WRITE_PREFERENCES],
        ),
        *social_actions(),
        *watchlist_actions(),
        _action(
            "graphql",
            "GraphQL",
            "Titles, availability, search, recommendations, explanations, group picks, history, "
            "watchlist; mutations for feedback, preferences and watchlist. Same bearer tokens and "
            "per-field scopes as the REST actions; GET for queries; persisted operations by id "
            "(sha256 of the operation text).",
            "/graphql",
            "POST",
            sorted(auth.SCOPES),
        ),
    ]


def watchlist_actions() -> list[dict[str, Any]]:
    """Watchlist, availability alerts and continue-watching (:mod:`serving.watchlist`)."""
    read, write = [auth.READ_WATCHLIST], [auth.WRITE_WATCHLIST]
    return [
        _action(
            "get_watchlist",
            "Watchlist",
            "The user's watchlist with where each title streams on their services now.",
            "/users/{user}/watchlist",
            "GET",
            read,
        ),
        _action(
            "add_to_watchlist",
            "Add to watchlist",
            "Add a title (idempotent).",
            "/users/{user}/watchlist/{id}",
            "PUT",
            write,
        ),
        _action(
            "remove_from_watchlist",
            "Remove from watchlist",
            "Remove a title.",
            "/users/{user}/watchlist/{id}",
            "DELETE",
            write,
        ),
        _action(
            "watchlist_alerts",
            "Availability alerts",
            "Watchlist titles that joined or left the user's services in their country; "
            "?since=<last id> resumes.",
            "/users/{user}/watchlist/alerts",
            "GET",
            read,
        ),
        _action(
            "continue_watching",
            "Continue watching",
            "Series in progress (season, episode, next episode) and unfinished films.",
            "/users/{user}/continue-watching",
            "GET",
            read,
        ),
    ]


def social_actions() -> list[dict[str, Any]]:
    """The social graph's actions (:mod:`serving.social`); the actor is the token's subject."""
    read, write = [auth.READ_SOCIAL], [auth.WRITE_SOCIAL]
    return [
        _action(
            "social_me",
            "Own social graph",
            "Friends, follows, blocks, pending friend requests, group invitations, privacy.",
            "/social/me",
            "GET",
            read,
        ),
        _action(
            "befriend",
            "Ask for friendship",
            "Send a friend request (friends = both agreed); accepts the other's pending request.",
            "/social/friends/{user}",
            "POST",
            write,
        ),
        _action(
            "accept_friend",
            "Accept a friend request",
            "Accept the pending friend request sent by {user}.",
            "/social/friend-requests/{user}/accept",
            "POST",
            write,
        ),
        _action(
            "unfriend",
            "End a friendship",
            "Unfriend, or decline / cancel a friend request.",
            "/social/friends/{user}",
            "DELETE",
            write,
        ),
        _action(
            "follow",
            "Follow a user",
            "One-way; shows only what the followed user made public.",
            "/social/following/{user}",
            "PUT",
            write,
        ),
        _action(
            "block",
            "Block a user",
            "Removes every link with {user}; they see nothing of the caller any more.",
            "/social/blocks/{user}",
            "PUT",
            write,
        ),
        _action(
            "unfollow",
            "Stop following",
            "Stop following {user}.",
            "/social/following/{user}",
            "DELETE",
            write,
        ),
        _action(
            "unblock",
            "Unblock a user",
            "Lift a block (links removed by it are not restored).",
            "/social/blocks/{user}",
            "DELETE",
            write,
        ),
        _action(
            "set_privacy",
            "Set privacy",
            "Who sees the caller's activity and friend list: private (default), friends, public.",
            "/social/privacy",
            "PUT",
            write,
            PrivacyBody,
        ),
        _action(
            "invite_to_groups",
            "Invite to group recommendations",
            "The invitee consents by accepting; then the caller may include them in "
            "/recommend/group until the invitation expires.",
            "/social/invitations",
            "POST",
            write,
            InviteBody,
        ),
        _action(
            "accept_invitation",
            "Accept a group invitation",
            "Consent to be included in the inviter's group recommendations.",
            "/social/invitations/{id}/accept",
            "POST",
            write,
        ),
        _action(
            "friends_feed",
            "Friends' activity",
            "Recent titles of friends and followed users, as far as each one's privacy allows.",
            "/social/feed",
            "GET",
            read,
        ),
        _action(
            "user_activity",
            "A user's activity",
            "Recent titles of {user}, if their privacy setting admits the caller.",
            "/social/users/{user}/activity",
            "GET",
            read,
        ),
    ]


def oauth_section(
    settings: Settings, metadata: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """How to get a token: the OIDC issuers (``metadata``: discovery documents already read, by
    issuer) and the developer tokens."""
    s = settings.serving
    first = (metadata or {}).get(s.oidc[0].issuer, {}) if s.oidc else {}
    algorithms = sorted({a for p in s.oidc for a in p.algorithms})
    kinds = ([f"{'/'.join(algorithms)} from the issuers below"] if s.oidc else []) + (
        ["HS256 developer tokens, typ at+jwt"] if s.dev_tokens else []
    )
    return {
        "authorization_url": first.get("authorization_endpoint"),
        "token_url": first.get("token_endpoint"),
        "scopes": sorted(auth.SCOPES),
        "scope_descriptions": dict(auth.SCOPES),
        "issuers": [
            {
                "issuer": p.issuer,
                "audience": p.audience,
                "openid_configuration": p.issuer + "/.well-known/openid-configuration",
            }
            for p in s.oidc
        ],
        "grant_types": (
            ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]
            if s.oidc
            else []
        ),
        "agents": "client-credentials tokens act as the agent itself (no personal data); to act "
        "for a user, exchange for a token whose sub is the user and act.sub the agent",
        "token_issuance": (
            "out of band: `media-gateway token --user U --scopes S`" if s.dev_tokens else None
        ),
        "token_type": "Bearer JWT (" + "; ".join(kinds) + ")",
    }


def build_manifest(
    settings: Settings,
    homepage: str,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``/.well-known/arw-manifest.json`` document for a site served at ``homepage``
    (``metadata``: OIDC discovery documents already read, by issuer)."""
    base = homepage.rstrip("/")
    s = settings.serving
    return {
        "version": ARW_VERSION,
        "profile": ARW_PROFILE,
        "site": {
            "name": SITE_NAME,
            "homepage": base + "/",
            "description": SITE_DESCRIPTION,
            "contact": None,
        },
        "content": [
            {
                "url": "/",
                "machine_view": "/llms.txt",
                "purpose": "Overview of the service, its actions and policies",
                "priority": "high",
            },
            {
                "url": "/content/{id}",
                "machine_view": "/content/{id}.llm.md",
                "purpose": "One title: metadata, schema.org JSON-LD, where to watch",
                "priority": "high",
            },
        ],
        "actions": actions(),
        "realtime": {
            "url": ("ws" + base[4:] if base.startswith("http") else base) + "/ws",
            "transport": "websocket, JSON text messages",
            "auth": "Authorization: Bearer <token> (or ?access_token=) with read:recommendations",
            "messages": {
                "client": ["subscribe {titles}", "unsubscribe {titles}", "pong"],
                "server": ["welcome", "subscribed", "availability", "top10", "ping", "reset"],
            },
            "resume": "?resume=<last seq seen>; events carry a per-user seq",
        },
        "protocols": [],
        "oauth": oauth_section(settings, metadata),
        "policies": {
            "training": {"allowed": False},
            "inference": {
                "allowed": True,
                "restrictions": [
                    "Attribute TMDB for metadata and JustWatch for availability when showing them",
                    "No bulk harvesting of the catalogue",
                    "Personal data only with the user's own token",
                ],
            },
            "attribution": {
                "required": True,
                "format": "text",
                "template": ATTRIBUTION_HEADER,
            },
            "rate_limits": {
                "anonymous": f"{s.anonymous_per_minute} requests per minute per client IP",
                "authenticated": f"{s.authenticated_per_minute} requests per minute per user",
                "on_limit": "429 with Retry-After",
            },
        },
    }


def llms_txt(manifest: Mapping[str, Any]) -> str:
    """``/llms.txt``: a short heading, then the manifest as YAML (schemas left out for brevity)."""
    slim = dict(manifest)
    slim["actions"] = [{k: v for k, v in a.items() if k != "schema"} for a in manifest["actions"]]
    body = yaml.safe_dump(slim, sort_keys=False, allow_unicode=True, width=100)
    return (
        f"# {SITE_NAME}\n# {SITE_DESCRIPTION}\n"
        "# Full manifest with JSON schemas: /.well-known/arw-manifest.json\n\n" + body
    )


def content_markdown(view: Mapping[str, Any]) -> str:
    """The ``.llm.md`` machine view of a title, rendered from its JSON-LD view."""
    lines = [f"# {view.get('name', view['identifier'])}", ""]
    facts = [
        ("Type", view.get("@type")),
        ("Released", view.get("datePublished") or view.get("startDate")),
        ("Runtime", view.get("duration") or view.get("timeRequired")),
        ("Genres", ", ".join(view.get("genre", []))),
        ("Directed by", ", ".join(p["name"] for p in view.get("director", []))),
        ("Created by", ", ".join(p["name"] for p in view.get("creator", []))),
        ("Starring", ", ".join(p["name"] for p in view.get("actor", [])[:5])),
    ]
    rating = view.get("aggregateRating")
    if rating:
        facts.append(("Rating", f"{rating['ratingValue']}/10 ({rating['ratingCount']} votes)"))
    lines += [f"- {k}: {v}" for k, v in facts if v]
    if view.get("description"):
        lines += ["", view["description"]]
    providers = view.get("x-arw", {}).get("watch_providers", [])
    if providers:
        lines += ["", "## Where to watch", ""]
        for o in providers:
            price = f" {o['price']} {o.get('currency') or ''}".rstrip() if o.get("price") else ""
            link = f" <{o['deep_link']}>" if o.get("deep_link") else ""
            lines.append(
                f"- {o['country']}: {o.get('provider_name') or o['provider_id']} "
                f"({o['monetization'].lower()}{price}){link}"
            )
    lines += ["", f"_{view.get('creditText', TMDB_ATTRIBUTION)}_", ""]
    return "\n".join(lines)


class ArwHeadersMiddleware:
    """ASGI middleware adding the ``AI-ARW-Level`` and ``AI-Attribution`` headers to responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in ARW_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self._headers]}
            await send(message)

        await self.app(scope, receive, with_headers)
