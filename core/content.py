"""The text a title is embedded from, and its hash (drives incremental re-embedding)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if v]
    return [str(value)]


def content_text(row: Mapping[str, Any]) -> str:
    """Deterministic description of a title for the sentence encoder.

    Title, year and type first (short queries match on them), then genres, overview, keywords and
    people. Missing fields are simply left out.
    """
    parts: list[str] = []
    title = row.get("title") or row.get("original_title") or ""
    year = row.get("year")
    kind = "TV series" if row.get("type") == "series" else "Movie"
    parts.append(f"{title} ({year})" if year else str(title))
    parts.append(kind)
    genres = _names(row.get("genres"))
    if genres:
        parts.append("Genres: " + ", ".join(genres))
    overview = (row.get("overview") or "").strip()
    if overview:
        parts.append(overview)
    keywords = _names(row.get("keywords"))
    if keywords:
        parts.append("Keywords: " + ", ".join(keywords[:12]))
    directors = _names(row.get("directors"))
    if directors:
        parts.append("By " + ", ".join(directors[:3]))
    cast = _names(row.get("cast"))
    if cast:
        parts.append("Starring " + ", ".join(cast[:4]))
    return ". ".join(p.rstrip(".") for p in parts if p) + "."


def content_hash(text: str) -> str:
    """sha256 hex digest of the embedding text (plus the encoder name, so a model change re-embeds)."""
    return hashlib.sha256(("all-MiniLM-L6-v2\n" + text).encode("utf-8")).hexdigest()
