"""The ``/graphql`` ASGI app: authentication and rate limit once per HTTP request, persisted
queries by id, then strawberry.

* **Auth**: the ``Authorization`` header is checked by the same guard as REST before the query
  runs (a bad token is an HTTP 401, too many requests a 429, as on REST); fields then check their
  own scopes (:mod:`serving.graphql.schema`).
* **Limits**: depth :data:`~serving.graphql.limits.MAX_DEPTH`, aliases, tokens, and the cost rule
  of :mod:`serving.graphql.limits`; introspection stays on (the schema is public, like
  ``/docs.json``).
* **Persisted-query friendly**: queries (not mutations) work over ``GET`` (cacheable URLs); the
  operations in ``operations.graphql`` have stable names and are also accepted by id:
  ``GET /graphql?id=<sha256 hex of the operation text>&variables=...``. An unknown id is a 404.
  Any other document is accepted too (this is not an allow-list).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import bentoml
import strawberry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from serving.gateway import Gateway
from serving.graphql.limits import limit_extensions
from serving.graphql.schema import Mutation, Query
from serving.guard import ApiError
from serving.ratelimit import client_ip

OPERATIONS_FILE = Path(__file__).with_name("operations.graphql")
_NAME = re.compile(r"^(?:query|mutation)\s+(\w+)", re.MULTILINE)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=limit_extensions(),
)


@cache
def persisted_operations() -> dict[str, tuple[str, str]]:
    """sha256 hex -> (operation name, text) of every operation in ``operations.graphql``."""
    blocks = OPERATIONS_FILE.read_text(encoding="utf-8").split("\n\n")
    out = {}
    for block in blocks:
        text = "\n".join(ln for ln in block.strip().splitlines() if not ln.startswith("#")).strip()
        match = _NAME.match(text)
        if match:
            out[hashlib.sha256(text.encode()).hexdigest()] = (match.group(1), text)
    return out


def _gateway() -> Gateway:
    return bentoml.get_current_service().gateway  # type: ignore[attr-defined]


class GatewayGraphQL(GraphQL):
    """Strawberry's ASGI app with the gateway and the verified principal in the context."""

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return {
            "request": request,
            "response": response,
            "gateway": _gateway(),
            "principal": request.scope.get("state", {}).get("principal"),
        }


class GraphQLEndpoint:
    """Auth + rate limit + persisted ids in front of :class:`GatewayGraphQL`."""

    def __init__(self) -> None:
        self.inner = GatewayGraphQL(schema, subscription_protocols=(), graphql_ide="graphiql")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        request = Request(scope, receive)
        gateway = _gateway()
        client = client_ip(request)
        try:
            principal = await run_in_threadpool(
                gateway.guard.check, request.headers.get("authorization"), client, None
            )
            scope = self._persisted(scope)
        except ApiError as exc:
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"status": exc.status}}]},
                status_code=exc.status,
                headers=exc.headers,
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.inner(scope, receive, send)

    @staticmethod
    def _persisted(scope: Scope) -> Scope:
        """Replace ``?id=<hash>`` by the stored operation's ``query`` and ``operationName``."""
        if scope["method"] != "GET":
            return scope
        params = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        ids = [v for k, v in params if k == "id"]
        if not ids:
            return scope
        found = persisted_operations().get(ids[0])
        if found is None:
            raise ApiError(404, f"unknown persisted query id {ids[0]!r}")
        name, text = found
        rest = [(k, v) for k, v in params if k not in ("id", "query", "operationName")]
        query = urlencode([("query", text), ("operationName", name), *rest])
        return {**scope, "query_string": query.encode()}


app = GraphQLEndpoint()
