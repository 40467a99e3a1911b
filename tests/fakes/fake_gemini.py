"""A local HTTP stand-in for the Gemini REST API (``generateContent``), for tests and offline dev.

``with FakeGeminiServer(api_key="k") as server:`` serves ``server.base_url`` (127.0.0.1, a free
port, a ``ThreadingHTTPServer`` on a background thread) and answers
``POST /{v1beta|v1}/models/{model}:generateContent`` the way the Gemini API does:

* auth by the ``x-goog-api-key`` header (or ``?key=``): no key -> 403 ``PERMISSION_DENIED``; a wrong
  key -> 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` of reason ``API_KEY_INVALID``, which is what
  the real API answers for an invalid key (not 401);
* unknown model -> 404 ``NOT_FOUND``; a body that is not JSON, no ``contents``, or a
  ``responseSchema`` field outside the API's OpenAPI-subset ``Schema`` (e.g. ``additionalProperties``)
  -> 400 ``INVALID_ARGUMENT`` ("Unknown name ... Cannot find field"), as the real API rejects them;
* success -> ``{"candidates": [{"content": {"parts": [{"text": "<json>"}], "role": "model"},
  "finishReason": "STOP", "index": 0}], "usageMetadata": {...}, "modelVersion": ..., "responseId"}``.

**What stands in for the model.** The answer's JSON comes from :data:`RECORDED_RESPONSES` (answers
for a handful of queries, in the shape Gemini's structured output takes) keyed by the normalised
query, and otherwise from the local parser run on the user text found in the request, with the date
read from the system instruction ("Today's date is ..."). The point is not the model's quality but
the real SDK over real HTTP: request shape (``generationConfig.responseMimeType`` /
``responseSchema``), auth header, error mapping, timeouts.

Tests script failures with :meth:`FakeGeminiServer.script` (a FIFO of :class:`ScriptedReply`: an
error status, raw model text such as malformed JSON, a delay for timeouts, a finish reason) and read
what the SDK sent in :attr:`FakeGeminiServer.requests`.

Run ``python -m tests.fakes.fake_gemini --port 8765 --api-key dev`` to point a local service at it
(``GEMINI_API_KEY=dev`` plus the base URL).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from serving.nlu.local_parser import parse_local

logger = logging.getLogger(__name__)

KNOWN_MODELS: frozenset[str] = frozenset(
    {"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash"}
)

_SCHEMA_FIELDS_CAMEL = (
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
)  # fmt: skip
SCHEMA_FIELDS: frozenset[str] = frozenset(
    {*_SCHEMA_FIELDS_CAMEL, *(re.sub(r"([A-Z])", r"_\1", f).lower() for f in _SCHEMA_FIELDS_CAMEL)}
)
"""Fields of the Gemini API ``Schema`` message. Like every proto3 JSON endpoint the API accepts the
lowerCamelCase name and the original snake_case name (google-genai sends ``property_ordering``)."""

_PATH = re.compile(r"^/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_TODAY = re.compile(r"Today's date is (\d{4}-\d{2}-\d{2})")

_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGE = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

RECORDED_RESPONSES: dict[str, dict[str, Any]] = {
    "thriller movies like inception": {
        "text": "",
        "genres": ["Thriller", "Science Fiction"],
        "exclude_genres": [],
        "moods": ["tense", "thoughtful"],
        "like_titles": ["Inception"],
        "services": [],
        "content_type": "movie",
    },
    "something funny under 90 minutes on netflix": {
        "text": "",
        "genres": ["Comedy"],
        "exclude_genres": [],
        "max_runtime": 90,
        "moods": ["funny"],
        "like_titles": [],
        "services": ["netflix"],
    },
    "a cozy show for a rainy sunday": {
        "text": "rainy sunday",
        "genres": [],
        "exclude_genres": [],
        "moods": ["relaxing"],
        "like_titles": [],
        "services": [],
        "content_type": "series",
    },
    "korean thriller series": {
        "text": "",
        "genres": ["Thriller"],
        "exclude_genres": [],
        "moods": ["tense"],
        "like_titles": [],
        "services": [],
        "language": "ko",
        "content_type": "series",
    },
}
"""Answers for a handful of queries (keys: lower case, single spaces), in the shape Gemini's
structured output has: lists present even when empty, unset optional fields omitted."""


def normalise_query(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class ScriptedReply:
    """How to answer the next request instead of the normal behaviour."""

    status: int = 200
    model_text: str | None = None
    """Raw text of the model's part (e.g. malformed JSON); ``None`` -> the normal answer."""
    delay_s: float = 0.0
    finish_reason: str = "STOP"
    """"SAFETY" answers a candidate without content, as a blocked response has."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake saw it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, list[str]]
    body: dict[str, Any] | None
    api_version: str | None = None
    model: str | None = None


def _error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": _STATUS_TEXT.get(code, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def _schema_violation(schema: Any, where: str) -> str | None:
    """First field outside the Gemini ``Schema`` message, as the API names it; ``None`` if valid."""
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}': expected a Schema object"
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': " + (
                "Cannot find field."
            )
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                if found := _schema_violation(sub, f"{where}.properties[{name}].value"):
                    return found
        elif key == "items":
            if found := _schema_violation(value, f"{where}.items"):
                return found
        elif key == "anyOf" and isinstance(value, list):
            for i, sub in enumerate(value):
                if found := _schema_violation(sub, f"{where}.any_of[{i}]"):
                    return found
    return None


def _user_text(body: dict[str, Any]) -> str:
    contents = body.get("contents") or []
    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    if not users:
        return ""
    parts = users[-1].get("parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _today(body: dict[str, Any]) -> date:
    instruction = body.get("systemInstruction") or {}
    text = "".join(p.get("text", "") for p in instruction.get("parts", []) if isinstance(p, dict))
    found = _TODAY.search(text)
    return date.fromisoformat(found.group(1)) if found else date.today()


def model_answer(body: dict[str, Any], recorded: Mapping[str, dict[str, Any]]) -> str:
    """The JSON text the stand-in model answers for a request body."""
    query = _user_text(body)
    answer = recorded.get(normalise_query(query))
    if answer is None:
        answer = parse_local(query, today=_today(body)).model_dump(
            exclude={"parser"}, exclude_none=True
        )
    return json.dumps(answer, indent=2)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


@dataclass
class _State:
    api_key: str
    models: frozenset[str]
    recorded: Mapping[str, dict[str, Any]]
    requests: list[ReceivedRequest] = field(default_factory=list)
    scripted: deque[ScriptedReply] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake gemini: " + format, *args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout fired): there is nobody left to answer.
            logger.debug("fake gemini: client closed the connection before the answer")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._read_body()
        self._send(404, _error_body(404, f"Method not found: GET {urlsplit(self.path).path}"))

    def do_POST(self) -> None:
        state = self.server.state
        raw = self._read_body()
        url = urlsplit(self.path)
        match = _PATH.match(url.path)
        body: dict[str, Any] | None = None
        try:
            decoded = json.loads(raw) if raw else None
            body = decoded if isinstance(decoded, dict) else None
        except json.JSONDecodeError:
            body = None
        received = ReceivedRequest(
            method="POST",
            path=url.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            query=parse_qs(url.query),
            body=body,
            api_version=match.group("version") if match else None,
            model=match.group("model") if match else None,
        )
        with state.lock:
            state.requests.append(received)
            scripted = state.scripted.popleft() if state.scripted else ScriptedReply()
        if scripted.delay_s and state.stopping.wait(scripted.delay_s):
            return
        status, payload = self._answer(state, received, raw, scripted)
        self._send(status, payload)

    def _answer(
        self, state: _State, req: ReceivedRequest, raw: bytes, scripted: ScriptedReply
    ) -> tuple[int, dict[str, Any]]:
        if req.model is None or not self.path.split("?")[0].endswith(":generateContent"):
            return 404, _error_body(404, f"Method not found: POST {req.path}")
        key = req.headers.get("x-goog-api-key") or (req.query.get("key") or [None])[0]
        if not key:
            return 403, _error_body(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != state.api_key:
            return 400, _error_body(
                400,
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if scripted.status != 200:
            message = _STATUS_MESSAGE.get(scripted.status, "Scripted error.")
            return scripted.status, _error_body(scripted.status, message)
        if req.model not in state.models:
            return 404, _error_body(
                404,
                f"models/{req.model} is not found for API version {req.api_version}, or is not "
                "supported for generateContent. Call ListModels to see the list of available "
                "models and their supported methods.",
            )
        if req.body is None:
            return 400, _error_body(400, "Invalid JSON payload received. Unexpected token.")
        if not req.body.get("contents"):
            return 400, _error_body(
                400, "* GenerateContentRequest.contents: contents is not specified"
            )
        config = req.body.get("generationConfig") or {}
        schema = config.get("responseSchema")
        if schema is not None:
            if violation := _schema_violation(schema, "generation_config.response_schema"):
                return 400, _error_body(400, violation)
            if config.get("responseMimeType") != "application/json":
                return 400, _error_body(
                    400,
                    "* GenerateContentRequest.generation_config.response_schema: only allowed "
                    "for response_mime_type application/json",
                )
        return 200, self._success(state, req.body, req.model, raw, scripted)

    def _success(
        self,
        state: _State,
        body: dict[str, Any],
        model: str,
        raw: bytes,
        scripted: ScriptedReply,
    ) -> dict[str, Any]:
        prompt_tokens = _tokens(raw.decode("utf-8", "replace"))
        candidate: dict[str, Any] = {"finishReason": scripted.finish_reason, "index": 0}
        output_tokens = 0
        if scripted.finish_reason != "SAFETY":
            text = (
                scripted.model_text
                if scripted.model_text is not None
                else model_answer(body, state.recorded)
            )
            output_tokens = _tokens(text)
            candidate["content"] = {"parts": [{"text": text}], "role": "model"}
        digest = hashlib.sha256(raw).digest()[:12]
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
            },
            "modelVersion": model,
            "responseId": base64.urlsafe_b64encode(digest).decode().rstrip("="),
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


class FakeGeminiServer:
    """The fake Gemini API on a background thread; a context manager (``__enter__`` returns it)."""

    def __init__(
        self,
        *,
        api_key: str = "fake-gemini-key",
        models: frozenset[str] = KNOWN_MODELS,
        recorded: Mapping[str, dict[str, Any]] = RECORDED_RESPONSES,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._state = _State(api_key=api_key, models=models, recorded=recorded)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGeminiServer is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Requests received so far (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    def script(self, *replies: ScriptedReply) -> None:
        """Answer the next requests with ``replies``, in order (then behave normally again)."""
        with self._state.lock:
            self._state.scripted.extend(replies)

    def start(self) -> FakeGeminiServer:
        if self._server is not None:
            raise RuntimeError("FakeGeminiServer is already running")
        self._state.stopping.clear()
        self._server = _Server(self._address, self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # a quick shutdown keeps tests fast
            name="fake-gemini",
            daemon=True,
        )
        self._thread.start()
        logger.info("fake gemini listening", extra={"base_url": self.base_url})
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGeminiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake API in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="fake-gemini-key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = FakeGeminiServer(api_key=args.api_key, host=args.host, port=args.port).start()
    logger.info("serving the fake Gemini API at %s (Ctrl-C to stop)", server.base_url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
