"""LanceDB collaborative vector tables: one overwrite commit per publish, checkout, restore."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.vectors import (
    ITEMS_TABLE,
    USERS_TABLE,
    ItemVectorModel,
    VectorError,
    checkout_items,
    checkout_users,
    latest_version,
    publish_vectors,
    restore_versions,
    vector_rows,
)


class _Factors:
    """A stand-in exposing both optional vector protocols."""

    def __init__(self, items: list[str], users: list[str], dim: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.items, self.users = items, users
        self.item_matrix = rng.normal(size=(len(items), dim)).astype(np.float32)
        self.user_matrix = rng.normal(size=(len(users), dim)).astype(np.float32)

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        return self.items, self.item_matrix

    def user_vectors(self) -> tuple[list[str], np.ndarray]:
        return self.users, self.user_matrix


class _ItemsOnly:
    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        return ["a", "b"], np.eye(2, dtype=np.float32)


def _items_frame(settings, version):
    table = checkout_items(settings, version).to_arrow()
    return table.column("item_id").to_pylist(), table.column("model_version").to_pylist()


def test_each_publish_is_a_new_version_and_old_ones_stay_readable(settings) -> None:
    first = publish_vectors(settings, _Factors(["a", "b", "c"], ["u1"], dim=4, seed=1), "1")
    second = publish_vectors(settings, _Factors(["a", "d"], ["u1", "u2"], dim=8, seed=2), "2")
    assert second.items > first.items and second.users > first.users
    assert latest_version(settings, ITEMS_TABLE) == second.items

    ids, versions = _items_frame(settings, first.items)
    assert ids == ["a", "b", "c"] and set(versions) == {"1"}
    ids, versions = _items_frame(settings, second.items)
    assert ids == ["a", "d"] and set(versions) == {"2"}

    old = checkout_items(settings, first.items).to_arrow()
    vectors = np.asarray(old.column("vector").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, _Factors(["a", "b", "c"], ["u1"], 4, 1).item_matrix)
    users = checkout_users(settings, second.users).to_arrow().column("user_id").to_pylist()
    assert users == ["u1", "u2"]


def test_restore_makes_an_old_version_the_latest(settings) -> None:
    first = publish_vectors(settings, _Factors(["a", "b"], ["u1"], dim=3, seed=1), "1")
    publish_vectors(settings, _Factors(["x"], ["u9"], dim=3, seed=2), "2")
    restored = restore_versions(settings, first.items, first.users)
    assert restored.items == latest_version(settings, ITEMS_TABLE)
    assert restored.users == latest_version(settings, USERS_TABLE)
    assert restored.model_version == "1"
    ids, _ = _items_frame(settings, restored.items)
    assert ids == ["a", "b"]


def test_models_without_vectors_are_skipped_with_a_reason(settings) -> None:
    skipped = publish_vectors(settings, object(), "7")
    assert skipped.items is None and skipped.users is None
    assert "item_vectors" in (skipped.reason or "")
    assert latest_version(settings, ITEMS_TABLE) is None

    items_only = publish_vectors(settings, _ItemsOnly(), "8")
    assert isinstance(_ItemsOnly(), ItemVectorModel)
    assert items_only.items == latest_version(settings, ITEMS_TABLE) and items_only.users is None
    assert "user_vectors" in (items_only.reason or "")


def test_malformed_vectors_and_unknown_versions_raise(settings) -> None:
    with pytest.raises(VectorError, match="2 item_ids but 3"):
        vector_rows("item_id", ["a", "b"], np.zeros((3, 2)), "1")
    with pytest.raises(VectorError, match="duplicate"):
        vector_rows("item_id", ["a", "a"], np.zeros((2, 2)), "1")
    with pytest.raises(VectorError, match="NaN"):
        vector_rows("item_id", ["a"], np.array([[np.nan, 1.0]]), "1")
    with pytest.raises(VectorError, match="no 'collab_items' table"):
        checkout_items(settings, 1)
    publish_vectors(settings, _ItemsOnly(), "1")
    with pytest.raises(VectorError, match="no version 42"):
        checkout_items(settings, 42)


def test_factor_models_expose_their_vectors():
    import polars as pl

    from mlops.vectors import ItemVectorModel, UserVectorModel
    from models.collaborative.implicit_models import ALSRecommender

    df = pl.DataFrame(
        {"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "y", "z"], "weight": [1.0] * 4}
    )
    model = ALSRecommender(factors=4, iterations=2).fit(df)
    assert isinstance(model, ItemVectorModel) and isinstance(model, UserVectorModel)
    ids, matrix = model.item_vectors()
    assert ids == ["x", "y", "z"] and matrix.shape == (3, 4)
    users, umatrix = model.user_vectors()
    assert users == ["a", "b", "c"] and umatrix.shape == (3, 4)
