"""Query understanding with Gemini through ``google-genai``: structured output, validated strictly.

One ``generateContent`` call per query: a fixed system instruction (fields, allowed genres, moods,
service ids, today's date), the user's query as the only user content, ``temperature=0``,
``response_mime_type="application/json"`` and ``response_schema=`` :class:`GeminiIntentSchema` (a
pydantic class; google-genai 3.x turns it into the API's OpenAPI-subset ``Schema``).

Decisions:

* The response schema is a separate model, not ``QueryIntent`` itself: the Gemini ``Schema`` has no
  ``exclusiveMinimum`` and the API rejects ``additionalProperties`` (``extra="forbid"``), so the
  schema uses ``minimum`` and allows extra keys on the wire; we then validate strictly ourselves.
  It is *stricter* than ``QueryIntent`` where that helps the model: genres, services and moods are
  enums. A test keeps its field set equal to ``QueryIntent``'s minus ``parser``.
* The SDK's ``response.parsed`` swallows validation errors, so we read ``response.text`` and parse it
  ourselves; anything off (HTTP error, timeout, no text, invalid JSON, schema mismatch) raises a
  subclass of :class:`GeminiParseError`. Whether to fall back is the caller's decision
  (:func:`serving.nlu.parse.parse_query`).
* No retries (``HttpRetryOptions(attempts=1)``): search is interactive, a second attempt after a
  429 or a timeout would only make the user wait longer than the local parser takes.
* ``api_version="v1beta"`` is pinned (google-genai 3.x defaults to ``v1``); structured output is
  documented against ``v1beta``.
* Gemini 2.5 Flash models get ``thinking_budget=0``: parsing a query needs no reasoning and thinking
  would eat most of the latency budget. Other models keep their default.
* Logs carry the model, latency, finish reason and token counts, never the query text.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import time
from datetime import date
from typing import Literal

from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.ranking.intent import Mood, QueryIntent
from serving.nlu.vocabulary import MOODS, SERVICE_IDS, TMDB_MOVIE_GENRES, GenreName, ServiceId

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
API_VERSION = "v1beta"


def _transport_exceptions(name: str) -> tuple[type[Exception], ...]:
    """``name`` from httpx and httpx2: google-genai sends through httpx2 when it is installed."""
    return tuple(
        getattr(importlib.import_module(module), name)
        for module in ("httpx", "httpx2")
        if importlib.util.find_spec(module) is not None
    )


_TIMEOUT_ERRORS = _transport_exceptions("TimeoutException")
_TRANSPORT_ERRORS = _transport_exceptions("TransportError")


class GeminiParseError(RuntimeError):
    """Gemini did not produce a valid intent for a query."""


class GeminiHTTPError(GeminiParseError):
    """The API answered with an error status."""

    def __init__(self, status_code: int, status: str | None, message: str | None) -> None:
        super().__init__(f"Gemini API error {status_code} {status or ''}: {message or ''}".strip())
        self.status_code = status_code
        self.status = status


class GeminiAuthError(GeminiHTTPError):
    """The API key is missing, invalid or not allowed (400 API_KEY_INVALID, 401, 403)."""


class GeminiRateLimitError(GeminiHTTPError):
    """Quota or rate limit exhausted (429 RESOURCE_EXHAUSTED)."""


class GeminiTimeoutError(GeminiParseError):
    """No answer within the timeout."""


class GeminiConnectionError(GeminiParseError):
    """The API could not be reached (DNS, refused connection, TLS, dropped connection)."""


class GeminiResponseError(GeminiParseError):
    """The model's answer was empty, blocked, not JSON, or did not match the intent schema."""


class GeminiIntentSchema(BaseModel):
    """What we ask Gemini to return: ``QueryIntent`` without ``parser``, with enums where we can."""

    text: str = Field(
        "",
        description="Descriptive words of the request left after removing the filter words "
        "(topics, plot, themes), for semantic search. Empty only if nothing descriptive is left.",
    )
    genres: list[GenreName] = Field(default_factory=list, description="Wanted TMDB genres.")
    exclude_genres: list[GenreName] = Field(
        default_factory=list, description="TMDB genres the user does not want."
    )
    year_min: int | None = Field(None, description="Earliest release year.")
    year_max: int | None = Field(None, description="Latest release year.")
    max_runtime: int | None = Field(None, ge=1, description="Maximum runtime in minutes.")
    min_rating: float | None = Field(
        None, ge=0, le=10, description="Minimum TMDB vote average, 0-10."
    )
    moods: list[Mood] = Field(default_factory=list, description="Moods the user asks for.")
    like_titles: list[str] = Field(
        default_factory=list,
        description="Titles the user wants something similar to, spelled as the user wrote them.",
    )
    services: list[ServiceId] = Field(
        default_factory=list, description="Streaming services the user names."
    )
    language: str | None = Field(
        None,
        pattern=r"^[a-z]{2}$",
        description="ISO 639-1 code of the requested original language.",
    )
    content_type: Literal["movie", "series"] | None = Field(
        None, description="movie or series, only when the request says so."
    )


class _StrictIntent(GeminiIntentSchema):
    """The schema with unknown keys rejected: what a response must satisfy."""

    model_config = ConfigDict(extra="forbid")


