"""The one contract every registered recommender must pass, on a fixture with a known answer.

Checkerboard (as in ``implicit``'s own tests): users ``a00..a09`` like the left items
``l00..l09``, users ``b00..b09`` the right items ``r00..r09``; each user has seen every item of
their half except one (user n holds out item n). With seen items excluded, the held-out item is the
only unseen item of the user's own half, so a collaborative model must rank it near the top.
Popularity is the exception (every item is equally popular): it must still return valid frames.

Models are built through ``models.registry`` only. Small training budgets are passed when the
constructor accepts those parameter names (the federated and hybrid models are written by others).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.schemas import EMBEDDING_DIM
from models.base import RECS_SCHEMA, SIMILAR_SCHEMA, NotFittedError, UnknownUserError
from models.registry import MODELS, create, load_model, model_class

N = 10
LEFT = [f"l{i:02d}" for i in range(N)]
RIGHT = [f"r{i:02d}" for i in range(N)]
USERS_A = [f"a{i:02d}" for i in range(N)]
USERS_B = [f"b{i:02d}" for i in range(N)]
HELD_OUT = {
    **{u: LEFT[n] for n, u in enumerate(USERS_A)},
    **{u: RIGHT[n] for n, u in enumerate(USERS_B)},
}
RANK_BOUND = 2
"""The held-out item must be at rank <= 2 (rank 1 is expected; one slot of slack for noise)."""

SMALL_BUDGET = {
    "als": {"factors": 8, "regularization": 0.1, "iterations": 15},
    "bpr": {"factors": 8, "learning_rate": 0.05, "iterations": 200},
    "federated": {"rounds": 5, "local_epochs": 5, "factors": 8, "show_progress": False},
    # The contract checks learning ability, not privacy: at ε = 1 the DP noise drowns a 20-user
    # fixture (privacy/utility is measured by benchmarks/quality.py --privacy-utility).
    "federated-dp": {
        "rounds": 10,
        "local_epochs": 5,
        "target_epsilon": 100.0,
        "show_progress": False,
    },
    "hybrid": {"factors": 8, "iterations": 15},
}
"""Per-model speed-ups; only keys the constructor accepts are passed."""


def _interactions() -> pl.DataFrame:
    rows = [
        (user, item)
        for users, items in ((USERS_A, LEFT), (USERS_B, RIGHT))
        for user in users
        for item in items
        if item != HELD_OUT[user]
    ]
    return pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row").with_columns(
        pl.lit(1.0).alias("weight")
    )


def _item_features() -> pl.DataFrame:
    """Content vectors that agree with the checkerboard (left items near e0, right near e1)."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 0.05, size=(2 * N, EMBEDDING_DIM)).astype(np.float32)
    vectors[:N, 0] += 1.0
    vectors[N:, 1] += 1.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return pl.DataFrame({"item_id": LEFT + RIGHT, "vector": vectors.tolist()})


def _accepted(name: str, params: dict) -> dict:
    signature = inspect.signature(model_class(name).__init__)
    return {k: v for k, v in params.items() if k in signature.parameters}


SLOW = {"federated", "federated-dp"}
"""Models whose fit takes more than a few seconds even on the fixture (Flower simulation)."""


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(MODELS)],
)
def test_recommender_contract(name: str, tmp_path: Path) -> None:
    interactions = _interactions()
    params = _accepted(name, SMALL_BUDGET.get(name, {}))

    with pytest.raises(NotFittedError):
        create(name, seed=0, **params).recommend([USERS_A[0]], k=3)

    model = create(name, seed=0, **params).fit(interactions, item_features=_item_features())
    users = USERS_A + USERS_B
    recs = model.recommend(users, k=5)

    # Output schema, k respected, ranks 1..n with non-increasing scores, nothing seen.
    assert dict(recs.schema) == RECS_SCHEMA
    per_user = recs.group_by("user_id").agg(pl.len().alias("n"), pl.col("rank"), pl.col("score"))
    assert set(per_user["user_id"]) == set(users)
    assert per_user["n"].max() <= 5
    for row in per_user.iter_rows(named=True):
        order = np.argsort(row["rank"])
        assert sorted(row["rank"]) == list(range(1, row["n"] + 1))
        assert np.all(np.diff(np.asarray(row["score"])[order]) <= 1e-9)
    seen = recs.join(interactions, on=["user_id", "item_id"], how="semi")
    assert seen.height == 0, f"{name} recommended seen items: {seen}"
    assert model.recommend(users[:3], k=2).group_by("user_id").len()["len"].max() <= 2

    # Known answer: the held-out item of the user's own half comes first.
    if name != "popularity":
        held = recs.filter(
            pl.col("item_id") == pl.col("user_id").replace_strict(HELD_OUT, return_dtype=pl.String)
        )
        assert held.height == len(users), f"{name} missed held-out items: {held}"
        assert held["rank"].max() <= RANK_BOUND, held.sort("rank", descending=True).head()

    # Scores: known items are finite, unknown items are nan.
    scores = model.score(USERS_A[0], [*LEFT, *RIGHT, "no-such-item"])
    assert np.all(np.isfinite(scores[:-1])) and np.isnan(scores[-1])

    # Fold-in: a new user who liked three left items prefers the remaining left items.
    history = LEFT[:3]
    folded = model.score_history(history, None, [*LEFT[3:], *RIGHT])
    assert np.all(np.isfinite(folded))
    if name != "popularity":
        assert folded[: N - 3].mean() > folded[N - 3 :].mean()
        assert int(np.argmax(folded)) < N - 3

    # Similar items: schema, item itself excluded, its nearest neighbour is in its own half.
    similar = model.similar_items(LEFT[0], k=4)
    assert dict(similar.schema) == SIMILAR_SCHEMA
    assert 0 < similar.height <= 4
    assert LEFT[0] not in similar["similar_item_id"].to_list()
    assert set(similar["item_id"]) == {LEFT[0]}
    assert similar["similar_item_id"][0] in LEFT

    # Unknown users raise the typed error.
    with pytest.raises(UnknownUserError):
        model.recommend(["nobody"], k=3)
    with pytest.raises(UnknownUserError):
        model.score("nobody", LEFT)

    # Save/load round trip through the registry gives identical scores and recommendations.
    model.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model)
    for user in (USERS_A[0], USERS_B[3]):
        np.testing.assert_allclose(
            loaded.score(user, LEFT + RIGHT), model.score(user, LEFT + RIGHT), rtol=1e-6
        )
    np.testing.assert_allclose(
        loaded.score_history(history, None, RIGHT),
        model.score_history(history, None, RIGHT),
        rtol=1e-6,
    )
    assert loaded.recommend(users, k=5).equals(recs)
