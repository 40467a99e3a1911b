"""Pydantic request and response bodies of the HTTP API (the OpenAPI schema is generated from them).

User ids are 1-128 characters of ``[A-Za-z0-9._:@-]``; content ids are lake ``title_id`` strings
(``movie:27205``, ``tv:1399``, ...). Every request model forbids unknown fields so a typo is a 400
with a reason instead of a silently ignored filter.

The JSON schemas of these models are the API contract (``/docs.json``, see :mod:`serving.openapi`),
so every rule a validator enforces is stated in the schema too: "members must be distinct" is
``uniqueItems``, "feedback needs a signal" is an ``anyOf``. Examples use the README's users.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.ranking.catalog import Offer
from models.ranking.context import RankingContext
from models.ranking.explain import Explanation
from models.ranking.intent import QueryIntent

UserId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
ContentId = Annotated[str, Field(min_length=3, max_length=256, pattern=r"^[a-z0-9_]+[:-][^\s/]+$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
ProviderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
Monetization = Literal["subscription", "free", "rent", "buy"]
ContentType = Literal["movie", "series"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    """A request model's config: unknown fields forbidden, strict types (``false`` is not a
    number, ``"5"`` not an integer: what the schema says), ``examples`` for the documentation."""
    return ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": list(examples)})


class SearchFiltersBody(_Request):
    """Hard filters; they are combined with what the query itself asks for."""

    genres: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    year_min: int | None = Field(None, ge=1870, le=2100)
    year_max: int | None = Field(None, ge=1870, le=2100)
    max_runtime: int | None = Field(None, gt=0, le=1000, description="minutes")
    min_rating: float | None = Field(None, ge=0, le=10, description="TMDB vote average 0-10")
    services: list[ProviderId] = Field(default_factory=list, max_length=30)
    country: Country | None = None
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    content_type: ContentType | None = None


class SearchRequest(_Request):
    model_config = _examples(
        {"query": "thriller movies like Inception", "limit": 5},
        {"query": "feel-good family movie", "filters": {"country": "US", "services": ["netflix"]}},
    )

    query: str = Field(min_length=1, max_length=500)
    filters: SearchFiltersBody = Field(default_factory=SearchFiltersBody)
    user: UserId | None = None
    """Personalise with this user's history (needs a token for that user)."""
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512)
    """``next_cursor`` of the previous page."""


ContextBody = RankingContext
"""The viewing situation (mood, occasion, time_available minutes, device, content_type): the
ranking's own model, so the API and the ranker cannot drift apart."""


class RecommendRequest(_Request):
    model_config = _examples(
        {"user": "thriller-fan", "context": {"mood": "tense", "time_available": 120}, "limit": 5}
    )

    user: UserId
    context: ContextBody = Field(default_factory=ContextBody)
    limit: int = Field(10, ge=1, le=100)


class GroupRequest(_Request):
    model_config = _examples(
        {"members": ["thriller-fan", "scifi-fan"], "strategy": "least_misery", "limit": 5}
    )

    members: list[UserId] = Field(
        min_length=2, max_length=12, json_schema_extra={"uniqueItems": True}
    )
    """Distinct user ids; the caller must be one of them."""
    strategy: Literal["average", "least_misery"] = "average"
    context: ContextBody = Field(default_factory=ContextBody)
    limit: int = Field(10, ge=1, le=100)

    @field_validator("members")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("members must be distinct")
        return value


class ExplainRequest(_Request):
    model_config = _examples({"user": "thriller-fan", "content_id": "movie:27205"})

    user: UserId
    content_id: ContentId


_FEEDBACK_SIGNAL = [
    {"required": ["rating"], "properties": {"rating": {"type": "number"}}},
    {"required": ["completion"], "properties": {"completion": {"type": "number"}}},
    {"required": ["watched"], "properties": {"watched": {"const": True}}},
]
"""JSON Schema form of ``FeedbackRequest._has_signal``: a rating, a completion or watched=true."""


class FeedbackRequest(_Request):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": _FEEDBACK_SIGNAL,
            "examples": [
                {"user": "thriller-fan", "content_id": "movie:27205", "rating": 5, "watched": True}
            ],
        },
    )

    user: UserId
    content_id: ContentId
    rating: float | None = Field(None, ge=0.5, le=5.0, description="0.5-5 stars")
    watched: bool = False
    completion: float | None = Field(None, ge=0.0, le=1.0, description="share watched, 0-1")
    context: ContextBody = Field(default_factory=ContextBody)

    @model_validator(mode="after")
    def _has_signal(self) -> FeedbackRequest:
        if self.rating is None and self.completion is None and not self.watched:
            raise ValueError("feedback needs a rating, a completion or watched=true")
        return self


