"""The nightly cycle against a real MLflow sqlite store and a real LanceDB folder."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

import models.registry as registry
from core.settings import Settings, load_settings, workspace_paths
from mlops.champion import champion_version, load_champion
from mlops.evaluation import (
    InsufficientDataError,
    NightlyInputError,
    deltas,
    events_to_interactions,
    split_interactions,
)
from mlops.nightly import CycleResult, run_training_cycle
from mlops.promotion import (
    PromotionDecision,
    PromotionRefusedError,
    decide_promotion,
    is_better,
    promote,
    rollback,
)
from mlops.purge import purge_erased_users
from mlops.tracking import EXPERIMENT, RECORDED_TAG
from mlops.vectors import ITEMS_TABLE, ITEMS_VERSION_TAG, checkout_items, latest_version
from models.collaborative.implicit_models import ALSRecommender
from models.collaborative.popularity import PopularityRecommender

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class VectorALS(ALSRecommender):
    """ALS exposing the optional vector protocols (stand-in until ALS implements them)."""

    name: ClassVar[str] = "test-vector-als"

    def item_vectors(self) -> tuple[list[str], np.ndarray]:
        return [str(i) for i in self.data.items.ids], self.item_factors

    def user_vectors(self) -> tuple[list[str], np.ndarray]:
        return [str(u) for u in self.data.users.ids], self.user_factors


class WeakVectorALS(VectorALS):
    """A deliberately crippled factor model: one factor, one iteration."""

    name: ClassVar[str] = "test-weak-als"

    def __init__(self, **params) -> None:
        params.update(factors=1, iterations=1)
        super().__init__(**params)


STAND_INS = {"test-vector-als": VectorALS, "test-weak-als": WeakVectorALS}


@pytest.fixture(scope="module")
def patched_registry():
    original = registry.model_class
    mp = pytest.MonkeyPatch()
    mp.setattr(registry, "model_class", lambda name: STAND_INS.get(name) or original(name))
    yield
    mp.undo()


def clustered_events(n_users: int = 60, n_clusters: int = 4, per_cluster: int = 15) -> pl.DataFrame:
    """Users in a cluster watch most of their cluster's titles: ALS wins, popularity loses."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(n_users):
        cluster = u % n_clusters
        titles = rng.choice(per_cluster, size=10, replace=False) + cluster * per_cluster
        for n, t in enumerate(titles):
            rows.append((f"u{u}", f"movie:{t}", 1.0 + (n % 3), T0 + timedelta(days=n)))
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


# ---- pure parts --------------------------------------------------------------------------
def test_events_are_summed_per_user_title_and_erased_users_dropped() -> None:
    events = pl.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "c", "c"],
            "title_id": ["tv:1", "tv:1", "movie:2", "movie:2", "movie:2", "movie:3"],
            "weight": [1.0, 0.5, 2.0, 1.0, 1.0, -1.0],
            "event_time": [T0, T0 + timedelta(days=2), T0, T0, T0, T0],
        }
    )
    out = events_to_interactions(events, erased_users={"b"})
    assert out.columns == ["user_id", "item_id", "weight", "timestamp"]
    rows = {(r["user_id"], r["item_id"]): r for r in out.iter_rows(named=True)}
    assert set(rows) == {("a", "tv:1"), ("a", "movie:2"), ("c", "movie:2")}  # b erased, -1 dropped
    assert rows[("a", "tv:1")]["weight"] == 1.5
    assert rows[("a", "tv:1")]["timestamp"] == T0 + timedelta(days=2)


def test_bad_events_raise_clear_errors() -> None:
    with pytest.raises(NightlyInputError, match="lack columns"):
        events_to_interactions(pl.DataFrame({"user_id": ["a"]}))
    events = pl.DataFrame(
        {"user_id": ["a"], "title_id": [None], "weight": [1.0], "event_time": [T0]},
        schema_overrides={"title_id": pl.String},
    )
    with pytest.raises(NightlyInputError, match="null 'title_id'"):
        events_to_interactions(events)


