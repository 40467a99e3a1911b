"""Request and response bodies of the social routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import UserId
from serving.social.store import Visibility


class PrivacyBody(BaseModel):
    """Who may see the user's activity and friend list (both private by default)."""

    model_config = ConfigDict(extra="forbid")

    activity: Visibility = "private"
    friend_list: Visibility = "private"


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invitee: UserId
    ttl_hours: float | None = Field(None, gt=0, le=24 * 30)
    """How long an accepted invitation lets the inviter group with the invitee (default 48 h)."""


class ActivityItem(BaseModel):
    content_id: str
    title: str | None


class ActivityResponse(BaseModel):
    user: str
    items: list[ActivityItem]
    """Most recent first; only titles the user watched or rated positively."""


class FeedEntry(BaseModel):
    user: str
    relation: str
    """``friend`` or ``following``."""
    items: list[ActivityItem]


class FeedResponse(BaseModel):
    entries: list[FeedEntry]
