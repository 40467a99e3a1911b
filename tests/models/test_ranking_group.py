"""Group recommendations on a hand-computed two-member example."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog
from models.ranking.group import MemberProfile, aggregate, group_rank, recommend_group
from models.ranking.ranker import HybridRanker, HybridWeights

CONTENT_ONLY = HybridWeights(collaborative=0, content=1, popularity=0, context=0)
B = np.array([0.65, 0.65, np.sqrt(1 - 2 * 0.65**2)])


def _ranker() -> HybridRanker:
    """Ann watched ``ha`` (e0), Ben watched ``hb`` (e1); candidates p, b, r, q.

    Cosines (Ann, Ben): p (0.894, 0.447), b (0.65, 0.65), r (0, 1), q (0, 0). Min-max over the
    candidates: Ann p=1, b=0.7267, r=0, q=0; Ben p=0.4472, b=0.65, r=1, q=0.
    Average: p 0.7236 > b 0.6884 > r 0.5. Least misery: b 0.65 > p 0.4472 > r = q = 0.
    """
    ids = ["ha", "hb", "p", "b", "r", "q"]
    vectors = np.array(
        [[1, 0, 0], [0, 1, 0], [2 / np.sqrt(5), 1 / np.sqrt(5), 0], B, [0, 1, 0], [0, 0, 1]],
        dtype=np.float32,
    )
    titles = pl.DataFrame(
        {"title_id": ids, "title": [i.upper() for i in ids], "popularity": [1.0] * 6}
    )
    avail = pl.DataFrame(
        {
            "title_id": ["p", "b", "r"],
            "country": ["US"] * 3,
            "provider_id": ["netflix", "hulu", "netflix"],
            "provider_name": ["Netflix", "Hulu", "Netflix"],
            "monetization": ["FLATRATE"] * 3,
        }
    )
    return HybridRanker(Catalog.build(titles, avail, ids, vectors), None, CONTENT_ONLY)


MEMBERS = {"ann": MemberProfile(history=["ha"]), "ben": MemberProfile(history=["hb"])}


def test_aggregate_strategies_on_a_matrix() -> None:
    scores = np.array([[1.0, 0.5, 0.3], [0.2, 0.5, 0.4]])
    assert aggregate(scores, "average").tolist() == pytest.approx([0.6, 0.5, 0.35])
    assert aggregate(scores, "least_misery").tolist() == pytest.approx([0.2, 0.5, 0.3])
    assert group_rank(scores, ["x", "y", "z"], "average", 1)[0][0] == 0
    assert group_rank(scores, ["x", "y", "z"], "least_misery", 1)[0][0] == 1
    with pytest.raises(ValueError, match="strategy"):
        aggregate(scores, "median")  # type: ignore[arg-type]


def test_average_vs_least_misery_hand_computed() -> None:
    ranker = _ranker()
    avg = recommend_group(ranker, MEMBERS, "average", k=3)
    assert [r.title_id for r in avg] == ["p", "b", "r"]
    assert avg[0].score == pytest.approx((1.0 + 0.4472136) / 2, abs=1e-5)
    assert avg[0].member_scores == pytest.approx({"ann": 1.0, "ben": 0.4472136}, abs=1e-5)
    misery = recommend_group(ranker, MEMBERS, "least_misery", k=2)
    assert [r.title_id for r in misery] == ["b", "p"]
    assert misery[0].score == pytest.approx(0.65, abs=1e-5)
    # nobody gets a title they already watched
    assert not {"ha", "hb"} & {r.title_id for r in avg}


def test_group_explanation_names_only_the_viewers_titles() -> None:
    rec = recommend_group(_ranker(), MEMBERS, "average", k=1, viewer="ann")[0]
    members = rec.explanation.members
    assert [m.member for m in members] == ["ann", "ben"]
    assert members[0].nearest_title_id == "ha"
    assert members[0].similarity == pytest.approx(0.8944, abs=1e-4)
    # ben's taste is summarised by a similarity only: no title of his, not even whether he saw it
    assert members[1].similarity == pytest.approx(0.4472, abs=1e-4)  # cosine(ben, p)
    assert (members[1].nearest_title_id, members[1].nearest_title, members[1].watched) == (
        None,
        None,
        None,
    )
    assert [n.title_id for n in rec.explanation.nearest_watched] == ["ha"]
    assert "close to what ann and ben watched" in rec.explanation.sentence
    assert "hb" not in rec.model_dump_json()


def test_group_explanation_without_viewer_names_no_titles() -> None:
    rec = recommend_group(_ranker(), MEMBERS, "average", k=1)[0]
    assert rec.explanation.nearest_watched == []
    assert all(m.nearest_title_id is None for m in rec.explanation.members)


def test_group_availability_is_the_union_of_member_services() -> None:
    members = {
        "ann": MemberProfile(
            history=["ha"], availability=AvailabilityFilter(country="US", services=["hulu"])
        ),
        "ben": MemberProfile(
            history=["hb"], availability=AvailabilityFilter(country="US", services=["netflix"])
        ),
    }
    ids = {r.title_id for r in recommend_group(_ranker(), members, "average", k=10)}
    assert ids == {"p", "b", "r"}  # q has no offer; hulu (b) or netflix (p, r) is enough
    only_hulu = {"ann": members["ann"], "ben": MemberProfile(history=["hb"])}
    assert {r.title_id for r in recommend_group(_ranker(), only_hulu, k=10)} == {"b"}
    with pytest.raises(ValueError, match="at least one member"):
        recommend_group(_ranker(), {}, k=3)
