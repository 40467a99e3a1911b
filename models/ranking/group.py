"""Recommendations for a group watching together (friends, family, a date).

Each member is scored with the same :class:`~models.ranking.ranker.HybridRanker` over the same
candidates, so every member's scores are on the same [0, 1] scale; the group score aggregates them:

* ``average``: mean of the member scores (best total happiness);
* ``least_misery``: minimum member score (nobody is left with something they would hate).
  Ties are broken by the average, then by title id.

Candidates: titles that pass the group's ``availability`` filter (the country/services of the
evening) and the context, and that no member has watched (``exclude`` overrides this). When members
carry their own ``availability`` (their subscriptions), a title must be watchable on at least one
member's services (union: one account is enough to watch together) in that member's country.

Privacy of evidence: the group's answer goes to one ``viewer`` (the caller). Its explanation names
only the viewer's own titles ("because you watched ..."); about every other member it says only how
close the title is to their taste (a similarity, no title, not whether they watched it). Without a
``viewer`` no member's titles are named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.ranking.availability import AvailabilityFilter
from models.ranking.catalog import Catalog, Offer
from models.ranking.context import RankingContext, context_notes
from models.ranking.explain import Explanation, explain
from models.ranking.ranker import HybridRanker, clean_history

Strategy = Literal["average", "least_misery"]


class MemberProfile(BaseModel):
    """One member of the group: their history (optional weights) and their own services."""

    model_config = ConfigDict(extra="forbid")

    history: list[str] = Field(default_factory=list)
    weights: list[float] | None = None
    availability: AvailabilityFilter | None = None


class GroupRecommendation(BaseModel):
    title_id: str
    title: str
    score: float
    """Aggregated group score (strategy applied to ``member_scores``)."""
    member_scores: dict[str, float]
    explanation: Explanation
    """Evidence; ``members`` lists whose histories the title is close to (closest first)."""
    offers: list[Offer]


def aggregate(member_scores: np.ndarray, strategy: Strategy) -> np.ndarray:
    """Group score per candidate from a (members x candidates) matrix of member scores."""
    if member_scores.ndim != 2 or member_scores.shape[0] == 0:
        raise ValueError("member_scores must be a non-empty (members x candidates) matrix")
    if strategy == "average":
        return member_scores.mean(axis=0)
    if strategy == "least_misery":
        return member_scores.min(axis=0)
    raise ValueError(f"unknown group strategy {strategy!r}; use 'average' or 'least_misery'")


def group_rank(
    member_scores: np.ndarray, ids: list[str], strategy: Strategy, k: int
) -> list[tuple[int, float]]:
    """(position, group score) of the best ``k`` candidates, ties: average, then id."""
    group = aggregate(member_scores, strategy)
    mean = member_scores.mean(axis=0)
    order = sorted(range(len(ids)), key=lambda p: (-group[p], -mean[p], ids[p]))
    return [(p, float(group[p])) for p in order[:k]]


def recommend_group(
    ranker: HybridRanker,
    members: Mapping[str, MemberProfile],
    strategy: Strategy = "average",
    k: int = 10,
    context: RankingContext | None = None,
    availability: AvailabilityFilter | None = None,
    exclude: set[str] | None = None,
    viewer: str | None = None,
) -> list[GroupRecommendation]:
    """Top ``k`` titles for the group (see module docstring for candidates and strategies)."""
    if not members:
        raise ValueError("a group needs at least one member")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    cat = ranker.catalog
    if exclude is None:
        exclude = {t for m in members.values() for t in m.history}
    rows = ranker.candidate_rows(exclude, context, availability)
    own = [m.availability for m in members.values() if m.availability is not None]
    if own:
        union = np.zeros(len(cat), dtype=bool)
        for f in own:
            union |= f.mask(cat)
        rows = rows[union[rows]]
    names = list(members)
    matrix = np.zeros((len(names), len(rows)))
    for i, name in enumerate(names):
        m = members[name]
        scored = ranker.score_rows(rows, m.history, m.weights, context, cache_key=name)
        # a title without evidence for a member is neutral for them, not a veto
        matrix[i] = np.nan_to_num(scored.score, nan=0.5)
    ids = [str(t) for t in cat.ids[rows]]
    liked = {n: _liked(members[n]) for n in names}
    viewer_liked = liked.get(viewer, []) if viewer is not None else []
    reveal = {viewer} if viewer is not None else set()
    out = []
    for pos, score in group_rank(matrix, ids, strategy, k):
        tid = ids[pos]
        row = int(rows[pos])
        offers = _group_offers(cat, tid, availability, own)
        out.append(
            GroupRecommendation(
                title_id=tid,
                title=cat.names[row],
                score=round(score, 6),
                member_scores={n: round(float(matrix[i, pos]), 6) for i, n in enumerate(names)},
                explanation=explain(
                    cat,
                    viewer_liked,
                    tid,
                    members=liked,
                    reveal=reveal,
                    offers=offers,
                    context=context_notes(cat, context, row),
                ),
                offers=offers,
            )
        )
    return out


def _liked(member: MemberProfile) -> list[str]:
    items, w = clean_history(member.history, member.weights)
    return [h for h, x in zip(items, w, strict=True) if x > 0]


def _group_offers(
    cat: Catalog,
    title_id: str,
    availability: AvailabilityFilter | None,
    own: list[AvailabilityFilter],
) -> list[Offer]:
    filters = ([availability] if availability is not None else []) + own
    if not filters:
        return cat.offers_for(title_id, None)
    seen: dict[tuple, Offer] = {}
    for f in filters:
        for o in f.offers(cat, title_id):
            seen.setdefault((o.country, o.provider_id, o.monetization, o.presentation_type), o)
    return list(seen.values())
