"""Explanations carry evidence: nearest watched titles, shared genres/keywords, members, offers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.ranking.catalog import Catalog
from models.ranking.explain import explain, with_friends


def _catalog() -> Catalog:
    titles = pl.DataFrame(
        {
            "title_id": ["inc", "pre", "mat", "toy", "cand"],
            "title": ["Inception", "The Prestige", "The Matrix", "Toy Story", "Shutter Island"],
            "genres": [
                ["Thriller", "Science Fiction"],
                ["Thriller", "Drama"],
                ["Science Fiction", "Action"],
                ["Animation"],
                ["Thriller", "Drama", "Mystery"],
            ],
            "keywords": [
                ["dream", "twist"],
                ["twist", "magic"],
                ["simulation"],
                ["toy"],
                ["twist"],
            ],
        }
    )
    v = np.array(
        [[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]],
        dtype=np.float32,
    )
    avail = pl.DataFrame(
        {
            "title_id": ["cand", "cand"],
            "country": ["US", "GB"],
            "provider_id": ["netflix", "itunes"],
            "provider_name": ["Netflix", "Apple TV"],
            "monetization": ["FLATRATE", "RENT"],
            "price": [None, 3.49],
            "currency": [None, "GBP"],
        }
    )
    return Catalog.build(titles, avail, ["inc", "pre", "mat", "toy", "cand"], v)


def test_nearest_watched_titles_with_their_cosine() -> None:
    ex = explain(_catalog(), ["inc", "pre", "mat", "toy"], "cand")
    assert [(n.title, n.similarity) for n in ex.nearest_watched] == [
        ("Inception", pytest.approx(0.8)),
        ("The Prestige", pytest.approx(0.6)),
    ]  # The Matrix (0.0) and Toy Story (0.0) are not evidence


def test_matched_genres_and_keywords_with_counts() -> None:
    ex = explain(_catalog(), ["inc", "pre", "mat", "toy"], "cand")
    assert [(g.name, g.count) for g in ex.matched_genres] == [("Thriller", 2), ("Drama", 1)]
    assert [(k.name, k.count) for k in ex.matched_keywords] == [("twist", 2)]


def test_sentence_is_built_from_the_evidence() -> None:
    cat = _catalog()
    ex = explain(cat, ["inc", "toy"], "cand", offers=cat.offers_for("cand", "US"))
    assert ex.sentence == (
        "Because you watched Inception (0.80 similar) and like Thriller; on Netflix in US"
    )
    rent = explain(cat, ["inc"], "cand", offers=cat.offers_for("cand", "GB"), collaborative=0.4)
    assert "people with similar taste enjoyed it" in rent.sentence
    assert rent.sentence.endswith("rent on Apple TV (3.49 GBP) in GB")
    assert rent.collaborative == pytest.approx(0.4)


def test_members_who_watched_or_are_close() -> None:
    ex = explain(_catalog(), [], "inc", members={"ann": ["inc"], "ben": ["pre"], "cy": ["toy"]})
    by_member = {m.member: m for m in ex.members}
    assert by_member["ann"].watched
    assert by_member["ben"].similarity == pytest.approx(0.96)
    assert by_member["cy"].similarity is None  # no positive similarity: no claim
    assert "ann liked it" in ex.sentence and "close to what ben watched" in ex.sentence


def test_unknown_title_raises() -> None:
    with pytest.raises(KeyError, match="not in the catalogue"):
        explain(_catalog(), ["inc"], "nope")


def test_friends_watched_evidence_and_sentence() -> None:
    cat = _catalog()
    base = explain(cat, ["inc"], "cand")
    assert base.friends_watched == [] and "friend" not in base.sentence
    one = with_friends(base, ["bob"])
    assert one.friends_watched == ["bob"] and "1 friend watched this (bob)" in one.sentence
    assert base.friends_watched == [] and "friend" not in base.sentence  # the input is unchanged
    assert with_friends(base, []) is base
    many = explain(cat, ["inc"], "cand", friends_watched=["a", "b", "c", "d"])
    assert "4 friends watched this (a, b, c and others)" in many.sentence
    assert many.sentence.startswith("Because you watched Inception")
