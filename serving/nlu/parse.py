"""The entry point of query understanding: Gemini when a key is given, the local parser otherwise.

``parse_query(text, api_key=os.environ.get("GEMINI_API_KEY"))`` - the caller reads the key from its
environment/config and passes it; this module never reads environment variables.

Decision: with ``fallback=True`` (the default) a failing Gemini call (HTTP error, bad key, 429,
timeout, unreachable, malformed or off-schema answer) falls back to the local parser. An unavailable
LLM must not break search, but the degradation stays visible: the intent says ``parser="local"`` and
a warning names the error class (never the query text, which can be personal). With
``fallback=False`` the typed :class:`GeminiParseError` propagates.

Blank queries never reach Gemini (nothing to understand; the local parser returns an empty intent),
and queries longer than :data:`MAX_QUERY_CHARS` are refused with :class:`QueryTooLongError` before
any call: a search box does not need more, and it caps cost and prompt-stuffing.
"""

from __future__ import annotations

import logging
from datetime import date
from functools import lru_cache

from models.ranking.intent import QueryIntent
from serving.nlu.gemini_parser import DEFAULT_MODEL, GeminiIntentParser, GeminiParseError
from serving.nlu.local_parser import parse_local

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500


class QueryTooLongError(ValueError):
    """The query exceeds :data:`MAX_QUERY_CHARS`."""


@lru_cache(maxsize=8)
def _gemini(api_key: str, base_url: str | None, model: str, timeout_s: float) -> GeminiIntentParser:
    """One client (and its HTTP connection pool) per configuration, reused across queries."""
    return GeminiIntentParser(api_key, base_url=base_url, model=model, timeout_s=timeout_s)


def parse_query(
    text: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    model: str = DEFAULT_MODEL,
    timeout_s: float = 5.0,
    fallback: bool = True,
    today: date | None = None,
) -> QueryIntent:
    """Structured intent of a search query (see the module docstring for the fallback rule)."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryTooLongError(f"query has {len(text)} characters; at most {MAX_QUERY_CHARS}")
    if not api_key or not text.strip():
        return parse_local(text, today=today)
    try:
        return _gemini(api_key, base_url, model, timeout_s).parse(text, today=today)
    except GeminiParseError as error:
        if not fallback:
            raise
        logger.warning(
            "Gemini query parsing failed (%s); falling back to the local parser",
            type(error).__name__,
            extra={"error_class": type(error).__name__, "model": model},
        )
        return parse_local(text, today=today)