SERVICE_NAMES = {
    "netflix": "Netflix",
    "amazonprime": "Amazon Prime Video",
    "disneyplus": "Disney+",
    "hulu": "Hulu",
    "max": "Max (HBO Max)",
    "appletvplus": "Apple TV+",
    "paramountplus": "Paramount+",
    "peacocktv": "Peacock",
}
if set(SERVICE_NAMES) != set(SERVICE_IDS):
    raise RuntimeError("gemini_parser.SERVICE_NAMES must describe exactly vocabulary.SERVICE_IDS")


def system_instruction(today: date) -> str:
    """The fixed instruction sent with every query (the query itself is the user content)."""
    services = ", ".join(f"{k} ({v})" for k, v in SERVICE_NAMES.items())
    return (
        f"Today's date is {today.isoformat()}.\n"
        "You turn a viewer's request for something to watch into search filters for a streaming "
        "guide. Fill only what the request states or clearly implies; leave every other field "
        "empty or null. Never invent titles.\n"
        f"- genres / exclude_genres: TMDB movie genres only: {', '.join(TMDB_MOVIE_GENRES)}. "
        "'sci-fi' is Science Fiction, 'rom-com' is Romance and Comedy, 'musical' is Music.\n"
        "- year_min / year_max: release years; '80s' means 1980-1989; 'recent' or 'new' means "
        "the last 3 years; 'after 2015' means from 2016.\n"
        "- max_runtime: minutes ('under two hours' is 120; 'short' is 90).\n"
        "- min_rating: TMDB vote average 0-10 ('highly rated' is 7.5; '4 stars' is 8).\n"
        f"- moods: only from {', '.join(MOODS)}.\n"
        "- like_titles: titles after 'like', 'similar to', 'in the style of'.\n"
        f"- services: ids from {services}.\n"
        "- language: ISO 639-1 code of the original language asked for ('k-drama' is ko, "
        "'anime' is ja, 'bollywood' is hi).\n"
        "- content_type: 'movie' for movies/films, 'series' for shows/series/tv.\n"
        "- text: what is left of the request after removing the words used above."
    )


def _generation_config(model: str, today: date) -> types.GenerateContentConfig:
    thinking = (
        types.ThinkingConfig(thinking_budget=0) if model.startswith("gemini-2.5-flash") else None
    )
    return types.GenerateContentConfig(
        system_instruction=system_instruction(today),
        temperature=0.0,
        response_mime_type="application/json",
        response_schema=GeminiIntentSchema,
        thinking_config=thinking,
    )


def _intent_from_text(raw: str | None, finish_reason: str | None) -> QueryIntent:
    if raw is None or not raw.strip():
        raise GeminiResponseError(f"Gemini returned no text (finish reason {finish_reason})")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as error:
        raise GeminiResponseError(
            f"Gemini returned invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error
    if not isinstance(payload, dict):
        raise GeminiResponseError(f"Gemini returned a JSON {type(payload).__name__}, not an object")
    try:
        strict = _StrictIntent.model_validate(payload)
        return QueryIntent(**strict.model_dump(), parser="gemini")
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        raise GeminiResponseError(
            f"Gemini's answer does not match the intent schema (fields: {', '.join(fields)})"
        ) from error


def _http_error(error: genai_errors.APIError) -> GeminiHTTPError:
    code = int(error.code)
    reasons = json.dumps(error.details) if error.details is not None else ""
    if code in (401, 403) or (code == 400 and "API_KEY_INVALID" in reasons):
        return GeminiAuthError(code, error.status, error.message)
    if code == 429:
        return GeminiRateLimitError(code, error.status, error.message)
    return GeminiHTTPError(code, error.status, error.message)


class GeminiIntentParser:
    """A configured Gemini client that turns queries into ``QueryIntent(parser="gemini")``."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("GeminiIntentParser needs a non-empty api_key")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.model = model
        self.timeout_s = timeout_s
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                api_version=API_VERSION,
                timeout=max(1, round(timeout_s * 1000)),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def parse(self, text: str, *, today: date | None = None) -> QueryIntent:
        """Ask Gemini for the intent of ``text``; raise a :class:`GeminiParseError` on any failure."""
        started = time.perf_counter()
        try:
            response = self._client.models.generate_content(
                model=self.model,
                contents=text,
                config=_generation_config(self.model, today or date.today()),
            )
        except genai_errors.APIError as error:
            raise _http_error(error) from error
        except _TIMEOUT_ERRORS as error:
            raise GeminiTimeoutError(f"Gemini did not answer within {self.timeout_s} s") from error
        except _TRANSPORT_ERRORS as error:
            raise GeminiConnectionError(f"Gemini unreachable: {type(error).__name__}") from error
        except genai_errors.UnknownApiResponseError as error:
            raise GeminiResponseError("Gemini answered with a body that is not JSON") from error
        candidate = response.candidates[0] if response.candidates else None
        finish = (
            str(candidate.finish_reason.value) if candidate and candidate.finish_reason else None
        )
        usage = response.usage_metadata
        logger.info(
            "gemini intent",
            extra={
                "model": self.model,
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "finish_reason": finish,
                "prompt_tokens": usage.prompt_token_count if usage else None,
                "output_tokens": usage.candidates_token_count if usage else None,
            },
        )
        return _intent_from_text(response.text, finish)
