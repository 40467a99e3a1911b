"""Small helpers behind the data-scientist notebooks (``notebooks/*.ipynb``).

Notebook cells only load, call, display and plot; anything longer than a call lives here or in the
project modules the helpers wrap. Decisions:

* Parameters come from environment variables (``MG_CONFIG``, ``MG_DATASET``, ``MG_ROUNDS``,
  ``MG_EPSILONS``...) read by the notebook's first cell with :func:`env_str` / :func:`env_int` /
  :func:`env_floats` / :func:`env_list`; a malformed value raises :class:`NotebookParameterError`
  naming the variable. ``MG_CONFIG`` (comma-separated overlays, default ``configs/sample.yaml``) is
  the notebooks' own variable, distinct from the services' ``MEDIA_GATEWAY_CONFIG``, so a shell that
  runs the service can point the notebooks elsewhere.
* Datasets: ``"sample"`` is the lake's ``watch_events`` (erased users excluded) aggregated by
  :func:`mlops.evaluation.events_to_interactions`, exactly what the nightly job trains on; the
  MovieLens sets are read in place from ``../shared/data`` with the loaders of
  ``benchmarks/_datasets.py`` (imported from that file: opacus installs a top-level ``benchmarks``
  package that shadows ours) and binarised like the training contract (:func:`models.train.to_weights`).
* Training and evaluation use the nightly cycle's constructor overrides (:func:`mlops.nightly.model_params`)
  and :func:`models.evaluation.evaluate.evaluate_model` at k = 10, so notebook numbers are
  comparable with the nightly runs in MLflow.
* Notebook comparison runs go to their own MLflow experiment (:data:`NOTEBOOK_EXPERIMENT`, one parent
  run per comparison with one nested run per model) in the settings' tracking store, never to the
  nightly experiment whose runs feed promotion.
* Watch histories are never displayed row by row: the helpers return counts and evidence only.
* Heavy modules (mlflow, torch, Flower) are imported inside the functions that need them, so the
  parameters cell is instant and :func:`setup` can quiet Flower before anything imports it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl

from core import PROJECT_ROOT
from core.feedback import configure_state, read_erasures
from core.lake import read_table
from core.settings import Settings, load_settings
from models.ranking.ranker import COMPONENTS
from pipelines.lib.erasure import drop_erased

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlops.champion import ChampionHandle
    from models.base import Recommender
    from models.ranking.catalog import Offer
    from models.ranking.ranker import Recommendation
    from models.ranking.search import SearchResults

log = logging.getLogger(__name__)

CONFIG_ENV = "MG_CONFIG"
DEFAULT_CONFIG = "configs/sample.yaml"
SAMPLE = "sample"
"""Dataset name of the lake's own watch events (the embedded sample after ``make demo``)."""
SHARED_DATA = (PROJECT_ROOT.parent / "shared" / "data").resolve()
DATASETS_MODULE = PROJECT_ROOT / "benchmarks" / "_datasets.py"
NOTEBOOK_EXPERIMENT = "media-gateway-notebooks"
K = 10
"""Cut-off of every ranking metric: the nightly cycle's ``mlops.evaluation.K`` (a test keeps them equal)."""
QUALITY_COLUMNS = (
    *(f"{m}@{K}" for m in ("ndcg", "precision", "recall", "map", "hit_rate")),
    "coverage",
    "popularity_bias",
)
"""Columns of :func:`comparison_table` (keys of ``evaluate_model`` as the nightly cycle logs them)."""


class NotebookParameterError(ValueError):
    """An ``MG_*`` environment variable holds a value of the wrong kind (the message names it)."""


class UnknownDatasetError(ValueError):
    """``MG_DATASET`` names no known dataset."""


# ---- parameters -----------------------------------------------------------------------------
def env_str(name: str, default: str) -> str:
    """``$name`` stripped, or ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int | None) -> int | None:
    """``$name`` as a positive integer, or ``default`` when unset or blank."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise NotebookParameterError(f"{name}={raw!r} is not an integer") from exc
    if value < 1:
        raise NotebookParameterError(f"{name}={raw!r} must be >= 1")
    return value


