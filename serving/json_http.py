"""JSON in, JSON out: the two ASGI middlewares that hold the HTTP API to its documented media types.

:class:`JsonBodyMiddleware`: POST APIs take JSON bodies only; any other declared ``Content-Type``
gets 415 with a reason. BentoML would also parse ``multipart/form-data`` and
``application/x-www-form-urlencoded`` bodies for its APIs (and crashed with a 500 on a multipart
type without a boundary). The API's contract is JSON (``/docs.json``), so this middleware answers
415 before BentoML reads such a body. A request without ``Content-Type`` is still read as JSON, as
BentoML does; ``application/json`` may carry parameters (``; charset=utf-8``).

:class:`JsonErrorsMiddleware`: the router's own answers for an unknown path (404) or a wrong method
(405) are plain text; they become ``{"error": "Not Found"}`` like every other error of the API
(the ``Allow`` header of a 405 is kept). Only those two statuses with a ``text/plain`` body are
rewritten, so ``/livez``, ``/metrics`` and ``/llms.txt`` are untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


REWRITTEN_STATUSES = frozenset({404, 405})


class JsonErrorsMiddleware:
    """Plain-text 404/405 answers of the router -> ``{"error": <their text>}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                plain = headers.get(b"content-type", b"").startswith(b"text/plain")
                if message["status"] in REWRITTEN_STATUSES and plain:
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await _send_json(send, held, b"".join(chunks))
                return
            await send(message)

        await self.app(scope, receive, rewrite)


async def _send_json(send: Send, start: Message, text: bytes) -> None:
    body = json.dumps({"error": text.decode("utf-8", "replace").strip()}).encode()
    keep = [
        (k, v)
        for k, v in start.get("headers", [])
        if k.lower() not in (b"content-type", b"content-length")
    ]
    await send(
        {
            **start,
            "headers": [
                *keep,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
