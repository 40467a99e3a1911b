"""MLflow helpers for the nightly cycle: one place that points MLflow at our stores.

The tracking store is ``settings.paths.mlflow_uri`` (sqlite by default) and is also used as the
model-registry URI. The nightly experiment is created with its ``artifact_location`` set to
``settings.paths.mlflow_artifacts`` as a ``file://`` URI, so artifacts never land in the current
working directory. Parameters are flattened to ``a.b`` keys and truncated to MLflow's value limit.

Also here: the registry conventions every writer shares (the model-version tags
:data:`RECORDED_TAG`, :data:`SERVES_TAG`, :data:`REASON_TAG`), :func:`log_model` (a saved
Recommender as a registered pyfunc version) and :func:`clean_orphans`, the repair of what a killed
nightly left in the store. What one nightly run logs is :mod:`mlops.run_logging`.

A version is *recorded* (tag :data:`RECORDED_TAG`) once the whole cycle logged it. A nightly
killed between registering and recording leaves an unrecorded version (and a RUNNING MLflow run):
:func:`clean_orphans`, called at the start of the next nightly, deletes such versions (never one
holding an alias) and marks such runs FAILED.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient

from core.settings import Settings
from mlops.pyfunc import MODEL_DIR_ARTIFACT, SIGNATURE, RecommenderPyfunc, pip_requirements

log = logging.getLogger(__name__)

EXPERIMENT = "media-gateway-nightly"
"""Experiment every nightly run is logged to."""

PARAM_VALUE_LIMIT = 6000
"""MLflow's maximum length of a parameter value (longer values are truncated with a marker)."""

RECORDED_TAG = "nightly.recorded"
"""Model-version tag set once a cycle finished logging the version (absent: a killed run)."""
SERVES_TAG = "serves"
"""Model-version tag: ``challenger`` or ``fallback`` -- which model this version is."""
REASON_TAG = "serving_reason"
"""Model-version tag: why this version is the cycle's candidate."""


class TrackingError(RuntimeError):
    """The tracking store is not in the state the nightly cycle expects."""


def configure(settings: Settings) -> str:
    """Point MLflow (tracking and registry) at the settings' store; return the experiment id.

    Creates the experiment on first use with ``artifact_location`` = the artifacts folder. An
    existing experiment whose artifact location differs is used as is (logged at warning level),
    since MLflow cannot move an experiment's artifacts.
    """
    uri = settings.paths.mlflow_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    artifacts = Path(settings.paths.mlflow_artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
        log.info("created MLflow experiment", extra={"experiment_id": experiment_id})
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage != "active":
            raise TrackingError(
                f"MLflow experiment {EXPERIMENT!r} is {experiment.lifecycle_stage}; restore it "
                f"with `mlflow experiments restore --experiment-id {experiment_id}`"
            )
        if experiment.artifact_location != artifacts.as_uri():
            log.warning(
                "experiment artifact location differs from settings",
                extra={"expected": artifacts.as_uri(), "actual": experiment.artifact_location},
            )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def client(settings: Settings) -> MlflowClient:
    """An MLflow client bound to the settings' tracking and registry store (one per URI).

    Building a client on a sqlite URI opens the database and checks its schema (about a second),
    and serving polls the champion often, so clients are cached per URI.
    """
    return _client_for(settings.paths.mlflow_uri)


@functools.lru_cache(maxsize=8)
def _client_for(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> ``{"a.b": "value"}`` strings (lists as JSON), ready for ``log_params``."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
            continue
        text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
        if len(text) > PARAM_VALUE_LIMIT:
            text = text[: PARAM_VALUE_LIMIT - 12] + "...truncated"
        out[name] = text
    return out


def finite_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric entries of ``metrics`` as floats, prefixed; NaN/inf and non-numbers are left out.

    MLflow stores NaN, but a NaN metric (e.g. a metric undefined on an empty test set) makes
    comparisons in the UI meaningless, so it is omitted and logged at debug level instead.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        number = float(value)
        if not math.isfinite(number):
            log.debug("metric not finite; not logged", extra={"metric": f"{prefix}{key}"})
            continue
        out[f"{prefix}{key}"] = number
    return out


def metric_key(name: str) -> str:
    """MLflow-safe metric key: MLflow forbids ``@``, so ``ndcg@10`` is logged as ``ndcg_at_10``."""
    return name.replace("@", "_at_")


def metric_name(key: str) -> str:
    """Inverse of :func:`metric_key` (``ndcg_at_10`` -> ``ndcg@10``)."""
    return re.sub(r"_at_(\d+)$", r"@\1", key)


def log_dataset(df: pl.DataFrame, name: str, context: str, source: Path) -> None:
    """Record ``df`` as a run input (schema, digest, row count; no rows) for ``context``."""
    with warnings.catch_warnings():
        # MLflow registers two local sources for file paths and warns that it picked one of them.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
        dataset = mlflow.data.from_polars(df, source=Path(source).as_uri(), name=name)
    mlflow.log_input(dataset, context=context)


def log_model(settings: Settings, model_name: str, model_dir: Path) -> str:
    """Log the Recommender saved in ``model_dir`` as a pyfunc model of the active run and register
    it as a new version of ``training.registered_model``; returns the version."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        # No input example on purpose: it would store a real user id in the artifact, and the
        # explicit SIGNATURE already describes the input.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RecommenderPyfunc(),
            artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
            registered_model_name=settings.training.registered_model,
            pip_requirements=pip_requirements(model_name),
            signature=SIGNATURE,
        )
    log.info("model logged", extra={"seconds": round(time.perf_counter() - started, 2)})
    if info.registered_model_version is None:
        raise RuntimeError("MLflow did not register a model version")
    return str(info.registered_model_version)


def clean_orphans(settings: Settings) -> list[str]:
    """Repair what a killed nightly left in MLflow; returns what was cleaned (for the summary).

    Call only while no other nightly runs (``pipelines.run`` holds a lock). Runs of the nightly
    experiment still ``RUNNING`` are marked ``FAILED``. A model version is an orphan when it has
    no alias, was never recorded (:data:`RECORDED_TAG`) and its run did not finish or it lacks
    the ``model`` tag every cycle sets: it is deleted with its logged-model files, so no
    half-registered version can be promoted or rolled back to.
    """
    from mlflow.entities import RunStatus

    mlflow_client = client(settings)
    cleaned: list[str] = []
    experiment = mlflow_client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        running = mlflow_client.search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
        for run in running:
            mlflow_client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
            mlflow_client.set_tag(run.info.run_id, "killed", "true")
            cleaned.append(f"run {run.info.run_id[:8]} marked FAILED")
    registered = settings.training.registered_model
    if not mlflow_client.search_registered_models(filter_string=f"name = '{registered}'"):
        return cleaned
    aliased = set(mlflow_client.get_registered_model(registered).aliases.values())
    for mv in mlflow_client.search_model_versions(f"name = '{registered}'"):
        if str(mv.version) in {str(v) for v in aliased} or mv.tags.get(RECORDED_TAG) == "true":
            continue
        finished = bool(mv.run_id) and mlflow_client.get_run(mv.run_id).info.status == "FINISHED"
        if finished and "model" in mv.tags:
            continue
        mlflow_client.delete_model_version(registered, mv.version)
        if mv.source.startswith("models:/m-"):
            model_id = mv.source.removeprefix("models:/")
            mlflow_client.delete_logged_model(model_id)
            shutil.rmtree(Path(settings.paths.mlflow_artifacts) / "models" / model_id, True)
        cleaned.append(f"model version {mv.version} deleted (never recorded)")
    return cleaned