def env_list(name: str, default: Sequence[str], sep: str = ",") -> list[str]:
    """``$name`` split on ``sep`` (blank items dropped), or ``default`` when unset or blank."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(sep) if item.strip()]


def env_floats(name: str, default: Sequence[float]) -> list[float]:
    """``$name`` as comma-separated positive finite numbers (e.g. ``"0.5,1,8"``)."""
    out = []
    for item in env_list(name, [str(v) for v in default]):
        try:
            value = float(item)
        except ValueError as exc:
            raise NotebookParameterError(f"{name}: {item!r} is not a number") from exc
        if not math.isfinite(value) or value <= 0:
            raise NotebookParameterError(f"{name}: {item!r} must be a finite number > 0")
        out.append(value)
    return out


def setup() -> None:
    """Notebook display defaults: quiet Flower round logs, wide polars tables, no widget warning.

    Call it before importing project modules. Flower sets its logger to DEBUG when first imported
    and prints every round twice; notebooks show the federated progress bar and the per-round plot
    instead, so its logger is imported here and raised to WARNING. tqdm's notebook bars need
    ipywidgets, which the project does not install; tqdm then falls back to text bars and warns
    once per process, which is noise in every executed notebook.
    """
    from flwr.supercore.logger import FLOWER_LOGGER

    FLOWER_LOGGER.setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="IProgress not found")
    pl.Config.set_fmt_str_lengths(200)
    pl.Config.set_tbl_rows(40)


# ---- workspace and data ---------------------------------------------------------------------
def config_files(config: str | None = None) -> list[str]:
    """Overlay paths from ``config`` (comma-separated), else ``$MG_CONFIG``, else the sample."""
    text = config if config is not None else env_str(CONFIG_ENV, DEFAULT_CONFIG)
    files = [p.strip() for p in text.split(",") if p.strip()]
    return files or [DEFAULT_CONFIG]


def workspace(config: str | None = None) -> Settings:
    """Settings of ``configs/base.yaml`` plus the overlays of :func:`config_files`."""
    settings = load_settings(*config_files(config))
    configure_state(settings)  # erasures from the store the service writes (SQLite or PostgreSQL)
    return settings


@functools.cache
def _benchmark_datasets() -> ModuleType:
    """``benchmarks/_datasets.py`` loaded from its file (see the module docstring for why)."""
    if not DATASETS_MODULE.is_file():
        raise FileNotFoundError(f"{DATASETS_MODULE} not found: is this a source checkout?")
    spec = importlib.util.spec_from_file_location("media_gateway_datasets", DATASETS_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_names() -> tuple[str, ...]:
    """Every name :func:`dataset` accepts."""
    return (SAMPLE, *_benchmark_datasets().DATASETS)


def dataset(name: str, settings: Settings, data_dir: Path = SHARED_DATA) -> pl.DataFrame:
    """Interactions ``user_id, item_id, weight, timestamp`` of dataset ``name``.

    ``"sample"``: the lake of ``settings`` (see module docstring). ``"ml-100k"`` /
    ``"ml-latest-small"``: MovieLens from ``data_dir``, weight 1.0 per rated movie, timestamp UTC.
    Missing MovieLens files raise the loaders' ``DatasetNotFoundError`` naming the path.
    """
    if name == SAMPLE:
        from mlops.evaluation import events_to_interactions

        events = read_table(settings.paths.lake, "watch_events")
        return events_to_interactions(drop_erased(events, read_erasures(settings.paths.feedback)))
    module = _benchmark_datasets()
    if name not in module.DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; choose from {dataset_names()}")
    from models.train import to_weights

    ratings = module.load_dataset(name, Path(data_dir))
    latest = ratings.group_by("user_id", "item_id").agg(
        pl.from_epoch(pl.col("timestamp"), time_unit="s")
        .dt.replace_time_zone("UTC")
        .max()
        .alias("timestamp")
    )
    return to_weights(ratings).join(latest, on=["user_id", "item_id"], how="left")


def dataset_source(name: str, settings: Settings, data_dir: Path = SHARED_DATA) -> Path:
    """Where dataset ``name`` is read from (recorded as the MLflow input's source)."""
    if name == SAMPLE:
        return Path(settings.paths.lake) / "watch_events"
    return Path(data_dir) / "movielens" / name


def describe(interactions: pl.DataFrame) -> dict[str, int | float]:
    """Size and density of an interactions frame (no rows, so nothing personal is shown)."""
    users = interactions["user_id"].n_unique()
    items = interactions["item_id"].n_unique()
    return {
        "interactions": interactions.height,
        "users": users,
        "items": items,
        "density": interactions.height / max(1, users * items),
    }


# ---- training and comparison ----------------------------------------------------------------
@dataclass
class ModelRun:
    """One model trained on a split and evaluated on its test part."""

    name: str
    model: Recommender
    params: dict[str, Any]
    """Constructor arguments given to :func:`models.registry.create`."""
    metrics: dict[str, float]
    """``evaluate_model`` at k = 10 with ``@10`` keys (``ndcg@10``, ``coverage``...)."""
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    """Per-round metrics of federated models (empty otherwise)."""
    privacy: dict[str, Any] | None = None
    """``privacy_report()`` of federated models (ε is infinite without DP)."""

    @property
    def label(self) -> str:
        """Display name: the model name, plus the target ε for DP models."""
        if self.params.get("dp") or self.name == "federated-dp":
            return f"{self.name} (ε={self.params.get('target_epsilon')})"
        return self.name


def train_and_evaluate(
    name: str,
    train: pl.DataFrame,
    test: pl.DataFrame,
    settings: Settings,
    rounds: int | None = None,
    **overrides: Any,
) -> ModelRun:
    """Fit registry model ``name`` on ``train`` (nightly parameters, then ``rounds`` for federated
    models, then ``overrides``) and evaluate it on ``test`` at k = 10."""
    from mlops.evaluation import with_k
    from mlops.nightly import model_params
    from models.evaluation.evaluate import evaluate_model
    from models.registry import create, takes_param

    params = model_params(settings, name)
    if rounds is not None and takes_param(name, "rounds"):
        params["rounds"] = rounds
    params.update(overrides)
    model = create(name, **params)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    metrics = with_k(evaluate_model(model, train, test, k=K))
    report = getattr(model, "privacy_report", None)
    log.info("model evaluated", extra={"model": name, "seconds": round(seconds, 2)})
    return ModelRun(
        name=name,
        model=model,
        params=params,
        metrics=metrics,
        train_seconds=seconds,
        history=list(getattr(model, "round_history", None) or []),
        privacy=report() if callable(report) else None,
    )


def comparison_table(runs: Sequence[ModelRun]) -> pl.DataFrame:
    """One row per run: ``model``, the quality metrics at 10 and ``train_seconds``."""
    return pl.DataFrame(
        [
            {
                "model": run.label,
                **{c: run.metrics.get(c, math.nan) for c in QUALITY_COLUMNS},
                "train_seconds": run.train_seconds,
            }
            for run in runs
        ]
    )


def _is_private(run: ModelRun) -> bool:
    return run.privacy is not None and math.isfinite(float(run.privacy.get("epsilon", math.inf)))


def round_figure(run: ModelRun) -> Figure:
    """Per-round plot of a federated run: training loss, plus the ε spent so far under DP."""
    if not run.history:
        raise ValueError(f"{run.label} has no per-round history (not a federated model)")
    from models.evaluation.plots import plot_metric_per_round

    metrics = ["train_loss", "epsilon"] if _is_private(run) else ["train_loss"]
    figure = plot_metric_per_round(run.history, metrics)
    figure.axes[0].set_title(f"{run.label}: metrics per federated round")
    return figure


def privacy_points(runs: Sequence[ModelRun]) -> list[dict[str, Any]]:
    """Points for :func:`models.evaluation.plots.plot_privacy_utility`.

    DP runs are placed at the ε their accountant reports (the guarantee actually spent, at most the
    target); runs without a DP guarantee are references (``epsilon=None``, dashed lines).
    """
    return [
        {
            "label": "federated-dp" if _is_private(run) else f"{run.name} (no DP)",
            "epsilon": float(run.privacy["epsilon"]) if _is_private(run) else None,  # type: ignore[index]
            "ndcg": run.metrics[f"ndcg@{K}"],
        }
        for run in runs
    ]


def privacy_table(runs: Sequence[ModelRun]) -> pl.DataFrame:
    """Target ε, accounted ε and δ, noise multiplier and nDCG@10 per run (null without DP)."""
    rows = []
    for run in runs:
        private = _is_private(run)
        report = run.privacy or {}
        rows.append(
            {
                "model": run.label,
                "target_epsilon": run.params.get("target_epsilon") if private else None,
                "epsilon": float(report["epsilon"]) if private else None,
                "delta": float(report["delta"]) if private else None,
                "noise_multiplier": report.get("noise_multiplier") if private else None,
                f"ndcg@{K}": run.metrics[f"ndcg@{K}"],
                "train_seconds": run.train_seconds,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"target_epsilon": pl.Float64})


def privacy_unit(runs: Sequence[ModelRun]) -> str:
    """The privacy unit the DP runs protect (they must agree); raises if no run has DP."""
    units = {str(r.privacy["privacy_unit"]) for r in runs if _is_private(r) and r.privacy}
    if len(units) != 1:
        raise ValueError(f"expected one privacy unit across the DP runs, found {sorted(units)}")
    return units.pop()


# ---- MLflow ---------------------------------------------------------------------------------
def notebook_experiment(settings: Settings) -> str:
    """Id of :data:`NOTEBOOK_EXPERIMENT` in the settings' store (created with artifacts under
    ``paths.mlflow_artifacts/<experiment>``); also points MLflow at that store."""
    import mlflow

    from mlops.tracking import TrackingError
    from mlops.tracking import client as tracking_client

    uri = settings.paths.mlflow_uri
    mlflow.set_tracking_uri(uri)
    client = tracking_client(settings)
    experiment = client.get_experiment_by_name(NOTEBOOK_EXPERIMENT)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"MLflow experiment {NOTEBOOK_EXPERIMENT!r} is {experiment.lifecycle_stage}; "
                f"restore it with `mlflow experiments restore --experiment-id "
                f"{experiment.experiment_id}`"
            )
        return experiment.experiment_id
    artifacts = Path(settings.paths.mlflow_artifacts) / NOTEBOOK_EXPERIMENT
    artifacts.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(NOTEBOOK_EXPERIMENT, artifact_location=artifacts.as_uri())


