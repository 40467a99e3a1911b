"""What a natural-language request asks for: the structure both NLU parsers (Gemini and local) produce
and the search and ranking code consumes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Mood = Literal[
    "light",
    "funny",
    "dark",
    "tense",
    "scary",
    "romantic",
    "uplifting",
    "thoughtful",
    "exciting",
    "relaxing",
    "sad",
    "weird",
]
"""Moods the ranker knows how to map to genres/keywords (see models/ranking/context.py)."""


class QueryIntent(BaseModel):
    """Structured intent parsed from a query such as "thriller movies like Inception under 2 hours"."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    """Free-text remainder used for semantic similarity (may be the whole query)."""
    genres: list[str] = Field(default_factory=list)
    """TMDB genre names (movie names; e.g. "Science Fiction", "Thriller")."""
    exclude_genres: list[str] = Field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    max_runtime: int | None = Field(None, gt=0, description="minutes")
    min_rating: float | None = Field(None, ge=0, le=10, description="TMDB vote average, 0-10")
    moods: list[Mood] = Field(default_factory=list)
    like_titles: list[str] = Field(default_factory=list)
    """Titles the user wants something similar to ("like Inception")."""
    services: list[str] = Field(default_factory=list)
    """Provider ids (JustWatch technical names: netflix, amazonprime, disneyplus, hulu, ...)."""
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    content_type: Literal["movie", "series"] | None = None
    parser: Literal["gemini", "local"] = "local"
    """Which parser produced this intent."""
