"""Explanations built from evidence, not templates: why this title, for this user, and where to watch.

Evidence gathered by :func:`explain`:

* ``nearest_watched``: the watched titles most similar to the candidate (cosine of content vectors,
  at most ``top_n``, only positive similarities);
* ``matched_genres`` / ``matched_keywords``: the candidate's genres and keywords that also occur in
  the history, with how many watched titles carry each;
* ``collaborative``: the collaborative model's weighted contribution to the final score (given by the
  ranker, ``None`` when no collaborative model scored it);
* ``members``: for group or friend evidence, each member's closest watched title, or that they
  watched it themselves;
* ``friends_watched``: the viewer's friends who watched the candidate, as far as each friend's
  privacy setting lets the viewer see their activity (the serving layer decides who; see
  :func:`serving.social.views.friends_activity`);
* ``offers`` and ``context`` notes.

The ``sentence`` is assembled only from these pieces, e.g. "Because you watched Inception (0.81
similar) and like Thriller; on Netflix in US".

Explaining several candidates for one history (a page of recommendations) reads the history once:
:func:`history_features` counts its genres and keywords and collects its vector rows, and
:func:`explain` takes them as ``features``; the evidence is the same as without them. The page's
nearest watched titles come from one matrix product (:func:`nearest_watched_rows`). BLAS may round
the last float32 bit of a cosine differently in a product with ten columns than with one, so a
``similarity`` can differ in its 4th decimal between ``/recommend`` and ``/explain`` of the same
title (2 of 1,000 users of the serving benchmark's world had such a digit change against the
former per-title products; no title or order changed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from pydantic import BaseModel, Field

from models.ranking.catalog import Catalog, Offer

MIN_SENTENCE_SIMILARITY = 0.3
"""Nearest titles below this cosine are listed as evidence but not quoted in the sentence."""
STRONG_COLLABORATIVE = 0.2
"""A collaborative contribution at least this large is mentioned in the sentence."""


class NearestTitle(BaseModel):
    title_id: str
    title: str
    similarity: float


class FeatureMatch(BaseModel):
    name: str
    count: int
    """How many watched titles share it."""


class MemberEvidence(BaseModel):
    member: str
    watched: bool | None
    """The member has this title in their history (``None``: not disclosed for this member)."""
    similarity: float | None
    """Cosine to the member's closest watched title (``None`` without content vectors)."""
    nearest_title_id: str | None = None
    nearest_title: str | None = None


class Explanation(BaseModel):
    nearest_watched: list[NearestTitle] = Field(default_factory=list)
    matched_genres: list[FeatureMatch] = Field(default_factory=list)
    matched_keywords: list[FeatureMatch] = Field(default_factory=list)
    collaborative: float | None = None
    members: list[MemberEvidence] = Field(default_factory=list)
    friends_watched: list[str] = Field(default_factory=list)
    """Friends whose visible activity includes this title ("2 friends watched this")."""
    offers: list[Offer] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)
    popular: bool = False
    """True when the popularity prior was the main reason (cold start)."""
    sentence: str = ""


@dataclass(frozen=True)
class HistoryFeatures:
    """What explanations need from one history, computed once for many candidates."""

    history: tuple[str, ...]
    """The distinct history titles in the catalogue, in history order."""
    rows: np.ndarray
    """Their catalogue rows (same order)."""
    genre_counts: Counter[str]
    """Canonical genre -> how many history titles carry it."""
    keyword_counts: Counter[str]
    """Keyword -> how many history titles carry it."""
    vector_rows: np.ndarray
    """The ``rows`` that have a content vector (same order)."""
    vectors: np.ndarray
    """(len(vector_rows), d) their unit vectors."""
    row_set: frozenset[int]
    """The ``rows`` as a set (membership tests per candidate)."""
    vector_positions: dict[int, int]
    """Catalogue row -> its position in ``vector_rows``."""


def history_features(catalog: Catalog, history: Sequence[str]) -> HistoryFeatures:
    """Genre/keyword counts and rows of the distinct catalogue titles in ``history``."""
    known = tuple(h for h in dict.fromkeys(history) if h in catalog.index)
    rows = catalog.indices(known)
    row_list = rows.tolist()
    genre_counts = Counter(chain.from_iterable(catalog.genres[r] for r in row_list))
    keyword_counts = Counter(chain.from_iterable(catalog.keywords[r] for r in row_list))
    vector_rows = rows[catalog.has_vector[rows]]
    return HistoryFeatures(
        known,
        rows,
        genre_counts,
        keyword_counts,
        vector_rows,
        catalog.vectors[vector_rows],
        frozenset(row_list),
        {r: i for i, r in enumerate(vector_rows.tolist())},
    )