def test_split_rule_falls_back_to_leave_last_out_on_tiny_data() -> None:
    tiny = events_to_interactions(clustered_events(n_users=4)).head(20)
    train, test, split = split_interactions(tiny, seed=42)
    assert split == "leave-last-out"
    assert test["user_id"].n_unique() == test.height  # one held-out row per user
    assert train.join(test, on=["user_id", "item_id"]).height == 0
    big = events_to_interactions(clustered_events())
    train, test, split = split_interactions(big, seed=42)
    assert split.startswith("stratified") and train.height + test.height == big.height
    assert set(test["user_id"]) <= set(train["user_id"])
    lonely = tiny.unique("user_id")
    with pytest.raises(InsufficientDataError):
        split_interactions(lonely, seed=42)


def test_gate_and_deltas() -> None:
    challenger = {"ndcg@10": 0.3, "coverage": math.nan, "users_evaluated": 50.0}
    champion = {"ndcg@10": 0.2, "coverage": 0.5, "users_evaluated": 50.0}
    assert deltas(challenger, champion) == {"ndcg@10": pytest.approx(0.1)}
    assert is_better({"ndcg@10": 0.3}, None, margin=0.0)
    assert is_better({"ndcg@10": 0.3}, {"ndcg@10": 0.2}, margin=0.05)
    assert not is_better({"ndcg@10": 0.3}, {"ndcg@10": 0.28}, margin=0.05)
    assert not is_better({"ndcg@10": math.nan}, None, margin=0.0)


def _result(better: bool, champion: str | None = "1", shipped: str = "challenger") -> CycleResult:
    return CycleResult(
        run_id="r",
        model_version="2",
        model_name="als",
        split="stratified-user-0.75",
        metrics={"ndcg@10": 0.3},
        champion_version=champion,
        champion_metrics={"ndcg@10": 0.29} if champion else None,
        deltas={"ndcg@10": 0.01} if champion else {},
        privacy=None,
        challenger_dir=Path("unused"),
        train_seconds=1.0,
        margin=0.02,
        better=better,
        fallback_version="3" if shipped == "fallback" else None,
        shipped=shipped,
    )


def test_nothing_to_promote_is_an_explicit_skip_with_its_reason() -> None:
    go = decide_promotion(_result(better=True), current_champion="1", inputs_unchanged=False)
    assert go == PromotionDecision(promote=True, reason="")
    lost = decide_promotion(_result(better=False), current_champion="1", inputs_unchanged=False)
    assert not lost.promote
    assert lost.reason.startswith("the challenger (v2) did not beat champion v1 on nDCG@10")
    assert "+0.0100" in lost.reason and "by more than 0.02" in lost.reason
    fallback = decide_promotion(
        _result(better=False, shipped="fallback"), current_champion="1", inputs_unchanged=False
    )
    assert fallback.reason.startswith("the fallback (v3) did not beat")
    # unchanged inputs: the candidate already serves -> skip; a better one that never got
    # promoted (a promotion that failed last night) -> promote now
    same = decide_promotion(_result(better=True), current_champion="2", inputs_unchanged=True)
    assert same == PromotionDecision(
        promote=False, reason="unchanged inputs: no new challenger; the champion keeps serving"
    )
    retry = decide_promotion(_result(better=True), current_champion="1", inputs_unchanged=True)
    assert retry.promote


# ---- the cycle against real stores --------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, patched_registry) -> Settings:
    var = tmp_path_factory.mktemp("nightly") / "var"
    return load_settings("configs/sample.yaml", overrides={"paths": workspace_paths(var)})


@pytest.fixture(scope="module")
def first(store: Settings) -> CycleResult:
    """Cycle 1: the weak factor model, no champion yet."""
    return run_training_cycle(store, clustered_events(), model_name="test-weak-als")


def _client(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.paths.mlflow_uri)


