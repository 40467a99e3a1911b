"""The GET / PUT / DELETE routes, as a FastAPI app mounted at ``/`` of the BentoML service.

BentoML's ``PassiveMount`` only routes a request into this app when one of its routes matches, so
mounting at the root does not shadow ``/livez``, ``/readyz``, ``/metrics``, ``/docs.json`` or the
POST APIs. The handlers find the running service with ``bentoml.get_current_service()`` and call its
:class:`serving.gateway.Gateway`.

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

from media_gateway import JUSTWATCH_ATTRIBUTION
from serving import auth
from serving.arw import build_manifest, content_markdown, llms_txt
from serving.gateway import ApiError, Gateway
from serving.jsonld import JSONLD_MEDIA_TYPE
from serving.ratelimit import client_address
from serving.realtime.routes import router as realtime_router
from serving.schemas import Country, PreferencesBody, UserId
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


def _gateway() -> Gateway:
    return bentoml.get_current_service().gateway  # type: ignore[attr-defined]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _guard(request: Request, scope: str | None) -> auth.Principal | None:
    gateway = _gateway()
    client = client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        gateway.settings.serving.trusted_proxies,
    )
    return gateway.guard.check(request.headers.get("authorization"), client, scope)


@app.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    return JSONResponse({"error": "invalid request", "detail": errors}, status_code=422)


@app.get("/.well-known/arw-manifest.json")
def arw_manifest(request: Request) -> JSONResponse:
    _guard(request, None)
    gateway = _gateway()
    known = {p.issuer: p.metadata for p in gateway.guard.verifier.providers if p.metadata}
    return JSONResponse(build_manifest(gateway.settings, _base_url(request), known))


@app.get("/llms.txt", response_class=PlainTextResponse)
def llms(request: Request) -> PlainTextResponse:
    _guard(request, None)
    manifest = build_manifest(_gateway().settings, _base_url(request))
    return PlainTextResponse(llms_txt(manifest), media_type="text/plain; charset=utf-8")


@app.get("/status")
def status(request: Request) -> dict[str, Any]:
    """What is loaded: titles, index version, champion (or content+popularity mode), last poll."""
    _guard(request, None)
    return _gateway().holder.status()


@app.get("/content/{content_id}.llm.md")
def content_llm_md(content_id: ContentPath, request: Request) -> Response:
    _guard(request, None)
    view = _gateway().content(content_id, _base_url(request))
    return Response(content_markdown(view), media_type="text/markdown; charset=utf-8")


@app.get("/content/{content_id}/availability")
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


@app.get("/content/{content_id}")
def content(content_id: ContentPath, request: Request) -> Response:
    _guard(request, None)
    view = _gateway().content(content_id, _base_url(request))
    return JSONResponse(view, media_type=JSONLD_MEDIA_TYPE)


@app.put("/users/{user}/preferences")
def put_preferences(
    user: UserPath, prefs: Annotated[PreferencesBody, Body()], request: Request
) -> dict[str, Any]:
    principal = _guard(request, auth.WRITE_PREFERENCES)
    _gateway().set_preferences(user, prefs, principal)
    return {"user": user, "preferences": prefs.model_dump(mode="json")}


@app.get("/users/{user}/export")
def export(user: UserPath, request: Request) -> JSONResponse:
    principal = _guard(request, auth.READ_PREFERENCES)
    data = _gateway().export(user, principal)
    return JSONResponse(
        data, headers={"Content-Disposition": f'attachment; filename="{_safe(user)}-export.json"'}
    )


@app.delete("/users/{user}")
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
