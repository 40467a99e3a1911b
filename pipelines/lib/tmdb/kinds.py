"""The two TMDB title kinds (``/movie`` and ``/tv``) and the input checks every TMDB source
(live or recorded) applies before answering."""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["movie", "tv"]
KINDS: tuple[Kind, ...] = ("movie", "tv")
IMDB_ID_RE = re.compile(r"tt\d{5,10}")


def check_kind(kind: str) -> Kind:
    """``kind`` itself when it is ``"movie"`` or ``"tv"``; ValueError otherwise."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'movie' or 'tv', got {kind!r}")
    return kind  # type: ignore[return-value]


def check_query(query: str) -> str:
    """The stripped search text; ValueError when it is empty."""
    if not query.strip():
        raise ValueError("search query must not be empty")
    return query.strip()


def check_imdb_id(imdb_id: str) -> str:
    """``imdb_id`` itself when it looks like ``tt0123456``; ValueError otherwise."""
    if not IMDB_ID_RE.fullmatch(imdb_id or ""):
        raise ValueError(f"not an IMDb title id: {imdb_id!r}")
    return imdb_id
