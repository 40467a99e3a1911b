"""GraphQL types and resolvers: the REST operations, one field each, same rules.

Every resolver runs the same :class:`~serving.gateway.Gateway` call as its REST route, in a worker
thread (ranking is CPU work; the event loop stays free). Scopes are checked per field exactly as
on the corresponding route; an :class:`~serving.guard.ApiError` becomes a GraphQL error whose
``extensions`` carry the HTTP ``status`` the REST route would have answered. Nested evidence and
context objects are ``JSON`` scalars with the REST shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON
from strawberry.types import Info

from serving import auth
from serving.auth import AuthError, Principal
from serving.gateway import Gateway
from serving.guard import ApiError, require_self
from serving.schemas import (
    ExplainRequest,
    FeedbackRequest,
    GroupRequest,
    PreferencesBody,
    RecommendRequest,
    ResultItem,
    SearchRequest,
)
from serving.watchlist import service as watchlist_service

T = TypeVar("T")


@strawberry.type
class Offer:
    country: str
    provider_id: str
    provider_name: str
    kind: str
    monetization: str
    price: float | None
    currency: str | None
    presentation_type: str | None
    deep_link: str | None


@strawberry.type
class Title:
    content_id: str
    title: str | None
    type: str | None
    year: int | None
    genres: list[str]
    runtime: int | None
    url: str
    score: float
    similarity: float | None
    components: JSON
    explanation: str | None
    evidence: JSON | None
    offers: list[Offer]
    member_scores: JSON | None


@strawberry.type
class TitleInfo:
    content_id: str
    name: str | None
    jsonld: JSON
    """The schema.org view of ``GET /content/{id}``."""


@strawberry.type
class Availability:
    content_id: str
    country: str | None
    offers: list[Offer]


@strawberry.type
class SearchResult:
    results: list[Title]
    total: int
    next_cursor: str | None
    intent: JSON
    applied_filters: JSON
    query_source: str


@strawberry.type
class Recommendations:
    user: str
    results: list[Title]
    model_version: str | None
    country: str
    services: list[str]


@strawberry.type
class GroupRecommendations:
    members: list[str]
    strategy: str
    results: list[Title]
    model_version: str | None


@strawberry.type
class ExplanationResult:
    user: str
    content_id: str
    title: str
    score: float | None
    components: JSON
    explanation: str
    evidence: JSON
    model_version: str | None


@strawberry.type
class HistoryItem:
    content_id: str
    title: str | None
    weight: float


@strawberry.type
class WatchlistItem:
    content_id: str
    title: str | None
    added_at: str
    available: bool
    offers: list[Offer]


@strawberry.type
class Watchlist:
    user: str
    country: str
    items: list[WatchlistItem]


@strawberry.type
class WatchlistChange:
    user: str
    content_id: str
    changed: bool


@strawberry.type
class FeedbackAck:
    event_id: str
    accepted: bool
    durable: bool


@strawberry.type
class Preferences:
    user: str
    services: list[str]
    country: str
    monetization: list[str]


# ---- plumbing -----------------------------------------------------------------------------------
def _gateway(info: Info) -> Gateway:
    return info.context["gateway"]


def _principal(info: Info, scope: str | None) -> Principal | None:
    principal: Principal | None = info.context["principal"]
    if scope is None:
        return principal
    if principal is None:
        raise ApiError(401, f"a bearer token with scope {scope} is required")
    try:
        principal.require(scope)
    except AuthError as exc:
        raise ApiError.from_auth(exc) from exc
    return principal


def _error(exc: ApiError) -> GraphQLError:
    return GraphQLError(exc.reason, extensions={"status": exc.status})


async def _run(call: Callable[[], T]) -> T:
    """Run a gateway call in a worker thread; API and validation errors become GraphQL errors."""
    try:
        return await run_in_threadpool(call)
    except ApiError as exc:
        raise _error(exc) from exc
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise GraphQLError(f"invalid input: {reasons}", extensions={"status": 400}) from exc


def _offers(offers: list[Any]) -> list[Offer]:
    return [Offer(**(o if isinstance(o, dict) else o.model_dump())) for o in offers]


def _title(item: ResultItem) -> Title:
    data = item.model_dump(mode="json")
    data["offers"] = _offers(data["offers"])
    return Title(**data)


def _checked(info: Info, scope: str | None) -> tuple[Gateway, Principal | None]:
    try:
        return _gateway(info), _principal(info, scope)
    except ApiError as exc:
        raise _error(exc) from exc


def _base(info: Info) -> str:
    return str(info.context["request"].base_url).rstrip("/").removesuffix("/graphql")


@strawberry.type
class Query:
    @strawberry.field(description="One title: its schema.org JSON-LD view.")
    async def title(self, info: Info, id: strawberry.ID) -> TitleInfo:
        gateway, _ = _checked(info, None)
        view = await _run(lambda: gateway.content(str(id), _base(info)))
        return TitleInfo(content_id=view["identifier"], name=view.get("name"), jsonld=view)

    @strawberry.field(description="Where a title streams (all countries, or one).")
    async def availability(
        self, info: Info, id: strawberry.ID, country: str | None = None
    ) -> Availability:
        gateway, _ = _checked(info, None)
        tid, offers = await _run(lambda: gateway.offers(str(id), country))
        return Availability(content_id=tid, country=country, offers=_offers(offers))

    @strawberry.field(description="Natural-language search (anonymous allowed).")
    async def search(
        self,
        info: Info,
        query: str,
        limit: int = 20,
        filters: JSON | None = None,
        user: str | None = None,
        cursor: str | None = None,
    ) -> SearchResult:
        gateway, principal = _checked(info, None)

        def call() -> Any:
            req = SearchRequest.model_validate(
                {
                    "query": query,
                    "limit": limit,
                    "filters": filters or {},
                    "user": user,
                    "cursor": cursor,
                }
            )
            return gateway.search(req, principal, _base(info))

        res = await _run(call)
        return SearchResult(
            results=[_title(r) for r in res.results],
            total=res.total,
            next_cursor=res.next_cursor,
            intent=res.intent.model_dump(mode="json"),
            applied_filters=res.applied_filters,
            query_source=res.query_source,
        )

    @strawberry.field(description="Personal picks on the user's services (read:recommendations).")
    async def recommendations(
        self, info: Info, user: str, limit: int = 10, context: JSON | None = None
    ) -> Recommendations:
        gateway, principal = _checked(info, auth.READ_RECOMMENDATIONS)

        def call() -> Any:
            req = RecommendRequest.model_validate(
                {"user": user, "limit": limit, "context": context or {}}
            )
            return gateway.recommend(req, principal, _base(info))

        res = await _run(call)
        return Recommendations(
            user=res.user,
            results=[_title(r) for r in res.results],
            model_version=res.model_version,
            country=res.country,
            services=res.services,
        )

    @strawberry.field(description="Why a title suits the user (read:recommendations).")
    async def explanation(
        self, info: Info, user: str, content_id: strawberry.ID
    ) -> ExplanationResult:
        gateway, principal = _checked(info, auth.READ_RECOMMENDATIONS)
        res = await _run(
            lambda: gateway.explain(
                ExplainRequest.model_validate({"user": user, "content_id": str(content_id)}),
                principal,
            )
        )
        data = res.model_dump(mode="json")
        return ExplanationResult(**data)

    @strawberry.field(description="Picks for a consenting group (read:recommendations).")
    async def group_recommendations(
        self,
        info: Info,
        members: list[str],
        strategy: str = "average",
        limit: int = 10,
        context: JSON | None = None,
    ) -> GroupRecommendations:
        gateway, principal = _checked(info, auth.READ_RECOMMENDATIONS)

        def call() -> Any:
            req = GroupRequest.model_validate(
                {"members": members, "strategy": strategy, "limit": limit, "context": context or {}}
            )
            return gateway.group(req, principal, _base(info))

        res = await _run(call)
        return GroupRecommendations(
            members=res.members,
            strategy=res.strategy,
            results=[_title(r) for r in res.results],
            model_version=res.model_version,
        )

    @strawberry.field(description="The user's own history, most recent first (read:preferences).")
    async def history(self, info: Info, user: str, limit: int = 50) -> list[HistoryItem]:
        gateway, principal = _checked(info, auth.READ_PREFERENCES)

        def call() -> list[HistoryItem]:
            require_self(principal, user)
            if not 1 <= limit <= 500:
                raise ApiError(400, "limit must be between 1 and 500")
            titles, weights = gateway.holder.history(user)
            catalog = gateway.state.catalog
            pairs = list(zip(titles, weights, strict=True))[::-1][:limit]
            return [
                HistoryItem(content_id=t, title=catalog.name(t) if t in catalog else None, weight=w)
                for t, w in pairs
            ]

        return await _run(call)

    @strawberry.field(description="The user's watchlist (read:watchlist).")
    async def watchlist(self, info: Info, user: str) -> Watchlist:
        gateway, principal = _checked(info, auth.READ_WATCHLIST)

        def call() -> Watchlist:
            require_self(principal, user)
            data = watchlist_service.watchlist(gateway, user)
            items = [WatchlistItem(**{**i, "offers": _offers(i["offers"])}) for i in data["items"]]
            return Watchlist(user=user, country=data["country"], items=items)

        return await _run(call)

    @strawberry.field(description="Series in progress and unfinished films (read:watchlist).")
    async def continue_watching(self, info: Info, user: str, limit: int = 20) -> JSON:
        gateway, principal = _checked(info, auth.READ_WATCHLIST)

        def call() -> Any:
            require_self(principal, user)
            return watchlist_service.progress(gateway, user, min(max(limit, 1), 100))["items"]

        return await _run(call)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Rating / watched / completion (write:feedback).")
    async def send_feedback(
        self,
        info: Info,
        user: str,
        content_id: strawberry.ID,
        rating: float | None = None,
        watched: bool = False,
        completion: float | None = None,
    ) -> FeedbackAck:
        gateway, principal = _checked(info, auth.WRITE_FEEDBACK)

        def call() -> Any:
            req = FeedbackRequest.model_validate(
                {
                    "user": user,
                    "content_id": str(content_id),
                    "rating": rating,
                    "watched": watched,
                    "completion": completion,
                }
            )
            return gateway.feedback(req, principal)

        res = await _run(call)
        return FeedbackAck(event_id=res.event_id, accepted=res.accepted, durable=res.durable)

    @strawberry.mutation(description="Set services/country/offer kinds (write:preferences).")
    async def set_preferences(
        self,
        info: Info,
        user: str,
        services: list[str],
        country: str = "US",
        monetization: list[str] | None = None,
    ) -> Preferences:
        gateway, principal = _checked(info, auth.WRITE_PREFERENCES)

        def call() -> PreferencesBody:
            body: dict[str, Any] = {"services": services, "country": country}
            if monetization is not None:
                body["monetization"] = monetization
            prefs = PreferencesBody.model_validate(body)
            gateway.set_preferences(user, prefs, principal)
            return prefs

        prefs = await _run(call)
        return Preferences(user=user, **prefs.model_dump(mode="json"))

    @strawberry.mutation(description="Add a title to the watchlist (write:watchlist).")
    async def add_to_watchlist(
        self, info: Info, user: str, content_id: strawberry.ID
    ) -> WatchlistChange:
        gateway, principal = _checked(info, auth.WRITE_WATCHLIST)

        def call() -> dict[str, Any]:
            require_self(principal, user)
            return watchlist_service.add(gateway, user, str(content_id))

        res = await _run(call)
        return WatchlistChange(user=user, content_id=res["content_id"], changed=res["added"])

    @strawberry.mutation(description="Remove a title from the watchlist (write:watchlist).")
    async def remove_from_watchlist(
        self, info: Info, user: str, content_id: strawberry.ID
    ) -> WatchlistChange:
        gateway, principal = _checked(info, auth.WRITE_WATCHLIST)

        def call() -> dict[str, Any]:
            require_self(principal, user)
            return watchlist_service.remove(gateway, user, str(content_id))

        res = await _run(call)
        return WatchlistChange(user=user, content_id=res["content_id"], changed=res["removed"])
