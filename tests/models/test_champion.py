"""Loading the @champion for serving: registry alias, cached download, pyfunc, fold-in view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

from core.settings import Settings, load_settings, workspace_paths
from mlops.champion import (
    FoldInView,
    NoChampionError,
    cache_dir,
    champion_version,
    load_champion,
)
from mlops.nightly import run_training_cycle
from mlops.promotion import promote
from mlops.pyfunc import PredictInputError
from models.base import UnknownUserError
from models.evaluation.evaluate import evaluate_model
from models.registry import create

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _events(n_users: int = 30, n_items: int = 12) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for u in range(n_users):
        for n, item in enumerate(rng.choice(n_items, size=6, replace=False)):
            rows.append((f"u{u}", f"movie:{item}", 1.0, T0 + timedelta(hours=n)))
    return pl.DataFrame(
        rows,
        schema={
            "user_id": pl.String,
            "title_id": pl.String,
            "weight": pl.Float64,
            "event_time": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )


def test_no_champion_is_a_clear_error(settings: Settings) -> None:
    assert champion_version(settings) is None
    with pytest.raises(NoChampionError, match="no @champion"):
        load_champion(settings)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory) -> Settings:
    """One store with a promoted popularity model, shared by the read-only tests below."""
    var = tmp_path_factory.mktemp("champion") / "var"
    settings = load_settings("configs/sample.yaml", overrides={"paths": workspace_paths(var)})
    result = run_training_cycle(settings, _events(), model_name="popularity")
    promote(settings, result)
    return settings


def test_load_champion_downloads_once_and_recommends(promoted: Settings) -> None:
    handle = load_champion(promoted)
    assert handle.version == champion_version(promoted) == "1"
    assert handle.model_dir.is_relative_to(cache_dir(promoted, "1"))
    assert handle.privacy is None  # popularity is not a DP model
    assert 0.0 <= handle.metrics["ndcg@10"] <= 1.0 and "coverage" in handle.metrics
    recs = handle.recommender.recommend(["u0"], k=3)
    assert recs.height == 3 and recs["rank"].to_list() == [1, 2, 3]

    marker = cache_dir(promoted, "1") / "MLmodel"
    before = marker.stat().st_mtime_ns
    again = load_champion(promoted)
    assert marker.stat().st_mtime_ns == before  # served from the cache, not downloaded again
    assert again.recommender.recommend(["u0"], k=3).equals(recs)


def test_pyfunc_serves_the_alias(promoted: Settings) -> None:
    mlflow.set_tracking_uri(promoted.paths.mlflow_uri)
    model = mlflow.pyfunc.load_model(f"models:/{promoted.training.registered_model}@champion")
    out = model.predict(pd.DataFrame({"user_id": ["u1", "u2"], "k": [2, 4]}))
    assert out.groupby("user_id").size().to_dict() == {"u1": 2, "u2": 4}
    assert list(out.columns) == ["user_id", "item_id", "rank", "score"]
    default_k = model.predict(pd.DataFrame({"user_id": ["u1"]}), params={"k": 3})
    assert len(default_k) == 3
    python_model = model.unwrap_python_model()
    with pytest.raises(PredictInputError):
        python_model.predict(None, pd.DataFrame({"name": ["u1"]}))
    with pytest.raises(UnknownUserError):
        python_model.predict(None, pd.DataFrame({"user_id": ["stranger"]}))


def test_fold_in_view_scores_a_champion_trained_on_other_items() -> None:
    old = pl.DataFrame(
        {"user_id": ["x", "y", "y", "z"], "item_id": ["A", "A", "B", "C"], "weight": 1.0}
    )
    champion = create("popularity").fit(old)
    train = pl.DataFrame(
        {"user_id": ["n1", "n1", "n2"], "item_id": ["A", "D", "B"], "weight": [1.0, 1.0, 1.0]}
    )
    test = pl.DataFrame({"user_id": ["n1", "n2"], "item_id": ["B", "A"], "weight": [1.0, 1.0]})
    view = FoldInView(champion, train)
    recs = view.recommend(["n1", "n2"], k=5)
    # candidates are tonight's training catalogue (A, B, D); seen items and items the champion
    # never saw (D) are left out; C (champion-only) is not a candidate.
    assert recs.filter(pl.col("user_id") == "n1")["item_id"].to_list() == ["B"]
    assert recs.filter(pl.col("user_id") == "n2")["item_id"].to_list() == ["A"]
    assert view.recommend(["n1", "n2"], k=5) is recs  # memoised: fold-in is not repeated
    metrics = evaluate_model(view, train, test, k=5)
    assert metrics["hit_rate"] == 1.0 and metrics["users_evaluated"] == 2.0
    with pytest.raises(UnknownUserError):
        view.recommend(["x"])
    with pytest.raises(TypeError):
        view.fit(train)
