"""Gemini query parsing: the real google-genai SDK over real HTTP against the local fake API."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from models.ranking.intent import QueryIntent
from serving.nlu import parse as parse_module
from serving.nlu.gemini_parser import (
    GeminiAuthError,
    GeminiConnectionError,
    GeminiHTTPError,
    GeminiIntentParser,
    GeminiIntentSchema,
    GeminiParseError,
    GeminiRateLimitError,
    GeminiResponseError,
    GeminiTimeoutError,
)
from serving.nlu.local_parser import parse_local
from serving.nlu.parse import MAX_QUERY_CHARS, QueryTooLongError, parse_query
from serving.nlu.vocabulary import TMDB_MOVIE_GENRES
from tests.fakes.fake_gemini import RECORDED_RESPONSES, FakeGeminiServer, ScriptedReply

KEY = "test-gemini-key"
TODAY = date(2026, 11, 15)


@pytest.fixture
def fake() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(api_key=KEY) as server:
        yield server
    parse_module._gemini.cache_clear()


def _parse(fake: FakeGeminiServer, text: str, **kwargs: object) -> QueryIntent:
    options: dict[str, object] = {"api_key": KEY, "base_url": fake.base_url, "today": TODAY}
    options.update(kwargs)
    return parse_query(text, **options)  # type: ignore[arg-type]


def test_recorded_answer_comes_back_as_a_gemini_intent(fake: FakeGeminiServer) -> None:
    got = _parse(fake, "Thriller movies like Inception", fallback=False)
    expected = QueryIntent(**RECORDED_RESPONSES["thriller movies like inception"], parser="gemini")
    assert got == expected
    # the recorded answer differs from what the local parser says, so it really came over HTTP
    assert got.genres != parse_local("Thriller movies like Inception", today=TODAY).genres


def test_unrecorded_query_is_answered_through_the_sdk(fake: FakeGeminiServer) -> None:
    query = "80s sci-fi on netflix"
    got = _parse(fake, query, fallback=False)
    local = parse_local(query, today=TODAY)
    assert got.parser == "gemini"
    assert got.model_dump(exclude={"parser"}) == local.model_dump(exclude={"parser"})


def test_request_carries_key_schema_and_json_mime_type(fake: FakeGeminiServer) -> None:
    _parse(fake, "korean thriller series", fallback=False)
    (request,) = fake.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert {"contents", "generationConfig"} <= set(request.body)
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["temperature"] == 0
    schema = config["responseSchema"]
    assert schema["type"] == "OBJECT"
    assert set(schema["properties"]) == set(QueryIntent.model_fields) - {"parser"}
    assert schema["properties"]["genres"]["items"]["enum"] == list(TMDB_MOVIE_GENRES)
    assert request.body["contents"] == [
        {"parts": [{"text": "korean thriller series"}], "role": "user"}
    ]
    instruction = request.body["systemInstruction"]["parts"][0]["text"]
    assert "Today's date is 2026-11-15." in instruction


def test_schema_fields_match_query_intent() -> None:
    assert set(GeminiIntentSchema.model_fields) == set(QueryIntent.model_fields) - {"parser"}


@pytest.mark.parametrize("fallback", [False, True])
def test_wrong_key(
    fake: FakeGeminiServer, fallback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    query = "something funny under 90 minutes on netflix"
    if not fallback:
        with pytest.raises(GeminiAuthError) as info:
            _parse(fake, query, api_key="wrong-key", fallback=False)
        assert info.value.status_code == 400
        assert info.value.status == "INVALID_ARGUMENT"
        return
    with caplog.at_level(logging.WARNING, logger="serving.nlu.parse"):
        got = _parse(fake, query, api_key="wrong-key")
    assert got == parse_local(query, today=TODAY)
    assert got.parser == "local"
    messages = [r.getMessage() for r in caplog.records if r.name == "serving.nlu.parse"]
    assert any("GeminiAuthError" in m for m in messages)
    assert all("funny" not in m for m in messages)


@pytest.mark.parametrize(
    ("model_text", "reason"),
    [
        ('{"genres": ["Thriller"], "moods": [', "invalid JSON"),
        ('["Thriller"]', "not an object"),
        ('{"genres": ["Superhero"]}', "schema"),
        ('{"genres": [], "mood": "dark"}', "schema"),
        ('{"max_runtime": 0}', "schema"),
    ],
)
def test_malformed_model_answer(fake: FakeGeminiServer, model_text: str, reason: str) -> None:
    fake.script(ScriptedReply(model_text=model_text))
    with pytest.raises(GeminiResponseError, match=reason):
        _parse(fake, "80s sci-fi", fallback=False)
    fake.script(ScriptedReply(model_text=model_text))
    assert _parse(fake, "80s sci-fi").parser == "local"


def test_blocked_answer_without_content(fake: FakeGeminiServer) -> None:
    fake.script(ScriptedReply(finish_reason="SAFETY"))
    with pytest.raises(GeminiResponseError, match="SAFETY"):
        _parse(fake, "80s sci-fi", fallback=False)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, GeminiRateLimitError), (500, GeminiHTTPError), (503, GeminiHTTPError)],
)
def test_server_errors_are_typed_and_not_retried(
    fake: FakeGeminiServer, status: int, error_class: type[GeminiParseError]
) -> None:
    fake.script(ScriptedReply(status=status))
    started = time.perf_counter()
    with pytest.raises(error_class) as info:
        _parse(fake, "80s sci-fi", fallback=False)
    assert isinstance(info.value, GeminiHTTPError) and info.value.status_code == status
    assert len(fake.requests) == 1
    assert time.perf_counter() - started < 2.0
    fake.script(ScriptedReply(status=status))
    assert _parse(fake, "80s sci-fi").parser == "local"
    assert len(fake.requests) == 2


def test_unknown_model_is_an_http_error(fake: FakeGeminiServer) -> None:
    with pytest.raises(GeminiHTTPError) as info:
        _parse(fake, "80s sci-fi", model="gemini-0-nonexistent", fallback=False)
    assert info.value.status_code == 404


def test_timeout(fake: FakeGeminiServer) -> None:
    fake.script(ScriptedReply(delay_s=3.0))
    started = time.perf_counter()
    with pytest.raises(GeminiTimeoutError):
        _parse(fake, "80s sci-fi", timeout_s=0.3, fallback=False)
    assert time.perf_counter() - started < 2.0
    fake.script(ScriptedReply(delay_s=3.0))
    assert _parse(fake, "80s sci-fi", timeout_s=0.3).parser == "local"


def test_unreachable_api() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    parser = GeminiIntentParser(KEY, base_url=f"http://127.0.0.1:{port}", timeout_s=1.0)
    with pytest.raises(GeminiConnectionError):
        parser.parse("80s sci-fi", today=TODAY)


def test_without_key_or_text_gemini_is_not_called(fake: FakeGeminiServer) -> None:
    assert parse_query("80s sci-fi", base_url=fake.base_url, today=TODAY).parser == "local"
    assert _parse(fake, "   ").parser == "local"
    assert fake.requests == []


def test_too_long_query_is_refused(fake: FakeGeminiServer) -> None:
    with pytest.raises(QueryTooLongError):
        _parse(fake, "x" * (MAX_QUERY_CHARS + 1))
    assert fake.requests == []


def test_parser_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="api_key"):
        GeminiIntentParser("")
    with pytest.raises(ValueError, match="timeout_s"):
        GeminiIntentParser(KEY, timeout_s=0)


def _raw_post(fake: FakeGeminiServer, body: dict, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/v1beta/models/gemini-2.5-flash:generateContent",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
        timeout=5,
    )


def test_fake_speaks_the_gemini_error_format(fake: FakeGeminiServer) -> None:
    body = {"contents": [{"parts": [{"text": "80s sci-fi"}], "role": "user"}]}
    missing = _raw_post(fake, body, {})
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = _raw_post(fake, body, {"x-goog-api-key": "nope"}).json()["error"]
    assert wrong["code"] == 400 and wrong["details"][0]["reason"] == "API_KEY_INVALID"
    strict = {
        **body,
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "additionalProperties": False},
        },
    }
    rejected = _raw_post(fake, strict, {"x-goog-api-key": KEY})
    assert rejected.status_code == 400
    assert "additionalProperties" in rejected.json()["error"]["message"]
    ok = _raw_post(fake, body, {"x-goog-api-key": KEY}).json()
    assert ok["candidates"][0]["finishReason"] == "STOP"
    assert ok["candidates"][0]["content"]["role"] == "model"
    answer = json.loads(ok["candidates"][0]["content"]["parts"][0]["text"])
    assert answer["genres"] == ["Science Fiction"]
    assert ok["usageMetadata"]["totalTokenCount"] > 0
