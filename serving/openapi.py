"""The API contract: an OpenAPI 3.1 document, served at ``GET /docs.json``.

It replaces the document BentoML generates, which declared OpenAPI 3.0.2 while carrying pydantic's
JSON Schema 2020-12 (numeric ``exclusiveMinimum``, ``{"type": "null"}``: both invalid in 3.0),
flattened nullable request fields to plain strings, left request bodies optional and documented
BentoML's error shapes instead of ours. OpenAPI 3.1's schema dialect *is* JSON Schema 2020-12, so
this document declares 3.1.0 and uses pydantic's schemas unchanged (validated by
``openapi-spec-validator`` in the tests).

Sources, so the document cannot drift from the code:

* the BentoML POST APIs: route, docstring and the pydantic request/response models the service was
  declared with (``input_spec``/``output_spec``, whose first pydantic base is our model);
* the FastAPI routes of :mod:`serving.http_routes`: FastAPI's own generator, with the responses each
  route declares (:func:`error_responses`);
* auth per operation: the ARW action table (:func:`serving.arw.actions`), which names the scopes;
* BentoML's infrastructure endpoints (``/livez``, ``/readyz``, ``/metrics``) are listed by hand.

Error answers are all :class:`serving.schemas.ErrorBody` (``{"error": reason}``, validation errors
add ``detail``). Which statuses an operation declares is decided in :data:`ERROR_REASONS` and by
the route: every operation can answer 401 (a malformed ``Authorization`` header is rejected even on
anonymous routes), 413 (body over 64 KiB) and 429 (rate limit, or more than the service's
concurrent requests); POST APIs add 400 (invalid JSON or body), 403, 404, 415 (a body that is not
``application/json``), 503 (not ready / storage unavailable) and 504 (request timeout).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving import auth
from serving.arw import actions
from serving.schemas import ErrorBody

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
BEARER = "bearer"
SERVICE_TAG = "Service APIs"
INFRA_TAG = "Infrastructure"

ERROR_REASONS: dict[int, str] = {
    400: "Invalid JSON or a body that breaks the request schema (`detail` lists each rule).",
    401: "Missing, malformed, expired or forged bearer token (`WWW-Authenticate` says why).",
    403: "The token lacks the scope, or names another user than the request.",
    404: "Unknown content id or route.",
    409: "Conflicts with the current state (e.g. befriending yourself, a full watchlist).",
    413: "Request body over 64 KiB.",
    415: "The body is not `application/json`.",
    422: "A path or query parameter, or the PUT body, breaks its schema (`detail` lists each rule).",
    429: "Rate limit (see `Retry-After`) or too many concurrent requests.",
    503: "Not ready yet, or storage is unavailable; nothing was stored (see `Retry-After`).",
    504: "The request took longer than the service's timeout.",
}
COMMON_ERRORS = (401, 413, 429)
POST_API_ERRORS = (400, 401, 403, 404, 413, 415, 429, 503, 504)

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "RFC 6750 challenge naming the error",
            "schema": {"type": "string"},
        }
    },
    403: {
        "WWW-Authenticate": {
            "description": "Present for insufficient_scope",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the rate limit admits the next request",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    503: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries for these error statuses (plus 401/413/429, always).

    Spelled out rather than ``{"model": ErrorBody}``: FastAPI would file the error body under the
    route's own media type (``application/ld+json``, ``text/markdown``), but errors are JSON.
    """
    return {status: _error_response(status) for status in sorted({*COMMON_ERRORS, *statuses})}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_REASONS[status],
        "content": {
            "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorBody")}}
        },
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _our_model(spec: type) -> type[BaseModel]:
    """The pydantic model a BentoML IO descriptor was made from (its first non-BentoML base)."""
    for cls in spec.__mro__[1:]:
        if (
            isinstance(cls, type)
            and issubclass(cls, BaseModel)
            and cls is not BaseModel
            and not cls.__module__.startswith(("_bentoml", "bentoml"))
        ):
            return cls
    raise TypeError(f"{spec!r} is not built from a pydantic model")


