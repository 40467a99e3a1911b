"""POST APIs take JSON bodies only: any other declared ``Content-Type`` gets 415 with a reason.

BentoML would also parse ``multipart/form-data`` and ``application/x-www-form-urlencoded`` bodies
for its APIs (and crashed with a 500 on a multipart type without a boundary). The API's contract is
JSON (``/docs.json``), so this middleware answers 415 before BentoML reads such a body. A request
without ``Content-Type`` is still read as JSON, as BentoML does; ``application/json`` may carry
parameters (``; charset=utf-8``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

JSON_MEDIA_TYPE = "application/json"


def media_type(content_type: str) -> str:
    """``'Application/JSON; charset=utf-8'`` -> ``'application/json'``."""
    return content_type.split(";", 1)[0].strip().lower()


class JsonBodyMiddleware:
    """415 for a POST to one of ``paths`` whose ``Content-Type`` is not ``application/json``."""

    def __init__(self, app: ASGIApp, paths: Iterable[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            for name, value in scope.get("headers", []):
                if name == b"content-type":
                    declared = value.decode("latin-1")
                    if media_type(declared) != JSON_MEDIA_TYPE:
                        await _unsupported(send, declared)
                        return
        await self.app(scope, receive, send)


async def _unsupported(send: Send, declared: str) -> None:
    shown = declared if len(declared) <= 80 else declared[:80] + "..."
    reason = f"Content-Type must be {JSON_MEDIA_TYPE}, not {shown!r}"
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 415,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"accept-post", JSON_MEDIA_TYPE.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
