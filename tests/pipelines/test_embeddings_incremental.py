import numpy as np
import polars as pl
import pytest

from core.schemas import EMBEDDING_DIM
from pipelines.lib.embeddings import update_embeddings, vector_quality


def _titles(overviews: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "title_id": list(overviews),
            "title": [f"T {k}" for k in overviews],
            "overview": list(overviews.values()),
            "type": ["movie"] * len(overviews),
            "year": [2000] * len(overviews),
        }
    )


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        rng = np.random.default_rng(len(texts))
        v = rng.normal(size=(len(texts), EMBEDDING_DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_only_new_or_changed_titles_are_encoded():
    enc = CountingEncoder()
    first = update_embeddings(_titles({"a": "x", "b": "y"}), None, enc)
    assert (first.encoded, first.reused) == (2, 0)
    second = update_embeddings(_titles({"a": "x", "b": "changed", "c": "new"}), first.table, enc)
    assert (second.encoded, second.reused, second.removed) == (2, 1, 0)
    assert len(enc.calls[-1]) == 2
    kept = first.table.filter(pl.col("title_id") == "a")["vector"].to_list()
    assert second.table.filter(pl.col("title_id") == "a")["vector"].to_list() == kept
    third = update_embeddings(_titles({"a": "x"}), second.table, enc)
    assert (third.encoded, third.reused, third.removed) == (0, 1, 2)
    assert third.table["title_id"].to_list() == ["a"]


def test_encoder_returning_wrong_count_is_an_error():
    with pytest.raises(ValueError, match="1 vectors for 2 texts"):
        update_embeddings(
            _titles({"a": "x", "b": "y"}), None, lambda t: np.zeros((1, EMBEDDING_DIM))
        )


def test_vector_quality_flags_bad_vectors():
    good = np.zeros(EMBEDDING_DIM, np.float32)
    good[0] = 1.0
    nan = good.copy()
    nan[1] = np.nan
    table = pl.DataFrame(
        {
            "title_id": ["a", "b", "c", "d"],
            "vector": [good.tolist(), (good * 2).tolist(), nan.tolist(), [1.0, 0.0]],
        }
    )
    assert vector_quality(table) == {"non_finite": 1, "wrong_dim": 1, "not_unit": 1}
