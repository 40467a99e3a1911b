"""The BentoML service: POST APIs with pydantic bodies, GET/PUT/DELETE routes mounted at ``/``.

Thin on purpose: each API authenticates and rate-limits through the gateway's guard, calls one
:class:`serving.gateway.Gateway` operation and maps :class:`serving.guard.ApiError` to a JSON
``{"error": reason}`` with its status and headers. Start-up reads settings from
``MEDIA_GATEWAY_CONFIG`` (:func:`core.settings.load_settings`), the JWT secret from
``MEDIA_GATEWAY_JWT_SECRET`` (refuses to start without it, see :mod:`serving.auth`), and
``MEDIA_GATEWAY_POLL_S`` (champion poll interval, default 30 s) and ``MEDIA_GATEWAY_WORKERS``
(worker processes, default 1; ``media-gateway serve --workers`` sets it). The state loads in the background;
``/readyz`` answers 200 once catalogue and index are loaded (``__is_ready__``), ``GET /status`` tells
what is loaded. ``traffic`` caps concurrent requests (over it: 429 at once) and their time (504).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import bentoml
from starlette.responses import JSONResponse

with bentoml.importing():
    from core.feedback import StoreUnavailableError
    from core.settings import load_settings
    from serving import auth
    from serving.arw import ArwHeadersMiddleware
    from serving.gateway import Gateway, build_gateway
    from serving.graphql.app import app as graphql_app
    from serving.guard import ApiError
    from serving.http_routes import app as http_app
    from serving.json_http import JsonBodyMiddleware, JsonErrorsMiddleware
    from serving.metrics import RequestMetricsMiddleware, RouteTemplates, observe_model
    from serving.ratelimit import (
        MAX_BODY_BYTES,
        BodySizeLimitMiddleware,
        client_ip,
        configure_server_proxy_headers,
    )
    from serving.run import die_with_parent, workers_from_env
    from serving.schemas import (
        ExplainRequest,
        ExplainResponse,
        FeedbackRequest,
        FeedbackResponse,
        GroupRequest,
        GroupResponse,
        RecommendRequest,
        RecommendResponse,
        SearchRequest,
        SearchResponse,
    )
    from serving.state import DEFAULT_POLL_S
    from serving.tracing import drop_unsampled_spans

# uvicorn (started by BentoML after this import) trusts X-Forwarded-For only from
# serving.trusted_proxies, none by default: the limiter sees the real peer (serving/ratelimit.py).
configure_server_proxy_headers(load_settings().serving.trusted_proxies)
# before BentoML builds its tracer provider: unsampled requests get non-recording spans
drop_unsampled_spans()

log = logging.getLogger(__name__)
POLL_ENV = "MEDIA_GATEWAY_POLL_S"
MAX_CONCURRENCY = 32
TIMEOUT_S = 10


def _poll_seconds() -> float:
    raw = os.environ.get(POLL_ENV, "")
    if not raw:
        return DEFAULT_POLL_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{POLL_ENV}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ValueError(f"{POLL_ENV} must be > 0")
    return value


def _publish_model(state: Any) -> None:
    champion = state.champion
    observe_model(
        state.model_version,
        "hybrid" if champion else "content+popularity",
        champion.privacy if champion else None,
    )


@bentoml.asgi_app(graphql_app, path="/graphql")
@bentoml.asgi_app(http_app, path="/")
@bentoml.service(
    name="MediaGateway",
    traffic={"timeout": TIMEOUT_S, "max_concurrency": MAX_CONCURRENCY},
    threads=4,
    workers=workers_from_env(),
)
class MediaGateway:
    """Media Gateway: what to watch tonight, across your streaming services."""

    def __init__(self) -> None:
        die_with_parent()  # a worker never outlives its server process (no orphan on the port)
        settings = load_settings()
        self.gateway: Gateway = build_gateway(
            settings, poll_s=_poll_seconds(), secret=auth.jwt_secret()
        )
        holder = self.gateway.holder
        holder.on_swap(_publish_model)
        if holder.ready:
            _publish_model(holder.state)

    def __is_ready__(self) -> bool:
        return self.gateway.holder.ready

    @bentoml.on_shutdown
    def stop_polling(self) -> None:
        self.gateway.holder.stop()

    def _answer(self, ctx: bentoml.Context, scope: str | None, action: Callable[[Any], Any]) -> Any:
        request = ctx.request
        client = client_ip(request)
        try:
            principal = self.gateway.guard.check(
                request.headers.get("authorization"), client, scope
            )
            try:
                return action(principal)
            except StoreUnavailableError as exc:  # a read (writes answer "nothing was saved")
                log.error("user-state store unavailable for a read: %s", exc)
                raise ApiError(
                    503, "user-state store unavailable; retry later", {"Retry-After": "5"}
                ) from exc
        except ApiError as exc:
            ctx.response.status_code = exc.status
            for name, value in exc.headers.items():
                ctx.response.headers[name] = value
            return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)

    @staticmethod
    def _base(ctx: bentoml.Context) -> str:
        return str(ctx.request.base_url).rstrip("/")

    @bentoml.api(route="/search", input_spec=SearchRequest)
    def search(self, ctx: bentoml.Context, **body: Any) -> SearchResponse:
        """Natural-language search; anonymous allowed (stricter rate limit)."""
        req = SearchRequest.model_validate(body)
        return self._answer(ctx, None, lambda p: self.gateway.search(req, p, self._base(ctx)))

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    def recommend(self, ctx: bentoml.Context, **body: Any) -> RecommendResponse:
        """Personalised picks on the user's services in their country."""
        req = RecommendRequest.model_validate(body)
        return self._answer(
            ctx,
            auth.READ_RECOMMENDATIONS,
            lambda p: self.gateway.recommend(req, p, self._base(ctx)),
        )

    @bentoml.api(route="/recommend/group", input_spec=GroupRequest)
    def recommend_group(self, ctx: bentoml.Context, **body: Any) -> GroupResponse:
        """Picks for a group; the caller must be a member."""
        req = GroupRequest.model_validate(body)
        return self._answer(
            ctx, auth.READ_RECOMMENDATIONS, lambda p: self.gateway.group(req, p, self._base(ctx))
        )

    @bentoml.api(route="/explain", input_spec=ExplainRequest)
    def explain(self, ctx: bentoml.Context, **body: Any) -> ExplainResponse:
        """Evidence why a title suits the user."""
        req = ExplainRequest.model_validate(body)
        return self._answer(ctx, auth.READ_RECOMMENDATIONS, lambda p: self.gateway.explain(req, p))

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    def feedback(self, ctx: bentoml.Context, **body: Any) -> FeedbackResponse:
        """Durable feedback (acknowledged after fsync), effective in the next /recommend."""
        req = FeedbackRequest.model_validate(body)
        return self._answer(ctx, auth.WRITE_FEEDBACK, lambda p: self.gateway.feedback(req, p))


BENTOML_ROUTES = ("/", "/livez", "/readyz", "/healthz", "/docs.json")
MediaGateway.add_asgi_middleware(
    RequestMetricsMiddleware,
    templates=RouteTemplates.from_app(
        [*BENTOML_ROUTES, *(api.route for api in MediaGateway.apis.values())], http_app
    ),
)
MediaGateway.add_asgi_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
MediaGateway.add_asgi_middleware(ArwHeadersMiddleware)
MediaGateway.add_asgi_middleware(
    JsonBodyMiddleware, paths=[api.route for api in MediaGateway.apis.values()]
)
MediaGateway.add_asgi_middleware(JsonErrorsMiddleware)