class PreferencesBody(_Request):
    """A user's streaming setup; recommendations are filtered to it."""

    model_config = _examples({"services": ["netflix", "max"], "country": "US"})

    services: list[ProviderId] = Field(default_factory=list, max_length=30)
    country: Country = "US"
    monetization: list[Monetization] = Field(
        default_factory=lambda: ["subscription", "free"], min_length=1
    )
    """Offer kinds the user accepts (default: included in a subscription, or free)."""


# ---- responses --------------------------------------------------------------------------------


class ResultItem(BaseModel):
    content_id: str
    title: str | None = None
    type: str | None = None
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    runtime: int | None = None
    url: str
    """The title's machine view (schema.org JSON-LD)."""
    score: float
    """Ranking score in [0, 1] (search: relevance; recommend: personal score; group: group score)."""
    similarity: float | None = None
    """Search only: cosine between the query and the title (None without a query vector)."""
    components: dict[str, float] = Field(default_factory=dict)
    """Weighted contribution of each ranking signal (they sum to ``score``)."""
    explanation: str | None = None
    """One sentence built from ``evidence``."""
    evidence: Explanation | None = None
    offers: list[Offer] = Field(default_factory=list)
    """Where to watch, with deep links (in the requested or the user's country)."""
    member_scores: dict[str, float] | None = None
    """Group recommendations only: each member's score for this title."""


class Attribution(BaseModel):
    metadata: str
    availability: str


class SearchResponse(BaseModel):
    results: list[ResultItem]
    intent: QueryIntent
    """What the query was understood to ask for."""
    applied_filters: dict[str, Any]
    """The hard filters applied: the request's ``filters``, else the intent's values."""
    query_source: str
    """What the query vector came from (text, like_titles, genres_moods, none)."""
    resolved_like_titles: dict[str, str] = Field(default_factory=dict)
    """"like X" titles found in the catalogue (name -> content id)."""
    total: int
    next_cursor: str | None = None
    attribution: Attribution


class RecommendResponse(BaseModel):
    user: str
    results: list[ResultItem]
    model_version: str | None
    """Champion model version, or None when serving content + popularity only."""
    country: str
    services: list[str]
    attribution: Attribution


class GroupResponse(BaseModel):
    members: list[str]
    strategy: str
    results: list[ResultItem]
    model_version: str | None
    attribution: Attribution


class ExplainResponse(BaseModel):
    user: str
    content_id: str
    title: str
    score: float | None
    """The title's hybrid score for this user (None when nothing scores it)."""
    components: dict[str, float]
    explanation: str
    evidence: Explanation
    model_version: str | None


class FeedbackResponse(BaseModel):
    event_id: str
    accepted: bool = True
    durable: bool = True
    """The record was fsync-ed to the feedback log before this answer."""


class AvailabilityResponse(BaseModel):
    content_id: str
    country: str | None
    """The requested country, or None for every country."""
    offers: list[Offer]
    attribution: dict[str, str]


class PreferencesResponse(BaseModel):
    user: str
    preferences: PreferencesBody


class ErasureResponse(BaseModel):
    user: str
    erased: bool
    profile_deleted: bool
    feedback_lines_removed: int
    lake_events: str
    """What happens to the watch history (deleted by the next nightly run)."""


class ValidationIssue(BaseModel):
    """One rule a request broke (pydantic's error, without the offending input)."""

    type: str
    loc: list[str | int]
    """Where: ``["body", "limit"]``, ``["query", "country"]``, ``["members"]``, ..."""
    msg: str
    url: str | None = None
    """pydantic's page about this kind of error, when known."""


# Not dead code: serving.openapi generates the ErrorBody component of /docs.json from this model
# (every documented error response references it); its docstring is that schema's description.
class ErrorBody(BaseModel):
    """Every answer other than 2xx: ``{"error": reason}``; validation errors add ``detail``."""

    error: str
    """Short, human-readable reason."""
    detail: list[ValidationIssue] | None = None
    """Validation errors (400 for POST bodies, 422 for path/query/PUT bodies): each broken rule."""
