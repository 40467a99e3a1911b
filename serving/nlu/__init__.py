"""Natural-language understanding for search: query text -> ``QueryIntent``."""

from serving.nlu.gemini_parser import GeminiParseError
from serving.nlu.local_parser import parse_local
from serving.nlu.parse import QueryTooLongError, parse_query

__all__ = ["GeminiParseError", "QueryTooLongError", "parse_local", "parse_query"]
