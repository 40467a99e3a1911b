"""Events computed when the service swaps in a new catalogue or model.

* **Availability**: for each connected user, the titles they subscribed to plus their watchlist:
  a provider of the user's services in the user's country that joined or left a title is one
  ``availability`` event. Watchlist titles go through the persistent watchlist store (so the same
  change is also in ``/users/{u}/watchlist/alerts``); other subscribed titles are compared with an
  in-memory snapshot taken when they were subscribed.
* **Top 10**: for each connected user the top-10 recommendation ids are remembered; after a swap
  that changes the model version, a changed list is one ``top10`` event with what entered and left.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from serving.auth import READ_RECOMMENDATIONS, Principal
from serving.gateway import Gateway
from serving.guard import ApiError
from serving.realtime.hub import Hub
from serving.schemas import RecommendRequest
from serving.state import ServingState
from serving.watchlist import service as watchlist_service
from serving.watchlist.store import Providers

log = logging.getLogger(__name__)
TOP_K = 10


class Watcher:
    """Keeps the snapshots and turns a swap into events on the hub."""

    def __init__(self, gateway: Gateway, hub: Hub) -> None:
        self.gateway = gateway
        self.hub = hub
        self._lock = threading.Lock()
        self._providers: dict[tuple[str, str], Providers] = {}
        self._country: dict[str, str] = {}
        self._top: dict[str, tuple[str | None, list[str]]] = {}
        gateway.holder.on_swap(self.on_swap)

    def top10(self, user: str) -> tuple[str | None, list[str]]:
        principal = Principal(user, frozenset({READ_RECOMMENDATIONS}))
        res = self.gateway.recommend(RecommendRequest(user=user, limit=TOP_K), principal, "")
        return res.model_version, [r.content_id for r in res.results]

    def watch(self, user: str, titles: set[str]) -> None:
        """Baseline for newly subscribed titles and the user's current top 10."""
        with self._lock:
            for tid in titles:
                country, providers = watchlist_service.providers_now(self.gateway, user, tid)
                self._providers[(user, tid)] = providers
                self._country[user] = country
            if user not in self._top and self.gateway.holder.ready:
                self._top[user] = self.top10(user)

    def forget(self, user: str) -> None:
        with self._lock:
            self._top.pop(user, None)
            self._country.pop(user, None)
            for key in [k for k in self._providers if k[0] == user]:
                del self._providers[key]

    def on_swap(self, _: ServingState) -> None:
        for user, titles in self.hub.subscriptions().items():
            try:
                self._availability(user, titles)
                self._top_changed(user)
            except ApiError as exc:  # e.g. the user's stored profile is unreadable
                log.warning("realtime update skipped", extra={"status": exc.status})

    def _availability(self, user: str, titles: set[str]) -> None:
        listed = {e.title_id for e in self.gateway.watchlist.entries(user)}
        for alert in watchlist_service.check(self.gateway, user):
            self.hub.publish(
                user,
                {"type": "availability", **watchlist_service.alert_view(self.gateway, alert)},
            )
        for tid in sorted(titles - listed):
            country, now = watchlist_service.providers_now(self.gateway, user, tid)
            with self._lock:
                before = self._providers.get((user, tid), {})
                if self._country.get(user) != country:
                    before = now  # the user moved: new baseline
                self._providers[(user, tid)] = now
                self._country[user] = country
            for change, ids in (
                ("joined", set(now) - set(before)),
                ("left", set(before) - set(now)),
            ):
                for pid in sorted(ids):
                    self.hub.publish(
                        user,
                        _availability_event(
                            self.gateway, tid, change, pid, (now | before).get(pid), country
                        ),
                    )

    def _top_changed(self, user: str) -> None:
        version, ids = self.top10(user)
        with self._lock:
            old_version, old_ids = self._top.get(user, (version, ids))
            self._top[user] = (version, ids)
        if ids != old_ids:
            self.hub.publish(
                user,
                {
                    "type": "top10",
                    "model_version": version,
                    "previous_model_version": old_version,
                    "results": ids,
                    "entered": [t for t in ids if t not in old_ids],
                    "left": [t for t in old_ids if t not in ids],
                },
            )


def _availability_event(
    gateway: Gateway, tid: str, change: str, pid: str, name: str | None, country: str
) -> dict[str, Any]:
    catalog = gateway.state.catalog
    return {
        "type": "availability",
        "title_id": tid,
        "title": catalog.name(tid) if tid in catalog else None,
        "change": change,
        "provider_id": pid,
        "provider_name": name,
        "country": country,
    }