def log_comparison(
    settings: Settings,
    runs: Sequence[ModelRun],
    dataset_name: str,
    split: str,
    train: pl.DataFrame,
    test: pl.DataFrame,
    figures: dict[str, Figure] | None = None,
) -> str:
    """Log a comparison: a parent run (datasets, table, figures) with one nested run per model
    (parameters, metrics, per-round metrics, privacy report). Returns the parent run id.

    The per-round and privacy logging are the nightly cycle's own functions, so notebook runs and
    nightly runs show the same keys in the MLflow UI.
    """
    import mlflow

    from mlops.run_logging import log_privacy, log_round_history
    from mlops.tracking import finite_metrics, flatten_params, log_dataset, metric_key

    experiment_id = notebook_experiment(settings)
    source = dataset_source(dataset_name, settings)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"compare-{dataset_name}-{stamp}"):
        parent = mlflow.active_run()
        assert parent is not None
        mlflow.set_tag("notebook", "02_train_and_compare")
        mlflow.log_params(
            flatten_params(
                {
                    "dataset": dataset_name,
                    "split": split,
                    "k": K,
                    "seed": settings.training.seed,
                    "models": [run.label for run in runs],
                }
            )
        )
        log_dataset(train, f"{dataset_name}-train", "training", source)
        log_dataset(test, f"{dataset_name}-test", "evaluation", source)
        mlflow.log_dict(comparison_table(runs).to_dicts(), "comparison.json")
        for name, figure in (figures or {}).items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        for run in runs:
            with mlflow.start_run(experiment_id=experiment_id, run_name=run.label, nested=True):
                mlflow.log_params(flatten_params({"model": run.name, "params": run.params}))
                mlflow.log_metrics(
                    {metric_key(k): v for k, v in finite_metrics(run.metrics).items()}
                )
                mlflow.log_metric("train.seconds", run.train_seconds)
                log_round_history(run.history)
                if run.privacy is not None:
                    log_privacy(run.privacy)
        return parent.info.run_id