def nearest_watched(
    catalog: Catalog,
    history: Sequence[str],
    title_id: str,
    top_n: int = 3,
    features: HistoryFeatures | None = None,
) -> list[NearestTitle]:
    """Watched titles most similar to ``title_id`` (positive cosine only, best first; the title
    itself is never its own neighbour).

    ``features`` (of the same ``history``) saves re-reading the history for each candidate.
    """
    row = catalog.index[title_id]
    feats = features if features is not None else history_features(catalog, history)
    return nearest_watched_rows(catalog, feats, [row], top_n)[0]


def nearest_watched_rows(
    catalog: Catalog, features: HistoryFeatures, rows: Sequence[int], top_n: int = 3
) -> list[list[NearestTitle]]:
    """:func:`nearest_watched` of several catalogue ``rows`` for one history, in one matrix
    product (a page of recommendations is explained with one call)."""
    out: list[list[NearestTitle]] = [[] for _ in rows]
    columns = [j for j, r in enumerate(rows) if catalog.has_vector[r]]
    if not columns or not len(features.vector_rows):
        return out
    candidates = [int(rows[j]) for j in columns]
    sims = features.vectors @ catalog.vectors[candidates].T  # (history titles, candidates)
    for col, row in enumerate(candidates):
        own = features.vector_positions.get(row)
        if own is not None:  # the title is in its own history: not its own neighbour
            sims[own, col] = -np.inf
    order = np.argsort(-sims, axis=0, kind="stable")[:top_n]
    best = np.take_along_axis(sims, order, axis=0).T.tolist()
    neighbours = features.vector_rows[order].T.tolist()
    ids, names = catalog.id_list, catalog.names
    for j, near, values in zip(columns, neighbours, best, strict=True):
        out[j] = [
            NearestTitle(title_id=ids[r], title=names[r], similarity=round(v, 4))
            for r, v in zip(near, values, strict=True)
            if v > 0
        ]
    return out


def matched_features(
    catalog: Catalog,
    history: Sequence[str],
    title_id: str,
    features: HistoryFeatures | None = None,
) -> tuple[list[FeatureMatch], list[FeatureMatch]]:
    """Genres and keywords of ``title_id`` found in the history (the title itself not counted),
    most frequent first. ``features`` (of the same ``history``) saves re-reading the history."""
    feats = features if features is not None else history_features(catalog, history)
    row = catalog.index[title_id]
    genre_counts = feats.genre_counts
    keyword_counts = feats.keyword_counts
    if row in feats.row_set:  # the title is in its own history: it is no evidence for itself
        genre_counts = genre_counts - Counter(catalog.genres[row])
        keyword_counts = keyword_counts - Counter(catalog.keywords[row])

    def matches(own: frozenset[str], counts: Counter[str]) -> list[FeatureMatch]:
        found = [(name, counts[name]) for name in own if counts[name] > 0]
        found.sort(key=lambda x: (-x[1], x[0]))
        return [FeatureMatch(name=n, count=c) for n, c in found]

    return matches(catalog.genres[row], genre_counts), matches(
        catalog.keywords[row], keyword_counts
    )


def member_evidence(
    catalog: Catalog,
    members: Mapping[str, Sequence[str]],
    title_id: str,
    reveal: Collection[str] | None = None,
) -> list[MemberEvidence]:
    """Per member: watched it, or how close it is to their closest watched title (closest first).

    Only members in ``reveal`` (all when ``None``) get ``watched`` and their nearest title; for the
    others only the similarity is given, so no title of theirs is disclosed.
    """
    out = []
    for member, history in members.items():
        near = nearest_watched(catalog, history, title_id, top_n=1)
        shown = reveal is None or member in reveal
        out.append(
            MemberEvidence(
                member=member,
                watched=(title_id in set(history)) if shown else None,
                similarity=near[0].similarity if near else None,
                nearest_title_id=near[0].title_id if near and shown else None,
                nearest_title=near[0].title if near and shown else None,
            )
        )
    out.sort(key=lambda m: (not m.watched, -(m.similarity or 0.0), m.member))
    return out


