"""The API's operations, free of any web framework: each runs behind the request guard
(:mod:`serving.guard`: authentication, scopes, rate limits, :class:`~serving.guard.ApiError`), then
acts on the serving state.

``service.py`` (BentoML POST APIs) and ``http_routes.py`` (GET/PUT/DELETE) only translate HTTP to
these calls and :class:`ApiError` back to a status, a reason and headers. Search cursors are
:mod:`serving.pagination`'s.

Decisions:

* Anonymous callers may search (stricter per-address limit); everything personal needs a token whose
  subject is the user named in the request (403 otherwise). A group request needs the caller to be
  one of the members, and every other member must have consented to group with the caller
  (friends, or an accepted invitation: :mod:`serving.social.store`); otherwise 403 naming the
  members, the same for an unknown id (whether a user exists is not revealed). The answer shows
  each member's score (what consenting members plan together), but its evidence names only the
  caller's own titles (:func:`models.ranking.group.recommend_group` with ``viewer``).
* Users without stored preferences get the default profile (US, any service, subscription or free).
* Caches: search pages and availability are cached with TTLs; both are cleared on a champion swap,
  and a user's cached search pages are dropped when that user sends feedback or is erased.
  ``/recommend`` and ``/explain`` reuse the user's personal scores cached in the state's ranker
  (:mod:`models.ranking.score_cache`): keyed by user and exact history, so fresh feedback is used at
  once; a swap brings a new ranker with an empty cache; feedback and erasure drop the user's entry.
* ``/recommend`` answers are memoised too (:data:`RECOMMEND_TTL_S`), keyed by everything the answer
  is a function of: user, exact history, stored preferences, context, limit, base URL and the
  serving state it was computed on. A changed input is a different key, so a hit is always the
  answer a fresh computation would give; feedback, a preferences change and erasure still drop the
  user's entries and a swap clears them all. (An answer being computed while its user is erased is
  stored under the pre-erasure history: unreachable, and gone after the TTL.)
  The key also holds the caller's friend evidence (each visible friend and the titles their
  activity shows, :func:`serving.social.views.friends_activity`), read on every request: a friend's
  new activity, a privacy change, an unfriend, a block or an erasure is a different key, so cached
  answers never carry stale "friends watched this" evidence.
* **Friends are watching**: ``/recommend`` and ``/explain`` add ``evidence.friends_watched`` (and
  "2 friends watched this (bob and carol)" to the sentence) naming friends whose activity the
  caller may see under the friend's own setting, and only for titles that activity shows. It is
  evidence only: no score boost, so the ranking is the same with or without friends.
* BLAS runs single-threaded in the serving process (:data:`SERVING_BLAS_THREADS`, set by
  :func:`build_gateway`): concurrent requests are the parallelism, and OpenBLAS's own threads on top
  of BentoML's request threads oversubscribe the cores. Measured on the 2-core box: the content
  similarity of one history against 5,000 titles took 39 ms with 2 BLAS threads under load, 4.9 ms
  with 1. The query encoder (torch, OpenMP) is not affected.
* The long-lived heap is frozen out of the garbage collector (:func:`freeze_long_lived`, run by
  :func:`build_gateway` after every state load; ``serving.freeze_heap``): the ~1 million objects
  of the imports, catalogue and model are no longer scanned by every full collection. Measured
  in-process on the serving benchmark's world (5,000 titles, cold ``/recommend``): full
  collections paused the worker for ~600 ms about every 1,200 requests (0.5-1.0 ms per request
  on average, and the benchmark's p99); frozen, a full collection scans only what requests and
  caches created since (0.2-0.5 ms per request at most) and a cold ``/recommend`` went from
  6.3-8.9 to 5.6-5.9 ms.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION
from core.feedback import FeedbackRecord, configure_state, store_feedback
from core.settings import Settings
from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, Offer
from models.ranking.explain import explain, with_friends
from models.ranking.group import MemberProfile, recommend_group
from models.ranking.intent import QueryIntent
from serving import auth
from serving.auth import AuthError, Principal
from serving.cache import AVAILABILITY_TTL_S, SEARCH_TTL_S, TTLCache
from serving.guard import ApiError, Guard, require_self, store_errors_as_503
from serving.jsonld import content_view
from serving.pagination import decode_cursor, encode_cursor, query_hash
from serving.schemas import (
    Attribution,
    ExplainRequest,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    GroupRequest,
    GroupResponse,
    PreferencesBody,
    RecommendRequest,
    RecommendResponse,
    ResultItem,
    SearchRequest,
    SearchResponse,
)
from serving.social import views as social_views
from serving.social.store import SocialStore
from serving.state import NotReadyError, ServingState, StateHolder
from serving.userdata import (
    DEFAULT_PROFILE,
    ErasureReport,
    effective_profile,
    erase_user_files,
    export_user,
    save_profile,
)
from serving.watchlist.store import WatchlistStore

log = logging.getLogger(__name__)

GEMINI_KEY_ENV = "GEMINI_API_KEY"
GEMINI_URL_ENV = "GEMINI_BASE_URL"
ATTRIBUTION = Attribution(metadata=TMDB_ATTRIBUTION, availability=JUSTWATCH_ATTRIBUTION)
ALT_ID_PREFIXES = ("movie", "tv", "ml", "ml100k")
RECOMMEND_TTL_S = 300.0
"""How long a memoised ``/recommend`` answer is kept (its key already pins every input)."""
RECOMMEND_CACHE_ENTRIES = 2_000
"""Memoised ``/recommend`` answers kept (about 15 KB of JSON each at limit 10)."""
SERVING_BLAS_THREADS = 1
"""BLAS threads per call in the serving process (see module docstring)."""


def canonical_content_id(catalog: Catalog, raw: str) -> str:
    """The catalogue id for ``raw``; ``movie-27205`` is accepted for ``movie:27205`` (404 if none)."""
    if raw in catalog:
        return raw
    prefix, sep, rest = raw.partition("-")
    if ":" not in raw and sep and prefix in ALT_ID_PREFIXES and f"{prefix}:{rest}" in catalog:
        return f"{prefix}:{rest}"
    raise ApiError(404, f"unknown content id {raw!r}")


def availability_filter(prefs: PreferencesBody) -> AvailabilityFilter:
    return AvailabilityFilter(
        country=prefs.country,
        services=list(prefs.services),
        monetization=frozenset(prefs.monetization),
    )


@dataclass
class Gateway:
    """Everything the endpoints do. One per service process."""

    settings: Settings
    holder: StateHolder
    guard: Guard
    parse: Callable[[str], QueryIntent]
    """Query text -> intent (Gemini with local fallback; see :func:`default_parser`)."""
    search_cache: TTLCache[SearchResponse] = field(
        default_factory=lambda: TTLCache(SEARCH_TTL_S, name="search")
    )
    availability_cache: TTLCache[list[Offer]] = field(
        default_factory=lambda: TTLCache(AVAILABILITY_TTL_S, name="availability")
    )
    recommend_cache: TTLCache[RecommendResponse] = field(
        default_factory=lambda: TTLCache(RECOMMEND_TTL_S, RECOMMEND_CACHE_ENTRIES, name="recommend")
    )

    social: SocialStore = field(init=False)
    """The social graph (friends, blocks, invitations, privacy) next to the feedback log."""
    watchlist: WatchlistStore = field(init=False)
    """Watchlists and their availability alerts."""

    def __post_init__(self) -> None:
        self.holder.on_swap(self._on_swap)
        self.holder.on_user_change(self._forget_user)
        self.social = SocialStore.in_folder(self.folder)
        self.watchlist = WatchlistStore.in_folder(self.folder)

    def _on_swap(self, _: ServingState) -> None:
        self.search_cache.clear()
        self.availability_cache.clear()
        self.recommend_cache.clear()

    @property
    def state(self) -> ServingState:
        try:
            return self.holder.state
        except NotReadyError as exc:
            raise ApiError(503, str(exc), {"Retry-After": "5"}) from exc

    @property
    def folder(self) -> Path:
        """Feedback log, erasures and profiles."""
        return self.settings.paths.feedback

    # ---- helpers ---------------------------------------------------------------------------
    def _forget_user(self, user: str) -> None:
        """Drop everything cached from the user's history or preferences."""
        self.search_cache.invalidate_tag(user)
        self.recommend_cache.invalidate_tag(user)
        if self.holder.ready:
            self.holder.state.ranker.forget(user)

    def _friends_activity(self, catalog: Catalog, user: str) -> dict[str, tuple[str, ...]]:
        """Friends whose activity ``user`` may see, with the titles it shows (evidence only)."""
        return social_views.friends_activity(self.social, self.holder.history, catalog, user)

    def _item(self, catalog: Catalog, base_url: str, tid: str, **fields: Any) -> ResultItem:
        row = catalog.index[tid]
        runtime = catalog.runtime[row]
        year = catalog.year[row]
        return ResultItem(
            content_id=tid,
            title=catalog.names[row],
            type=catalog.types[row],
            year=int(year) if np.isfinite(year) else None,
            genres=list(catalog.display_genres[row]),
            runtime=int(runtime) if np.isfinite(runtime) else None,
            url=f"{base_url.rstrip('/')}/content/{tid}",
            **fields,
        )

    # ---- POST operations -------------------------------------------------------------------
    def search(
        self, req: SearchRequest, principal: Principal | None, base_url: str
    ) -> SearchResponse:
        from models.ranking.search import SearchError, SearchFilters, effective_filters, search

        if req.user is not None:
            require_self(principal, req.user)
            try:
                principal.require(auth.READ_RECOMMENDATIONS)  # type: ignore[union-attr]
            except AuthError as exc:
                raise ApiError.from_auth(exc) from exc
        query_key = query_hash(
            {"q": req.query, "f": req.filters.model_dump(mode="json"), "u": req.user}
        )
        offset = decode_cursor(req.cursor, query_key) if req.cursor else 0
        cache_key = (query_key, offset, req.limit)
        cached = self.search_cache.get(cache_key)
        if cached is not None:
            return cached
        state = self.state
        intent = self.parse(req.query)
        filters = SearchFilters.model_validate(req.filters.model_dump())
        if filters.country is None and (filters.services or intent.services):
            # "comedies on netflix" needs a country to check availability in: the user's
            # (preferences), else the default profile's; applied_filters echoes it.
            profile = effective_profile(self.folder, req.user) if req.user else DEFAULT_PROFILE
            filters = filters.model_copy(update={"country": profile.country})
        history = self.holder.history(req.user)[0] if req.user else []
        try:
            found = search(state.catalog, state.index, intent, filters, history, req.limit, offset)
            applied = effective_filters(intent, filters)
        except SearchError as exc:
            raise ApiError(400, str(exc)) from exc
        results = [
            self._item(
                state.catalog,
                base_url,
                hit.title_id,
                score=hit.relevance,
                similarity=hit.similarity,
                offers=list(hit.offers),
            )
            for hit in found.hits
        ]
        response = SearchResponse(
            results=results,
            intent=intent,
            applied_filters=applied.model_dump(mode="json"),
            query_source=found.query_source,
            resolved_like_titles=found.resolved_like_titles,
            total=found.total,
            next_cursor=(
                encode_cursor(found.next_offset, query_key)
                if found.next_offset is not None
                else None
            ),
            attribution=ATTRIBUTION,
        )
        self.search_cache.put(cache_key, response, tag=req.user)
        return response

    def recommend(
        self, req: RecommendRequest, principal: Principal | None, base_url: str
    ) -> RecommendResponse:
        require_self(principal, req.user)
        state = self.state
        prefs = effective_profile(self.folder, req.user)
        history, weights = self.holder.history(req.user)
        friends = self._friends_activity(state.catalog, req.user)
        cache_key = (
            req.user,
            tuple(history),
            tuple(weights),
            tuple(friends.items()),
            prefs.model_dump_json(),
            req.context.model_dump_json(),
            req.limit,
            base_url,
            state.model_version,
            state.loaded_at,
        )
        cached = self.recommend_cache.get(cache_key)
        if cached is not None:
            log.debug("recommend served from cache", extra={"model": state.model_version})
            return cached
        recs = state.ranker.recommend(
            history,
            weights,
            k=req.limit,
            context=req.context,
            availability=availability_filter(prefs),
            cache_key=req.user,
        )
        log.info(
            "recommend served",
            extra={"history_len": len(history), "results": len(recs), "model": state.model_version},
        )
        evidences = [
            with_friends(r.explanation, social_views.friends_who_watched(friends, r.title_id))
            for r in recs
        ]
        response = RecommendResponse(
            user=req.user,
            results=[
                self._item(
                    state.catalog,
                    base_url,
                    r.title_id,
                    score=r.score,
                    components=r.components,
                    explanation=evidence.sentence,
                    evidence=evidence,
                    offers=r.offers,
                )
                for r, evidence in zip(recs, evidences, strict=True)
            ],
            model_version=state.model_version,
            country=prefs.country,
            services=list(prefs.services),
            attribution=ATTRIBUTION,
        )
        self.recommend_cache.put(cache_key, response, tag=req.user)
        return response

    def group(self, req: GroupRequest, principal: Principal | None, base_url: str) -> GroupResponse:
        if principal is None:
            raise ApiError(401, "a bearer token is required")
        if principal.subject not in req.members:
            raise ApiError(403, "the caller must be one of the group's members")
        refused = self.social.members_without_consent(
            principal.subject, [m for m in req.members if m != principal.subject]
        )
        if refused:
            raise ApiError(
                403,
                f"{', '.join(refused)}: not in your circle; a member must be your friend or have "
                "accepted your group invitation",
            )
        state = self.state
        members = {}
        for user in req.members:
            history, weights = self.holder.history(user)
            members[user] = MemberProfile(
                history=history,
                weights=weights,
                availability=availability_filter(effective_profile(self.folder, user)),
            )
        recs = recommend_group(
            state.ranker,
            members,
            strategy=req.strategy,
            k=req.limit,
            context=req.context,
            viewer=principal.subject,
        )
        return GroupResponse(
            members=list(req.members),
            strategy=req.strategy,
            results=[
                self._item(
                    state.catalog,
                    base_url,
                    r.title_id,
                    score=r.score,
                    explanation=r.explanation.sentence,
                    evidence=r.explanation,
                    offers=r.offers,
                    member_scores=r.member_scores,
                )
                for r in recs
            ],
            model_version=state.model_version,
            attribution=ATTRIBUTION,
        )

    def explain(self, req: ExplainRequest, principal: Principal | None) -> ExplainResponse:
        require_self(principal, req.user)
        state = self.state
        catalog = state.catalog
        tid = canonical_content_id(catalog, req.content_id)
        history, weights = self.holder.history(req.user)
        prefs = effective_profile(self.folder, req.user)
        rows = np.arange(len(catalog))
        scored = state.ranker.score_rows(rows, history, weights, cache_key=req.user)
        position = catalog.index[tid]
        parts = scored.contributions(position)
        score = float(scored.score[position])
        liked = [h for h, w in zip(history, weights, strict=True) if w > 0]
        evidence = explain(
            catalog,
            liked,
            tid,
            collaborative=parts.get("collaborative"),
            offers=availability_filter(prefs).offers(catalog, tid),
            popular=not liked,
            friends_watched=social_views.friends_who_watched(
                self._friends_activity(catalog, req.user), tid
            ),
        )
        return ExplainResponse(
            user=req.user,
            content_id=tid,
            title=catalog.name(tid),
            score=round(score, 6) if np.isfinite(score) else None,
            components=parts,
            explanation=evidence.sentence,
            evidence=evidence,
            model_version=state.model_version,
        )

    def feedback(self, req: FeedbackRequest, principal: Principal | None) -> FeedbackResponse:
        require_self(principal, req.user)
        tid = canonical_content_id(self.state.catalog, req.content_id)
        record = FeedbackRecord(
            user_id=req.user,
            title_id=tid,
            rating=req.rating,
            watched=req.watched,
            completion=req.completion,
            context=req.context.model_dump(mode="json", exclude_none=True),
        )
        with store_errors_as_503():
            stored = store_feedback(self.folder, record)
        assert stored.event_id is not None and stored.event_time is not None
        self.holder.record_event(
            req.user, stored.event_id, tid, record.weight(), stored.event_time.timestamp()
        )
        self._forget_user(req.user)
        return FeedbackResponse(event_id=stored.event_id)

    # ---- GET / PUT / DELETE operations --------------------------------------------------------
    def offers(self, raw_id: str, country: str | None) -> tuple[str, list[Offer]]:
        catalog = self.state.catalog
        tid = canonical_content_id(catalog, raw_id)
        offers = self.availability_cache.get_or_compute(
            (tid, country), lambda: catalog.offers_for(tid, country)
        )
        return tid, offers

    def content(self, raw_id: str, base_url: str) -> dict[str, Any]:
        catalog = self.state.catalog
        tid, offers = self.offers(raw_id, None)
        return content_view(catalog.row(tid), [o.model_dump() for o in offers], base_url)

    def set_preferences(
        self, user: str, prefs: PreferencesBody, principal: Principal | None
    ) -> None:
        require_self(principal, user)
        with store_errors_as_503():
            save_profile(self.folder, user, prefs)
        self.recommend_cache.invalidate_tag(user)

    def export(self, user: str, principal: Principal | None) -> dict[str, Any]:
        require_self(principal, user)
        data = export_user(self.settings.paths.lake, self.folder, user)
        data["effective_profile"] = effective_profile(self.folder, user).model_dump(mode="json")
        data["social"] = self.social.export(user)
        data.update(self.watchlist.export(user))
        return data

    def erase(self, user: str, principal: Principal | None) -> ErasureReport:
        require_self(principal, user)
        with store_errors_as_503():
            report = erase_user_files(self.folder, user)
        self.holder.erase_user(user, report.erased_at.timestamp())
        self._forget_user(user)
        from serving.realtime.routes import forget_user  # the channel imports this module

        forget_user(self, user)
        return report