def _arw_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _security(method: str, path: str) -> list[dict[str, list[str]]] | None:
    """Security requirement of an operation from the ARW action table (None: no action listed)."""
    for action in actions():
        if action["method"] == method.upper() and _arw_path(action["endpoint"]) == _arw_path(path):
            if action["auth"] == "none":
                return [{}, {BEARER: []}]  # anonymous allowed; a token personalises
            return [{BEARER: list(action["scopes"])}]
    return None


def _without_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_without_defaults(v) for v in schema]
    return schema


def _merge_schemas(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Add ``new`` component schemas; a name already present must describe the same model.

    FastAPI's generator leaves out some ``default`` values that pydantic's keeps, so schemas are
    compared without them and the first (pydantic's, with defaults) is kept.
    """
    for name, schema in new.items():
        if name not in into:
            into[name] = schema
        elif _without_defaults(into[name]) != _without_defaults(schema):
            raise ValueError(f"two different schemas are both named {name!r}")


def _infra_paths() -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}

    def get(description: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"tags": [INFRA_TAG], "description": description, "responses": responses}}

    return {
        "/livez": get(
            "Liveness: the process answers.", {"200": {"description": "alive", "content": text}}
        ),
        "/readyz": get(
            "Readiness: catalogue and index are loaded.",
            {
                "200": {"description": "ready", "content": text},
                "503": {"description": "not ready yet", "content": {"application/json": {}}},
            },
        ),
        "/metrics": get(
            "Prometheus metrics (text exposition format).",
            {"200": {"description": "metrics", "content": text}},
        ),
    }


def _post_operations(service: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paths and component schemas of the service's BentoML POST APIs."""
    models: list[tuple[type[BaseModel], Any]] = []
    apis = list(service.apis.values())
    for api in apis:
        models.append((_our_model(api.input_spec), "validation"))
        models.append((_our_model(api.output_spec), "serialization"))
    models.append((ErrorBody, "serialization"))
    refs, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    paths: dict[str, Any] = {}
    for api in apis:
        request, response = _our_model(api.input_spec), _our_model(api.output_spec)
        operation: dict[str, Any] = {
            "tags": [SERVICE_TAG],
            "operationId": api.name,
            "summary": (api.doc or api.name).strip().splitlines()[0],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": refs[(request, "validation")]}},
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": refs[(response, "serialization")]}},
                },
                **{str(s): _error_response(s) for s in POST_API_ERRORS},
            },
        }
        security = _security("POST", api.route)
        if security is not None:
            operation["security"] = security
        paths[api.route] = {"post": operation}
    return paths, top.get("$defs", {})


def _route_operations(app: FastAPI) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paths and component schemas of the FastAPI routes, with their security."""
    doc = get_openapi(
        title=app.title, version=app.version, openapi_version=OPENAPI_VERSION, routes=app.routes
    )
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            security = _security(method, path)
            if security is not None:
                operation["security"] = security
    return doc["paths"], doc.get("components", {}).get("schemas", {})


def build_openapi(
    service: Any, mounted: Iterable[tuple[FastAPI, str]], *, title: str, description: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a BentoML ``service`` and its FastAPI apps ``(app, mount path)``."""
    paths, schemas = _post_operations(service)
    for app, prefix in mounted:
        route_paths, route_schemas = _route_operations(app)
        _merge_schemas(schemas, route_schemas)
        for path, item in route_paths.items():
            paths.setdefault(prefix.rstrip("/") + path, {}).update(item)
    paths.update(_infra_paths())
    scopes = "; ".join(f"`{name}`: {text}" for name, text in auth.SCOPES.items())
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1", "description": description},
        "tags": [
            {"name": SERVICE_TAG, "description": "Search, recommendations, feedback"},
            {"name": INFRA_TAG, "description": "Liveness, readiness, metrics"},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "HS256 JWT with typ at+jwt, issued out of band (`media-gateway token`). "
                        f"The security requirements name the scopes an operation needs: {scopes}. "
                        "A token for one user can never read or change another user's data (403)."
                    ),
                }
            },
        },
    }