def _offer_phrase(offers: Sequence[Offer]) -> str:
    if not offers:
        return ""
    first = offers[0]
    if first.kind in ("rent", "buy"):
        price = ""
        if first.price is not None:
            price = f" ({first.price:.2f} {first.currency or ''}".rstrip() + ")"
        return f"{first.kind} on {first.provider_name}{price} in {first.country}"
    names = list(dict.fromkeys(o.provider_name for o in offers if o.kind == first.kind))
    free = " for free" if first.kind == "free" else ""
    return f"on {' and '.join(names[:2])}{free} in {first.country}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sentence(ex: Explanation) -> str:
    """One human sentence from the evidence in ``ex`` (only claims backed by a field)."""
    reasons: list[str] = []
    quoted = [n for n in ex.nearest_watched[:2] if n.similarity >= MIN_SENTENCE_SIMILARITY]
    if quoted:
        reasons.append(
            "you watched " + _join([f"{n.title} ({n.similarity:.2f} similar)" for n in quoted])
        )
    if ex.matched_genres:
        reasons.append("like " + _join([g.name for g in ex.matched_genres[:2]]))
    if ex.collaborative is not None and ex.collaborative >= STRONG_COLLABORATIVE:
        reasons.append("people with similar taste enjoyed it")
    watched = [m.member for m in ex.members if m.watched]
    close = [
        m.member
        for m in ex.members
        if not m.watched and m.similarity is not None and m.similarity >= MIN_SENTENCE_SIMILARITY
    ]
    pieces: list[tuple[str, bool]] = []  # (text, ours: may be capitalised; names are not)
    if reasons:
        pieces.append(("Because " + " and ".join(reasons), True))
    elif ex.popular:
        pieces.append(("Popular right now", True))
    if watched:
        pieces.append((_join(watched) + " liked it", False))
    if close:
        pieces.append(("close to what " + _join(close) + " watched", True))
    if ex.friends_watched:
        n = len(ex.friends_watched)
        shown = ex.friends_watched[:3]
        names = _join(shown) if n <= 3 else ", ".join(shown) + " and others"
        pieces.append((f"{n} friend{'s' if n > 1 else ''} watched this ({names})", True))
    if ex.context:
        pieces.append((ex.context[0], True))
    where = _offer_phrase(ex.offers)
    if where:
        pieces.append((where, True))
    if not pieces:
        return ""
    first, ours = pieces[0]
    if ours:
        pieces[0] = (first[:1].upper() + first[1:], ours)
    return "; ".join(p for p, _ in pieces)


def explain(
    catalog: Catalog,
    history: Sequence[str],
    title_id: str,
    collaborative: float | None = None,
    members: Mapping[str, Sequence[str]] | None = None,
    offers: Sequence[Offer] | None = None,
    context: Sequence[str] = (),
    popular: bool = False,
    top_n: int = 3,
    features: HistoryFeatures | None = None,
    reveal: Collection[str] | None = None,
    friends_watched: Sequence[str] = (),
    nearest: list[NearestTitle] | None = None,
) -> Explanation:
    """Evidence for recommending ``title_id`` to someone who watched ``history``.

    ``offers`` defaults to every offer of the title (pass the availability filter's offers to
    restrict them to a country/services); ``context`` are notes from
    :func:`models.ranking.context.context_notes`; ``features`` are :func:`history_features` of
    ``history`` when explaining many titles for it; ``reveal`` limits which ``members`` may have
    their titles named (see :func:`member_evidence`); ``friends_watched`` are friends already
    vetted by the caller as allowed to be named for this title; ``nearest`` is this title's
    :func:`nearest_watched_rows` entry when a page was computed at once. Raises KeyError for a title
    not in the catalogue.
    """
    if title_id not in catalog.index:
        raise KeyError(f"title {title_id!r} is not in the catalogue")
    feats = features if features is not None else history_features(catalog, history)
    genres, keywords = matched_features(catalog, history, title_id, feats)
    ex = Explanation(
        nearest_watched=(
            nearest_watched(catalog, history, title_id, top_n, feats)
            if nearest is None
            else nearest
        ),
        matched_genres=genres,
        matched_keywords=keywords[:10],
        collaborative=None if collaborative is None else round(float(collaborative), 4),
        members=member_evidence(catalog, members, title_id, reveal) if members else [],
        friends_watched=list(friends_watched),
        offers=list(catalog.offers_for(title_id, None) if offers is None else offers),
        context=list(context),
        popular=popular,
    )
    ex.sentence = sentence(ex)
    return ex


def with_friends(ex: Explanation, friends_watched: Sequence[str]) -> Explanation:
    """A copy of ``ex`` adding ``friends_watched`` evidence, its sentence rebuilt (``ex`` unchanged)."""
    if not friends_watched:
        return ex
    out = ex.model_copy(update={"friends_watched": list(friends_watched)})
    out.sentence = sentence(out)
    return out
