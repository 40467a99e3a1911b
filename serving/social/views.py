"""Read-side social operations over the graph and the served histories.

A user's *activity* is their most recent positively weighted titles (what they watched or rated
well), shown only to viewers their ``activity`` privacy setting admits; the *feed* is the activity
of the viewer's friends and followed users, each filtered by the same rule. Refusals never say
whether the user exists (a stranger's private activity and an unknown id read the same).
"""

from __future__ import annotations

from collections.abc import Callable

from models.ranking.catalog import Catalog
from serving.social.schemas import ActivityItem, ActivityResponse, FeedEntry, FeedResponse
from serving.social.store import SocialError, SocialStore

ACTIVITY_ITEMS = 20
"""Titles shown per user in activity and feed."""

History = Callable[[str], tuple[list[str], list[float]]]


def recent_titles(history: History, catalog: Catalog, user: str, n: int) -> list[ActivityItem]:
    titles, weights = history(user)
    liked = [t for t, w in zip(titles, weights, strict=True) if w > 0]
    return [
        ActivityItem(content_id=t, title=catalog.name(t) if t in catalog else None)
        for t in reversed(liked[-n:])
    ]


def activity(
    store: SocialStore,
    history: History,
    catalog: Catalog,
    viewer: str,
    owner: str,
    n: int = ACTIVITY_ITEMS,
) -> ActivityResponse:
    if not store.can_see(viewer, owner, store.privacy(owner).activity):
        raise SocialError(403, f"the activity of {owner} is not visible to you")
    return ActivityResponse(user=owner, items=recent_titles(history, catalog, owner, n))


def friend_list(store: SocialStore, viewer: str, owner: str) -> list[str]:
    if not store.can_see(viewer, owner, store.privacy(owner).friend_list):
        raise SocialError(403, f"the friends of {owner} are not visible to you")
    friends = store.friends(owner)
    if viewer == owner:
        return friends
    return [f for f in friends if f == viewer or not store.is_blocked_either_way(viewer, f)]


def feed(
    store: SocialStore, history: History, catalog: Catalog, viewer: str, n: int = ACTIVITY_ITEMS
) -> FeedResponse:
    entries = []
    relations = {u: "following" for u in store.following(viewer)}
    relations.update({u: "friend" for u in store.friends(viewer)})
    for user in sorted(relations):
        if not store.can_see(viewer, user, store.privacy(user).activity):
            continue
        items = recent_titles(history, catalog, user, n)
        if items:
            entries.append(FeedEntry(user=user, relation=relations[user], items=items))
    return FeedResponse(entries=entries)


def friends_activity(
    store: SocialStore, history: History, catalog: Catalog, viewer: str, n: int = ACTIVITY_ITEMS
) -> dict[str, tuple[str, ...]]:
    """The viewer's friends whose activity the viewer may see, each with the titles it shows.

    The evidence source for "friends are watching": exactly what ``GET /social/users/{friend}/
    activity`` would show the viewer (same :meth:`SocialStore.can_see` rule, same ``n`` most recent
    liked titles), so an explanation never names more of a friend than their activity page does.
    Followed users and strangers are not friends; blocks and erasure remove the friendship. Friends
    with no visible titles are left out. Keys and titles are sorted (usable in a cache key).
    """
    out: dict[str, tuple[str, ...]] = {}
    for friend in store.friends(viewer):
        if not store.can_see(viewer, friend, store.privacy(friend).activity):
            continue
        titles = tuple(
            sorted(item.content_id for item in recent_titles(history, catalog, friend, n))
        )
        if titles:
            out[friend] = titles
    return out


def friends_who_watched(activity: dict[str, tuple[str, ...]], title_id: str) -> list[str]:
    """Friends (from :func:`friends_activity`) whose visible activity includes ``title_id``."""
    return [friend for friend, titles in activity.items() if title_id in titles]