def mlflow_ui_command(settings: Settings, port: int = 5000) -> str:
    """The shell command that opens these runs in the MLflow UI (http://127.0.0.1:<port>)."""
    mlflow_bin = Path(sys.prefix) / "bin" / "mlflow"
    uri = shlex.quote(settings.paths.mlflow_uri)
    return f"{mlflow_bin} ui --backend-store-uri {uri} --port {port}"


# ---- search and recommendations -------------------------------------------------------------
def sample_user(settings: Settings) -> str:
    """The (non-erased) user with the most watch events; ties broken by user id."""
    events = read_table(settings.paths.lake, "watch_events")
    erased = read_erasures(settings.paths.feedback)
    counts = (
        drop_erased(events, erased)
        .group_by("user_id")
        .len()
        .sort(["len", "user_id"], descending=[True, False])
    )
    if counts.height == 0:
        raise LookupError(f"no watch events in {settings.paths.lake}: run the nightly job first")
    return str(counts["user_id"][0])


def champion_summary(champion: ChampionHandle | None) -> dict[str, Any]:
    """Version, model, metrics and privacy of the loaded champion (raises if there is none)."""
    from mlops.champion import NoChampionError

    if champion is None:
        raise NoChampionError("no @champion model: run the nightly job (`make demo`) first")
    privacy = champion.privacy or {}
    return {
        "version": champion.version,
        "model": type(champion.recommender).__name__,
        "run_id": champion.run_id,
        **{k: v for k, v in champion.metrics.items() if k in QUALITY_COLUMNS},
        "epsilon": privacy.get("epsilon"),
        "privacy_unit": privacy.get("privacy_unit"),
    }


