"""Watchlist operations over the running gateway, shared by the REST routes and GraphQL.

Callers authenticate first (a token for ``user`` with the right scope); these functions only act.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from serving.gateway import Gateway, availability_filter, canonical_content_id
from serving.guard import ApiError
from serving.userdata import effective_profile
from serving.watchlist.progress import continue_watching, user_events
from serving.watchlist.store import Alert, Providers, WatchlistFull


def providers_now(gateway: Gateway, user: str, title_id: str) -> tuple[str, Providers]:
    """The user's country and the providers (id -> name) offering the title there on the
    user's services, in the catalogue served now."""
    prefs = effective_profile(gateway.folder, user)
    catalog = gateway.state.catalog
    if title_id not in catalog:
        return prefs.country, {}
    offers = availability_filter(prefs).offers(catalog, title_id)
    return prefs.country, {o.provider_id: o.provider_name for o in offers}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def watchlist(gateway: Gateway, user: str) -> dict[str, Any]:
    catalog = gateway.state.catalog
    prefs = effective_profile(gateway.folder, user)
    avail = availability_filter(prefs)
    items = []
    for entry in gateway.watchlist.entries(user):
        known = entry.title_id in catalog
        offers = avail.offers(catalog, entry.title_id) if known else []
        items.append(
            {
                "content_id": entry.title_id,
                "title": catalog.name(entry.title_id) if known else None,
                "added_at": iso(entry.added_at),
                "available": bool(offers),
                "offers": [o.model_dump() for o in offers],
            }
        )
    return {"user": user, "country": prefs.country, "items": items}


def add(gateway: Gateway, user: str, content_id: str) -> dict[str, Any]:
    tid = canonical_content_id(gateway.state.catalog, content_id)
    country, providers = providers_now(gateway, user, tid)
    try:
        added = gateway.watchlist.add(user, tid, country, providers)
    except WatchlistFull as exc:
        raise ApiError(409, str(exc)) from exc
    return {"user": user, "content_id": tid, "added": added}


def remove(gateway: Gateway, user: str, content_id: str) -> dict[str, Any]:
    catalog = gateway.state.catalog
    try:
        tid = canonical_content_id(catalog, content_id)
    except ApiError:
        tid = content_id  # a title that left the catalogue can still be removed
    return {"user": user, "content_id": tid, "removed": gateway.watchlist.remove(user, tid)}


def check(gateway: Gateway, user: str) -> list[Alert]:
    """Compare the user's watchlist with the catalogue now; the new alerts."""
    return gateway.watchlist.check_availability(user, lambda u, t: providers_now(gateway, u, t))


def alert_view(gateway: Gateway, alert: Alert) -> dict[str, Any]:
    catalog = gateway.state.catalog
    return {
        **vars(alert),
        "created_at": iso(alert.created_at),
        "title": catalog.name(alert.title_id) if alert.title_id in catalog else None,
    }


def alerts(gateway: Gateway, user: str, since: int = 0, limit: int = 100) -> dict[str, Any]:
    check(gateway, user)
    found = gateway.watchlist.alerts(user, since, limit)
    return {
        "user": user,
        "alerts": [alert_view(gateway, a) for a in found],
        "last_id": found[-1].id if found else since,
    }


def progress(gateway: Gateway, user: str, limit: int = 20) -> dict[str, Any]:
    catalog = gateway.state.catalog
    events = user_events(gateway.settings.paths.lake, gateway.folder, user)
    kinds = {t: catalog.types[catalog.index[t]] for t in set(events["title_id"]) if t in catalog}
    names = {t: catalog.name(t) for t in kinds}
    items = continue_watching(events, kinds, names, limit)
    return {"user": user, "items": [i.model_dump() for i in items]}