def default_parser() -> Callable[[str], QueryIntent]:
    """The NLU parser configured from the environment (read once, at service start-up)."""
    from serving.nlu.parse import QueryTooLongError, parse_query

    api_key = os.environ.get(GEMINI_KEY_ENV) or None
    base_url = os.environ.get(GEMINI_URL_ENV) or None
    if api_key is None:
        log.info("no %s: queries are parsed by the local parser", GEMINI_KEY_ENV)

    def parse(text: str) -> QueryIntent:
        try:
            return parse_query(text, api_key=api_key, base_url=base_url, fallback=True)
        except QueryTooLongError as exc:
            raise ApiError(400, str(exc)) from exc

    return parse


def limit_blas_threads(threads: int = SERVING_BLAS_THREADS) -> None:
    """Cap the BLAS libraries loaded in this process at ``threads`` threads (process-wide)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")
    log.info("BLAS limited for serving", extra={"threads": threads})


def freeze_long_lived(_: ServingState | None = None) -> None:
    """Collect, then move every object alive now to the collector's permanent generation.

    Called after each state load: the previous state's cycles are collected first (``unfreeze``
    makes last swap's frozen objects collectable again), so at most the state that requests still
    held during the swap stays frozen until the next one. The collection holds the GIL for
    ~0.5 s on a 5,000-title state, once per load.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.info("long-lived heap frozen", extra={"objects": gc.get_freeze_count()})


def build_gateway(settings: Settings, *, poll_s: float, secret: bytes) -> Gateway:
    """A gateway whose holder starts loading in the background (BLAS capped for serving, the
    loaded state frozen out of the garbage collector)."""
    limit_blas_threads()
    configure_state(settings)  # the user-state store: SQLite in paths.feedback, or PostgreSQL
    holder = StateHolder(settings, poll_s=poll_s)
    gateway = Gateway(
        settings=settings,
        holder=holder,
        guard=Guard.from_settings(settings, secret),
        parse=default_parser(),
    )
    if settings.serving.freeze_heap:
        holder.on_swap(freeze_long_lived)
    holder.start()
    return gateway
