"""Gateway caching for /recommend: memoised answers and personal scores, and what invalidates them.

Runs the gateway on an in-memory state (small catalogue, counting collaborative stand-in), no
BentoML and no LanceDB: the point is which inputs reach the ranker again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.settings import Settings, load_settings
from models.ranking.catalog import Catalog
from models.ranking.intent import QueryIntent
from models.ranking.ranker import HybridRanker
from serving.auth import SCOPES, Principal
from serving.gateway import Gateway
from serving.guard import Guard
from serving.schemas import FeedbackRequest, PreferencesBody, RecommendRequest
from serving.state import ServingState, StateHolder, UserHistories

BASE = "http://testserver"
SECRET = b"gateway-cache-test-secret-0123456789abcdef"


class CountingScorer:
    """Collaborative stand-in: an item scores the weight of liked titles sharing its first letter."""

    def __init__(self) -> None:
        self.calls = 0

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        self.calls += 1
        w = weights or [1.0] * len(history)
        return np.asarray(
            [sum(x for h, x in zip(history, w, strict=True) if h[0] == i[0]) for i in item_ids],
            dtype=np.float64,
        )


def _catalog() -> Catalog:
    ids = ["a:1", "a:2", "a:3", "a:4", "b:1", "b:2", "b:3", "c:1"]
    titles = pl.DataFrame(
        {
            "title_id": ids,
            "title": [f"Title {i}" for i in ids],
            "type": ["movie"] * len(ids),
            "genres": [["Comedy"]] * 4 + [["Horror"]] * 3 + [["Family"]],
            "runtime": [90] * len(ids),
            "popularity": [float(i) for i in range(len(ids))],
        }
    )
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    avail = pl.DataFrame(
        {
            "title_id": ids,
            "country": ["US"] * len(ids),
            "provider_id": ["netflix", "hulu"] * (len(ids) // 2),
            "provider_name": ["Netflix", "Hulu"] * (len(ids) // 2),
            "monetization": ["FLATRATE"] * len(ids),
        }
    )
    return Catalog.build(titles, avail, ids, vectors)


class World:
    """Loader side of a :class:`StateHolder`: each load builds a new state (a new ranker)."""

    def __init__(self) -> None:
        self.scorers: list[CountingScorer] = []

    def load(self, _: Settings) -> ServingState:
        scorer = CountingScorer()
        self.scorers.append(scorer)
        catalog = _catalog()
        # the content index is only used by /search, which these tests do not call
        return ServingState(catalog, None, None, HybridRanker(catalog, scorer))  # type: ignore[arg-type]

    @staticmethod
    def histories(_: Settings) -> UserHistories:
        when = datetime(2026, 1, 1, tzinfo=UTC)
        events = pl.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "user_id": ["ann", "ann", "bob"],
                "title_id": ["a:1", "a:2", "b:1"],
                "weight": [1.0, 1.0, 1.0],
                "event_time": [when, when, when],
            }
        )
        return UserHistories.from_frame(events)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def gateway(tmp_path: Path, world: World) -> Gateway:
    var = tmp_path / "var"
    settings = load_settings(
        "configs/base.yaml",
        overrides={
            "paths": {
                "lake": str(var / "lake"),
                "lancedb": str(var / "lancedb"),
                "feedback": str(var / "feedback"),
                "models": str(var / "models"),
                "inbox": str(var / "inbox"),
            },
        },
    )
    holder = StateHolder(
        settings,
        loader=world.load,
        version_probe=lambda _: None,
        history_loader=world.histories,
    )
    holder.refresh(force=True)
    return Gateway(
        settings=settings,
        holder=holder,
        guard=Guard.from_settings(settings, SECRET),
        parse=lambda text: QueryIntent(text=text),
    )


def _me(user: str) -> Principal:
    return Principal(subject=user, scopes=frozenset(SCOPES))


def _recommend(gateway: Gateway, user: str, **body) -> list[str]:
    req = RecommendRequest(user=user, limit=3, **body)
    return [r.content_id for r in gateway.recommend(req, _me(user), BASE).results]


def test_repeated_request_is_answered_from_memory(gateway: Gateway, world: World) -> None:
    first = gateway.recommend(RecommendRequest(user="ann", limit=3), _me("ann"), BASE)
    again = gateway.recommend(RecommendRequest(user="ann", limit=3), _me("ann"), BASE)
    assert again == first
    assert gateway.recommend_cache.hits == 1
    assert world.scorers[0].calls == 1
    # another limit, context or base URL is another answer; the personal scores are shared
    _recommend(gateway, "ann", context={"mood": "funny"})
    gateway.recommend(RecommendRequest(user="ann", limit=3), _me("ann"), "http://other")
    assert gateway.recommend_cache.misses == 3
    assert world.scorers[0].calls == 1


def test_feedback_is_used_by_the_next_recommendation(gateway: Gateway, world: World) -> None:
    before = _recommend(gateway, "ann")
    assert before[0] in {"a:3", "a:4"}
    top = before[0]
    gateway.feedback(FeedbackRequest(user="ann", content_id=top, watched=True), _me("ann"))
    assert "ann" not in gateway.state.ranker.scores_cache
    after = _recommend(gateway, "ann")
    assert top not in after
    assert world.scorers[0].calls == 2


def test_preferences_change_the_next_recommendation(gateway: Gateway) -> None:
    assert {"a:3", "a:4"} <= set(_recommend(gateway, "ann"))
    gateway.set_preferences("ann", PreferencesBody(services=["hulu"]), _me("ann"))
    after = gateway.recommend(RecommendRequest(user="ann", limit=3), _me("ann"), BASE)
    assert after.services == ["hulu"]
    assert all(o.provider_id == "hulu" for r in after.results for o in r.offers)
    assert "a:3" not in {r.content_id for r in after.results}, "a:3 is on Netflix only"


def test_erasure_drops_cached_answers_and_scores(gateway: Gateway) -> None:
    _recommend(gateway, "ann")
    _recommend(gateway, "bob")
    assert "ann" in gateway.state.ranker.scores_cache
    gateway.erase("ann", _me("ann"))
    assert "ann" not in gateway.state.ranker.scores_cache
    assert "bob" in gateway.state.ranker.scores_cache
    assert gateway.recommend_cache.invalidate_tag("ann") == 0, "erasure already dropped them"
    assert gateway.recommend_cache.invalidate_tag("bob") == 1
    cold = gateway.recommend(RecommendRequest(user="ann", limit=3), _me("ann"), BASE)
    assert all(r.components.get("collaborative") is None for r in cold.results)


def test_swap_starts_from_empty_caches(gateway: Gateway, world: World) -> None:
    _recommend(gateway, "ann")
    old_ranker = gateway.state.ranker
    assert gateway.holder.refresh(force=True)
    assert gateway.state.ranker is not old_ranker
    assert len(gateway.recommend_cache) == 0
    _recommend(gateway, "ann")
    assert [s.calls for s in world.scorers] == [1, 1], "the new champion scores afresh"
