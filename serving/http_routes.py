"""The GET / PUT / DELETE routes, as a FastAPI app mounted at ``/`` of the BentoML service.

BentoML's ``PassiveMount`` only routes a request into this app when one of its routes matches, so
mounting at the root does not shadow ``/livez``, ``/readyz``, ``/metrics``, ``/docs.json`` or the
POST APIs. The handlers find the running service with ``bentoml.get_current_service()`` and call its
:class:`serving.gateway.Gateway`.

Every route declares the error answers it can give (:func:`serving.openapi.error_responses`); the
service's OpenAPI document (:mod:`serving.openapi`) is served here at ``/docs.json``, which takes
precedence over BentoML's own generator for the same path.

Content ids: the canonical form is the lake ``title_id`` with its colon (``/content/movie:27205``;
``%3A`` works too, it is decoded before routing); ``movie-27205`` is accepted as an alias for ids
whose prefix is ``movie``, ``tv``, ``ml`` or ``ml100k``.
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path

from core import JUSTWATCH_ATTRIBUTION
from serving import auth
from serving.arw import build_manifest, content_markdown, llms_txt
from serving.gateway import Gateway
from serving.guard import ApiError
from serving.jsonld import JSONLD_MEDIA_TYPE
from serving.openapi import build_openapi, error_responses
from serving.ratelimit import client_ip
from serving.realtime.routes import router as realtime_router
from serving.schemas import (
    AvailabilityResponse,
    Country,
    ErasureResponse,
    PreferencesBody,
    PreferencesResponse,
    UserId,
)
from serving.social.routes import router as social_router
from serving.watchlist.routes import router as watchlist_router

app = FastAPI(
    title="Media Gateway content, user-data and discovery routes",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)

app.include_router(social_router)
app.include_router(watchlist_router)
app.include_router(realtime_router)

UserPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
ContentPath = Annotated[str, Path(min_length=3, max_length=256)]


class JSONLDResponse(JSONResponse):
    """schema.org JSON-LD (``application/ld+json``)."""

    media_type = JSONLD_MEDIA_TYPE


class MarkdownResponse(Response):
    """A machine-readable Markdown view (``text/markdown; charset=utf-8``)."""

    media_type = "text/markdown"


def _gateway() -> Gateway:
    return bentoml.get_current_service().gateway  # type: ignore[attr-defined]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _guard(request: Request, scope: str | None) -> auth.Principal | None:
    gateway = _gateway()
    client = client_ip(request)
    return gateway.guard.check(request.headers.get("authorization"), client, scope)


@app.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own errors (e.g. 400 for a body that is not UTF-8) in our ``{"error": ...}`` shape.

    A 405 lists in ``Allow`` every method of the path: Starlette names only the methods of the
    first route whose path matched, but one path can be served by several routes (PUT and DELETE
    ``/social/blocks/{other}``).
    """
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods of this path, from every route that matches it (included routers too).

    Where routes of different specificity match (``GET /users/{user}/watchlist/alerts`` and
    ``PUT /users/{user}/watchlist/{content_id}`` for ``.../watchlist/alerts``), the path is the
    resource with the fewest parameters, as documented; the others are not listed.
    """
    path = get_route_path(request.scope)
    found: dict[str, int] = {}
    for route in iter_route_contexts(request.app.router.routes):
        match = route.path_regex.match(path) if route.methods else None
        if match is not None:
            for method in route.methods:
                found[method] = min(found.get(method, len(match.groups())), len(match.groups()))
    fewest = min(found.values(), default=0)
    return sorted(method for method, params in found.items() if params == fewest)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"type": e.get("type", ""), "loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"error": "invalid request", "detail": errors}, status_code=422)


@app.get("/docs.json", include_in_schema=False)
def openapi_document() -> JSONResponse:
    """The service's OpenAPI 3.1 document (built once per service instance)."""
    instance = bentoml.get_current_service()
    document = getattr(instance, "_openapi_document", None)
    if document is None:
        service = instance.bento_service  # type: ignore[attr-defined]
        mounted = [(m, path) for m, path, _ in service.mount_apps if isinstance(m, FastAPI)]
        document = build_openapi(
            service, mounted, title="Media Gateway", description=service.doc or ""
        )
        instance._openapi_document = document  # type: ignore[attr-defined]
    return JSONResponse(document)


