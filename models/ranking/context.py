"""Viewing context (mood, occasion, time, content type, device) -> hard filters and a soft score.

:func:`context_effect` returns, per catalogue row, whether the title is allowed at all (``keep``) and
a raw context score (higher = fits the context better). The hybrid ranker min-max normalises the
score over its candidates, so only the order and relative gaps matter.

Hard filters:

* ``content_type`` keeps only movies or only series.
* ``time_available``: a movie longer than the time available is dropped; a series is kept when one
  episode fits (``runtime`` of a series is its typical episode length). Titles of unknown runtime are
  kept with a penalty of ``UNKNOWN_RUNTIME_PENALTY`` (we cannot promise they fit).
* ``occasion="kids"`` drops Horror.

Soft score = mean over the requested moods of the mood affinity (:data:`MOOD_GENRES`,
:data:`MOOD_KEYWORDS`) + the occasion affinity (:data:`OCCASION_GENRES`) + the runtime penalty.
A genre affinity of a title is ``max(positive weights of its genres) + min(negative weights)``: a
title is as suitable as its best-matching genre, but one clashing genre (Horror for a light mood)
pulls it down. Keyword affinity adds ``KEYWORD_STEP`` per matching keyword, at most ``KEYWORD_CAP``.

``device`` is carried for explanations and logging; it does not change scores (no evidence yet
that it should).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.ranking.catalog import Catalog
from models.ranking.intent import Mood

Occasion = Literal["solo", "date", "family", "friends", "kids"]

KEYWORD_STEP = 0.25
KEYWORD_CAP = 0.5
UNKNOWN_RUNTIME_PENALTY = -0.3

MOOD_GENRES: dict[str, dict[str, float]] = {
    "light": {
        "Comedy": 1.0,
        "Animation": 0.6,
        "Family": 0.6,
        "Romance": 0.5,
        "Adventure": 0.4,
        "Horror": -1.0,
        "War": -0.6,
        "Thriller": -0.3,
    },
    "funny": {
        "Comedy": 1.0,
        "Animation": 0.5,
        "Family": 0.3,
        "Horror": -0.5,
        "War": -0.6,
        "Drama": -0.2,
    },
    "dark": {
        "Crime": 0.8,
        "Thriller": 0.8,
        "Horror": 0.6,
        "Mystery": 0.6,
        "War": 0.5,
        "Drama": 0.3,
        "Family": -0.8,
        "Animation": -0.6,
        "Comedy": -0.4,
    },
    "tense": {
        "Thriller": 1.0,
        "Mystery": 0.7,
        "Crime": 0.6,
        "Horror": 0.5,
        "Action": 0.4,
        "Family": -0.6,
        "Comedy": -0.4,
    },
    "scary": {
        "Horror": 1.0,
        "Thriller": 0.5,
        "Mystery": 0.3,
        "Family": -1.0,
        "Animation": -0.6,
        "Comedy": -0.4,
    },
    "romantic": {
        "Romance": 1.0,
        "Comedy": 0.3,
        "Drama": 0.3,
        "Music": 0.3,
        "Horror": -0.8,
        "War": -0.5,
    },
    "uplifting": {
        "Family": 0.6,
        "Comedy": 0.6,
        "Music": 0.6,
        "Animation": 0.5,
        "Adventure": 0.4,
        "Horror": -1.0,
        "War": -0.6,
        "Crime": -0.3,
    },
    "thoughtful": {
        "Documentary": 1.0,
        "Drama": 0.7,
        "History": 0.6,
        "Science Fiction": 0.4,
        "Mystery": 0.3,
        "Action": -0.2,
    },
    "exciting": {
        "Action": 1.0,
        "Adventure": 0.8,
        "Thriller": 0.5,
        "Science Fiction": 0.4,
        "Documentary": -0.5,
    },
    "relaxing": {
        "Comedy": 0.5,
        "Family": 0.5,
        "Animation": 0.5,
        "Music": 0.4,
        "Documentary": 0.3,
        "Romance": 0.3,
        "Horror": -1.0,
        "Thriller": -0.6,
        "War": -0.6,
    },
    "sad": {"Drama": 1.0, "Romance": 0.4, "War": 0.4, "Comedy": -0.3},
    "weird": {"Fantasy": 0.5, "Science Fiction": 0.5, "Mystery": 0.3, "Animation": 0.3},
}
"""Mood -> canonical genre affinity in [-1, 1]."""

MOOD_KEYWORDS: dict[str, frozenset[str]] = {
    "light": frozenset({"friendship", "road trip", "holiday", "romantic comedy"}),
    "funny": frozenset(
        {"parody", "spoof", "satire", "stand-up comedy", "buddy comedy", "slapstick"}
    ),
    "dark": frozenset({"dystopia", "revenge", "murder", "serial killer", "neo-noir", "corruption"}),
    "tense": frozenset({"suspense", "heist", "hostage", "conspiracy", "kidnapping", "chase"}),
    "scary": frozenset(
        {
            "supernatural",
            "ghost",
            "haunted house",
            "slasher",
            "zombie",
            "monster",
            "demon",
            "possession",
        }
    ),
    "romantic": frozenset({"love", "wedding", "romantic comedy", "love triangle", "first love"}),
    "uplifting": frozenset(
        {
            "friendship",
            "underdog",
            "inspirational",
            "sport",
            "coming of age",
            "family relationships",
        }
    ),
    "thoughtful": frozenset(
        {
            "philosophy",
            "based on true story",
            "biography",
            "artificial intelligence",
            "time travel",
            "dream",
        }
    ),
    "exciting": frozenset(
        {"chase", "explosion", "heist", "martial arts", "superhero", "car chase"}
    ),
    "relaxing": frozenset({"nature", "travel", "cooking", "music", "small town"}),
    "sad": frozenset({"tragedy", "death", "grief", "terminal illness", "loss of loved one"}),
    "weird": frozenset(
        {
            "surrealism",
            "dream",
            "absurd",
            "cult film",
            "alternate reality",
            "time loop",
            "parallel world",
        }
    ),
}
"""Mood -> TMDB keywords (lower case) that signal it."""

OCCASION_GENRES: dict[str, dict[str, float]] = {
    "solo": {},
    "date": {
        "Romance": 0.6,
        "Comedy": 0.4,
        "Drama": 0.2,
        "War": -0.4,
        "Documentary": -0.3,
        "Animation": -0.3,
        "Family": -0.3,
    },
    "family": {
        "Family": 0.8,
        "Animation": 0.6,
        "Adventure": 0.3,
        "Comedy": 0.3,
        "Horror": -1.0,
        "Thriller": -0.4,
        "War": -0.4,
    },
    "friends": {"Comedy": 0.5, "Action": 0.4, "Horror": 0.3, "Adventure": 0.3, "Documentary": -0.3},
    "kids": {
        "Family": 1.0,
        "Animation": 0.8,
        "Adventure": 0.2,
        "Thriller": -0.8,
        "Crime": -0.8,
        "War": -0.8,
        "Drama": -0.3,
    },
}
"""Occasion -> canonical genre affinity (``kids`` additionally drops :data:`KIDS_EXCLUDED`)."""

KIDS_EXCLUDED = frozenset({"Horror"})


class RankingContext(BaseModel):
    """The situation a recommendation is for (also the API's ``context`` body: strict types)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    mood: Mood | None = None
    occasion: Occasion | None = None
    time_available: int | None = Field(None, gt=0, description="minutes")
    content_type: Literal["movie", "series"] | None = None
    device: str | None = None

    def is_empty(self) -> bool:
        """True when nothing in the context can change a ranking."""
        return (
            self.mood is None
            and self.occasion is None
            and self.time_available is None
            and (self.content_type is None)
        )


@dataclass(frozen=True)
class ContextEffect:
    """Per catalogue row: ``keep`` (hard filters) and ``score`` (soft fit, ``0`` = neutral)."""

    keep: np.ndarray
    score: np.ndarray
    informative: bool
    """False when no soft preference applies (the score is all zeros)."""


def genre_affinity(catalog: Catalog, table: Mapping[str, float]) -> np.ndarray:
    """``max(positive weights) + min(negative weights)`` of each title's canonical genres."""
    n = len(catalog)
    weights = np.asarray([table.get(g, 0.0) for g in catalog.genre_names], dtype=np.float64)
    if n == 0 or not weights.size:
        return np.zeros(n)
    m = catalog.genre_matrix
    pos = np.where(m, np.clip(weights, 0, None), 0.0).max(axis=1)
    neg = np.where(m, np.clip(weights, None, 0), 0.0).min(axis=1)
    return pos + neg


def keyword_affinity(catalog: Catalog, keywords: frozenset[str]) -> np.ndarray:
    hits = np.asarray([len(k & keywords) for k in catalog.keywords], dtype=np.float64)
    return np.minimum(hits * KEYWORD_STEP, KEYWORD_CAP)


def mood_affinity(catalog: Catalog, moods: list[str]) -> np.ndarray:
    """Mean over ``moods`` of genre + keyword affinity (zeros when no mood)."""
    if not moods:
        return np.zeros(len(catalog))
    parts = [
        catalog.derived(
            ("mood_affinity", m),
            lambda m=m: (
                genre_affinity(catalog, MOOD_GENRES[m])
                + keyword_affinity(catalog, MOOD_KEYWORDS[m])
            ),
        )
        for m in moods
    ]
    return np.mean(parts, axis=0)


def runtime_keep(catalog: Catalog, minutes: int) -> np.ndarray:
    """Movies must fit entirely, series need one episode to fit; unknown runtime is kept."""
    rt = catalog.runtime
    return ~(np.isfinite(rt) & (rt > minutes))


def context_effect(catalog: Catalog, context: RankingContext | None) -> ContextEffect:
    """Hard filter mask and soft score of every catalogue title for ``context``."""
    n = len(catalog)
    keep = np.ones(n, dtype=bool)
    score = np.zeros(n, dtype=np.float64)
    informative = False
    if context is None:
        return ContextEffect(keep, score, informative)
    if context.content_type is not None:
        keep &= catalog.types == context.content_type
    if context.time_available is not None:
        keep &= runtime_keep(catalog, context.time_available)
        unknown = ~np.isfinite(catalog.runtime)
        if unknown.any():
            score = score + np.where(unknown, UNKNOWN_RUNTIME_PENALTY, 0.0)
            informative = True
    if context.occasion == "kids":
        excluded = np.asarray([bool(g & KIDS_EXCLUDED) for g in catalog.genres], dtype=bool)
        keep &= ~excluded
    if context.mood is not None:
        score = score + mood_affinity(catalog, [context.mood])
        informative = True
    if context.occasion is not None and OCCASION_GENRES[context.occasion]:
        score = score + genre_affinity(catalog, OCCASION_GENRES[context.occasion])
        informative = True
    return ContextEffect(keep, score, informative)


def context_notes(catalog: Catalog, context: RankingContext | None, row: int) -> list[str]:
    """Short evidence of how one title fits the context (for explanations)."""
    if context is None:
        return []
    notes: list[str] = []
    genres = catalog.genres[row]
    if context.mood is not None:
        table = MOOD_GENRES[context.mood]
        good = sorted((g for g in genres if table.get(g, 0) > 0), key=lambda g: -table[g])
        kws = sorted(catalog.keywords[row] & MOOD_KEYWORDS[context.mood])
        if good or kws:
            notes.append(f"fits a {context.mood} mood ({', '.join(good[:2] + kws[:2])})")
    if context.occasion is not None:
        table = OCCASION_GENRES[context.occasion]
        good = sorted((g for g in genres if table.get(g, 0) > 0), key=lambda g: -table[g])
        if good:
            notes.append(f"good for {context.occasion} ({', '.join(good[:2])})")
    rt = catalog.runtime[row]
    if context.time_available is not None and np.isfinite(rt):
        kind = "episodes" if catalog.types[row] == "series" else "runtime"
        notes.append(f"{kind} {int(rt)} min fits your {context.time_available} min")
    return notes