def watch_links(offers: Sequence[Offer]) -> list[str]:
    """``"Provider (COUNTRY, kind): deep link"`` for every offer that has a deep link."""
    return [
        f"{o.provider_name} ({o.country}, {o.kind}): {o.deep_link}" for o in offers if o.deep_link
    ]


HITS_SCHEMA = {
    "title": pl.String,
    "year": pl.Int64,
    "type": pl.String,
    "genres": pl.String,
    "runtime": pl.Int64,
    "similarity": pl.Float64,
    "relevance": pl.Float64,
    "watch": pl.List(pl.String),
}
RECOMMENDATIONS_SCHEMA = {
    "title": pl.String,
    "year": pl.Int64,
    "score": pl.Float64,
    **{f"from_{c}": pl.Float64 for c in COMPONENTS},
    "why": pl.String,
    "watch": pl.List(pl.String),
}
"""``from_<component>``: the component's weighted contribution (null when it was not used)."""


def hits_frame(results: SearchResults) -> pl.DataFrame:
    """Search hits as a table: title, year, genres, runtime, similarity, relevance, deep links."""
    return pl.DataFrame(
        [
            {
                "title": h.title,
                "year": h.year,
                "type": h.type,
                "genres": ", ".join(h.genres),
                "runtime": h.runtime,
                "similarity": h.similarity,
                "relevance": h.relevance,
                "watch": watch_links(h.offers),
            }
            for h in results.hits
        ],
        schema=HITS_SCHEMA,
    )


def recommendations_frame(recs: Sequence[Recommendation]) -> pl.DataFrame:
    """Recommendations as a table: title, score, component contributions, sentence, deep links."""
    return pl.DataFrame(
        [
            {
                "title": r.title,
                "year": r.year,
                "score": r.score,
                **{f"from_{c}": r.components.get(c) for c in COMPONENTS},
                "why": r.explanation.sentence,
                "watch": watch_links(r.offers),
            }
            for r in recs
        ],
        schema=RECOMMENDATIONS_SCHEMA,
    )