@app.get("/.well-known/arw-manifest.json", responses=error_responses())
def arw_manifest(request: Request) -> JSONResponse:
    _guard(request, None)
    gateway = _gateway()
    known = {p.issuer: p.metadata for p in gateway.guard.verifier.providers if p.metadata}
    return JSONResponse(build_manifest(gateway.settings, _base_url(request), known))


@app.get("/llms.txt", response_class=PlainTextResponse, responses=error_responses())
def llms(request: Request) -> PlainTextResponse:
    _guard(request, None)
    manifest = build_manifest(_gateway().settings, _base_url(request))
    return PlainTextResponse(llms_txt(manifest), media_type="text/plain; charset=utf-8")


@app.get("/status", responses=error_responses())
def status(request: Request) -> dict[str, Any]:
    """What is loaded: titles, index version, champion (or content+popularity mode), last poll."""
    _guard(request, None)
    return _gateway().holder.status()


@app.get(
    "/content/{content_id}.llm.md",
    response_class=MarkdownResponse,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}}
    | error_responses(404, 422),
)
def content_llm_md(content_id: ContentPath, request: Request) -> MarkdownResponse:
    _guard(request, None)
    view = _gateway().content(content_id, _base_url(request))
    return MarkdownResponse(content_markdown(view))


@app.get(
    "/content/{content_id}/availability",
    response_model=AvailabilityResponse,
    responses=error_responses(404, 422, 503),
)
def content_availability(
    content_id: ContentPath,
    request: Request,
    country: Annotated[Country | None, Query(description="ISO 3166-1 alpha-2, e.g. US")] = None,
) -> dict[str, Any]:
    _guard(request, None)
    gateway = _gateway()
    tid, offers = gateway.offers(content_id, country)
    return {
        "content_id": tid,
        "country": country,
        "offers": [o.model_dump() for o in offers],
        "attribution": {"availability": JUSTWATCH_ATTRIBUTION},
    }


@app.get(
    "/content/{content_id}",
    response_class=JSONLDResponse,
    responses={
        200: {
            "description": "schema.org Movie or TVSeries with a WatchAction per offer",
            "content": {JSONLD_MEDIA_TYPE: {"schema": {"type": "object"}}},
        }
    }
    | error_responses(404, 422, 503),
)
def content(content_id: ContentPath, request: Request) -> JSONLDResponse:
    _guard(request, None)
    view = _gateway().content(content_id, _base_url(request))
    return JSONLDResponse(view)


@app.put(
    "/users/{user}/preferences",
    response_model=PreferencesResponse,
    responses=error_responses(400, 403, 422, 503),
)
def put_preferences(
    user: UserPath, prefs: Annotated[PreferencesBody, Body()], request: Request
) -> dict[str, Any]:
    principal = _guard(request, auth.WRITE_PREFERENCES)
    _gateway().set_preferences(user, prefs, principal)
    return {"user": user, "preferences": prefs.model_dump(mode="json")}


@app.get(
    "/users/{user}/export",
    responses={
        200: {
            "description": "Everything held about the user, as a JSON attachment",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    | error_responses(403, 422, 503),
)
def export(user: UserPath, request: Request) -> JSONResponse:
    principal = _guard(request, auth.READ_PREFERENCES)
    data = _gateway().export(user, principal)
    return JSONResponse(
        data, headers={"Content-Disposition": f'attachment; filename="{_safe(user)}-export.json"'}
    )


@app.delete(
    "/users/{user}", response_model=ErasureResponse, responses=error_responses(403, 422, 503)
)
def erase(user: UserPath, request: Request) -> dict[str, Any]:
    principal = _guard(request, auth.WRITE_PREFERENCES)
    report = _gateway().erase(user, principal)
    return {
        "user": user,
        "erased": True,
        "profile_deleted": report.profile_deleted,
        "feedback_lines_removed": report.feedback_lines_removed,
        "lake_events": "deleted by the next nightly run (erasure recorded)",
    }


def _safe(user: UserId) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in user)