def test_first_cycle_logs_everything_and_registers_a_version(store, first) -> None:
    assert first.better and first.champion_metrics is None and first.deltas == {}
    assert first.model_version == "1" and first.split.startswith("stratified")
    assert 0.0 < first.metrics["ndcg@10"] <= 1.0
    client = _client(store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location == Path(store.paths.mlflow_artifacts).as_uri()
    run = client.get_run(first.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    params = run.data.params
    assert params["model"] == "test-weak-als" and params["hyper.factors"] == "1"
    assert params["seed"] == "42" and params["data.users"] == "60"
    assert int(params["data.train_rows"]) + int(params["data.test_rows"]) == 600
    for key in ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10", "hit_rate_at_10"):
        assert key in run.data.metrics
    assert {"coverage", "popularity_bias", "train.seconds"} <= set(run.data.metrics)
    contexts = sorted(
        tag.value
        for inp in run.inputs.dataset_inputs
        for tag in inp.tags
        if tag.key == "mlflow.data.context"
    )
    assert contexts == ["evaluation", "training"]
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert "champion_comparison.json" in artifacts
    plots = {a.path for a in client.list_artifacts(first.run_id, "plots")}
    assert plots == {
        "plots/metrics_by_activity.png",
        "plots/popularity_bias.png",
        "plots/privacy_utility.png",
    }
    version = client.get_model_version(store.training.registered_model, "1")
    assert version.run_id == first.run_id and version.tags["model"] == "test-weak-als"
    assert champion_version(store) is None  # registering does not promote


def test_first_cycle_is_promoted_with_vectors(store, first) -> None:
    info = promote(store, first)
    assert champion_version(store) == "1"
    assert _client(store).get_run(first.run_id).data.tags["promoted"] == "true"
    tags = _client(store).get_model_version(store.training.registered_model, "1").tags
    assert (
        tags[ITEMS_VERSION_TAG]
        == info[ITEMS_VERSION_TAG]
        == str(latest_version(store, ITEMS_TABLE))
    )
    assert promote(store, first)["already_champion"] is True  # idempotent


@pytest.fixture(scope="module")
def second(store, first) -> CycleResult:
    """Cycle 2: the real factor model against the weak champion."""
    if champion_version(store) is None:
        promote(store, first)
    return run_training_cycle(store, clustered_events(), model_name="test-vector-als")


def test_better_challenger_has_deltas_against_the_champion_on_the_same_split(store, second) -> None:
    assert second.champion_version == "1" and 0 <= second.champion_metrics["ndcg@10"] <= 1
    assert set(second.deltas) == {
        "ndcg@10",
        "precision@10",
        "recall@10",
        "map@10",
        "hit_rate@10",
        "coverage",
        "popularity_bias",
    }
    for name, delta in second.deltas.items():
        assert delta == pytest.approx(second.metrics[name] - second.champion_metrics[name])
    assert second.deltas["ndcg@10"] > 0 and second.better
    run = _client(store).get_run(second.run_id)
    assert run.data.metrics["delta.ndcg_at_10"] == pytest.approx(second.deltas["ndcg@10"])
    assert run.data.metrics["champion.ndcg_at_10"] == pytest.approx(
        second.champion_metrics["ndcg@10"]
    )
    plots = {a.path for a in _client(store).list_artifacts(second.run_id, "plots")}
    assert "plots/model_comparison.png" in plots
    comparison = mlflow.artifacts.load_dict(f"runs:/{second.run_id}/champion_comparison.json")
    assert comparison["champion_version"] == "1" and comparison["better"] is True
    assert comparison["deltas"]["ndcg@10"] == pytest.approx(second.deltas["ndcg@10"])


def test_worse_challenger_is_not_better_and_promotion_refuses(store, second) -> None:
    if champion_version(store) != second.model_version:
        promote(store, second)
    worse = run_training_cycle(store, clustered_events(), model_name="popularity")
    assert worse.champion_version == second.model_version
    assert worse.deltas["ndcg@10"] < 0 and not worse.better
    with pytest.raises(PromotionRefusedError, match="did not beat"):
        promote(store, worse)
    assert champion_version(store) == second.model_version
    result = json.loads(worse.model_dump_json())
    assert CycleResult.model_validate(result) == worse  # the Dagster check reads it back


def test_rollback_moves_the_alias_and_restores_the_vector_table(store, first, second) -> None:
    if champion_version(store) != second.model_version:
        promote(store, second)
    client = _client(store)
    name = store.training.registered_model
    v1_table = int(client.get_model_version(name, "1").tags[ITEMS_VERSION_TAG])
    v2_table = int(client.get_model_version(name, second.model_version).tags[ITEMS_VERSION_TAG])
    assert v2_table > v1_table
    info = rollback(store, "1")
    assert champion_version(store) == "1" and info["previous_champion"] == second.model_version
    latest = latest_version(store, ITEMS_TABLE)
    assert info["restored_items_version"] == latest > v2_table
    now = checkout_items(store, latest).to_arrow()
    then = checkout_items(store, v1_table).to_arrow()
    assert now.column("model_version").to_pylist() == then.column("model_version").to_pylist()
    assert set(now.column("model_version").to_pylist()) == {"1"}
    assert now.schema.field("vector").type.list_size == 1  # the weak model's single factor
    handle = load_champion(store)
    assert handle.version == "1" and handle.items_table_version == v1_table
    assert handle.recommender.params["factors"] == 1
    with pytest.raises(PromotionRefusedError, match="never promoted"):
        rollback(store, "3")


class PrivatePopularity(PopularityRecommender):
    """Stand-in for a DP federated model: a privacy report and a per-round history."""

    name: ClassVar[str] = "test-private"

    def fit(self, interactions, item_features=None):
        super().fit(interactions, item_features)
        self.round_history = [
            {"round": r, "ndcg": 0.1 * r, "epsilon": 0.25 * r, "loss": 1.0 / r} for r in (1, 2, 3)
        ]
        return self

    def privacy_report(self) -> dict:
        return {
            "epsilon": 0.75,
            "delta": 1e-5,
            "privacy_unit": "user",
            "accountant": "rdp",
            "failures": 2,
            "epsilon_by_client": {"0": 0.75, "1": 0.5},
        }


def test_private_model_logs_privacy_and_rounds(settings, monkeypatch) -> None:
    original = registry.model_class
    monkeypatch.setattr(
        registry,
        "model_class",
        lambda name: PrivatePopularity if name == "test-private" else original(name),
    )
    result = run_training_cycle(settings, clustered_events(n_users=20), model_name="test-private")
    assert result.privacy == PrivatePopularity().privacy_report()
    client = _client(settings)
    run = client.get_run(result.run_id)
    assert run.data.metrics["privacy.epsilon"] == 0.75
    assert run.data.metrics["privacy.delta"] == 1e-5
    assert run.data.metrics["privacy.failures"] == 2  # whatever numbers the model reports
    assert run.data.metrics["privacy.epsilon_by_client.1"] == 0.5
    assert run.data.params["privacy.unit"] == run.data.tags["privacy_unit"] == "user"
    history = client.get_metric_history(result.run_id, "round.ndcg")
    assert [(m.step, round(m.value, 6)) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert "round.round" not in run.data.metrics
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert "plots/metric_per_round.png" in plots
    promote(settings, result)
    handle = load_champion(settings)
    assert handle.privacy == result.privacy and handle.version == result.model_version
    assert handle.metrics["ndcg@10"] == pytest.approx(result.metrics["ndcg@10"])
    assert not any(k.startswith(("round.", "privacy.")) for k in handle.metrics)


@pytest.mark.slow
@pytest.mark.realdata
def test_cycle_on_movielens_100k_promotes_als_over_popularity(settings, shared_data) -> None:
    """ML-100k as watch events (every rating an implicit view): ALS must beat popularity."""
    raw = pl.read_csv(
        shared_data / "movielens" / "ml-100k" / "u.data",
        separator="\t",
        has_header=False,
        new_columns=["user", "item", "rating", "time"],
    )
    events = raw.select(
        pl.col("user").cast(pl.String).alias("user_id"),
        ("ml100k:" + pl.col("item").cast(pl.String)).alias("title_id"),
        pl.lit(1.0).alias("weight"),
        pl.from_epoch("time").dt.replace_time_zone("UTC").alias("event_time"),
    )
    baseline = run_training_cycle(settings, events, model_name="popularity")
    assert baseline.split.startswith("stratified") and baseline.better
    promote(settings, baseline)
    als = run_training_cycle(settings, events, model_name="als")
    assert als.champion_version == baseline.model_version
    # measured: popularity nDCG@10 0.254, ALS 0.477 on this user-stratified 75/25 split
    assert als.metrics["ndcg@10"] > 0.4 and 0.2 < als.champion_metrics["ndcg@10"] < 0.3
    assert als.deltas["ndcg@10"] > 0.15 and als.better
    assert als.metrics["users_evaluated"] == 943.0


# ---- never worse than popularity ------------------------------------------------------------
class AntiPopular(PopularityRecommender):
    """Ranks the least popular titles first: a model that must lose to the popularity fallback."""

    name: ClassVar[str] = "test-anti-popular"

    def _fit_matrix(self, matrix) -> None:
        super()._fit_matrix(matrix)
        self._popularity = -self._popularity


STAND_INS["test-anti-popular"] = AntiPopular


def skewed_events(n_users: int = 60, n_titles: int = 40) -> pl.DataFrame:
    """Zipf-like title popularity: the popularity ranking is a strong baseline here."""
    rng = np.random.default_rng(11)
    p = 1.0 / np.arange(1, n_titles + 1)
    rows = []
    for u in range(n_users):
        titles = rng.choice(n_titles, size=10, replace=False, p=p / p.sum())
        for n, t in enumerate(titles):
            rows.append((f"u{u}", f"movie:{t}", 1.0, T0 + timedelta(days=n)))
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


def test_a_challenger_below_popularity_ships_the_fallback(tmp_path, patched_registry) -> None:
    settings = load_settings(
        "configs/sample.yaml", overrides={"paths": workspace_paths(tmp_path / "var")}
    )
    result = run_training_cycle(settings, skewed_events(), model_name="test-anti-popular")
    assert result.shipped == "fallback" and result.fallback_version.isdigit()
    assert result.fallback_metrics["ndcg@10"] > result.metrics["ndcg@10"]
    assert result.candidate_version == result.fallback_version != result.model_version
    assert "fallback is shipped" in result.reason and result.better  # no champion yet
    client = _client(settings)
    name = settings.training.registered_model
    fallback = client.get_model_version(name, result.fallback_version)
    assert fallback.tags["serves"] == "fallback" and fallback.tags["model"] == "popularity"
    assert fallback.tags[RECORDED_TAG] == "true" and fallback.tags["serving_reason"]
    assert client.get_model_version(name, result.model_version).tags[RECORDED_TAG] == "true"
    run = client.get_run(result.run_id)
    assert run.data.tags["shipped"] == "fallback" and "fallback.ndcg_at_10" in run.data.metrics

    info = promote(settings, result)
    assert info["model_version"] == result.fallback_version and info["shipped"] == "fallback"
    handle = load_champion(settings)
    assert handle.version == result.fallback_version and handle.serves == "fallback"
    assert handle.serving_reason == result.reason
    assert handle.metrics["ndcg@10"] == pytest.approx(result.fallback_metrics["ndcg@10"])


def test_a_winning_challenger_says_why_it_serves(store, second) -> None:
    assert second.shipped == "challenger" and second.fallback_version is None
    assert second.metrics["ndcg@10"] > second.fallback_metrics["ndcg@10"]
    assert ">= popularity fallback" in second.reason


# ---- erasure in the model stores ------------------------------------------------------------
def test_erased_user_leaves_every_model_store(tmp_path, patched_registry) -> None:
    """A champion trained on u1 is replaced by a model trained without u1, then the sweep deletes
    every model version, file and user vector naming u1; rollback to the old version is gone."""
    settings = load_settings(
        "configs/sample.yaml", overrides={"paths": workspace_paths(tmp_path / "var")}
    )
    events = clustered_events()
    first = run_training_cycle(settings, events, model_name="test-vector-als")
    promote(settings, first)
    load_champion(settings)  # fills the registry download cache too
    needle = b'"u1"'

    def files_naming_u1() -> list[Path]:
        roots = [Path(settings.paths.mlflow_artifacts), Path(settings.paths.models)]
        return [p for r in roots for p in r.rglob("*") if p.is_file() and needle in p.read_bytes()]

    assert files_naming_u1()
    erased = {"u1"}
    second = run_training_cycle(settings, events, model_name="test-vector-als", erased_users=erased)
    assert second.better and "erased users" in second.reason  # the champion must be replaced
    promote(settings, second)
    report = purge_erased_users(settings, erased)
    assert report.deleted_versions == [first.model_version]
    assert files_naming_u1() == []
    client = _client(settings)
    name = settings.training.registered_model
    assert [str(mv.version) for mv in client.search_model_versions(f"name = '{name}'")] == [
        second.model_version
    ]
    with pytest.raises(mlflow.exceptions.MlflowException):
        rollback(settings, first.model_version)
    import lancedb

    table = lancedb.connect(str(settings.paths.lancedb)).open_table("collab_users")
    for version in table.list_versions():
        table.checkout(int(version["version"]))
        assert table.count_rows("user_id = 'u1'") == 0
    assert purge_erased_users(settings, erased).deleted_versions == []  # idempotent
