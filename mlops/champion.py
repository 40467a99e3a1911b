"""Find and load the registered ``@champion`` model for serving and for the nightly comparison.

``champion_version`` is one registry query (serving polls it to hot-swap). ``load_champion``
downloads the champion's pyfunc model (``models:/<name>/<version>``; resolved from the alias first,
then fetched by number so alias moves in between cannot mix versions) into
``paths.models/registry/<registered model>/<version>`` -- a per-version cache, written atomically
(download into a temporary sibling, then ``os.replace``) -- and loads the Recommender saved in its
``model_dir`` artifact with :func:`models.registry.load_model`. The cache is first-writer-wins:
when several serving workers download the same version at once, the first rename wins and the
others drop their copy (``os.replace`` refuses a non-empty folder). This is why it does not use
:func:`core.atomic.staged_dir`, which swaps an existing folder out from under workers reading it.

The handle also says whether the version is the trained model or the popularity fallback the
nightly shipped because the trained model lost to it (``serves``, ``serving_reason``).

The handle carries the champion run's evaluation metrics (the run's own metrics, keys as in
``CycleResult.metrics`` such as ``ndcg@10``, without the
``delta.``/``champion.``/``round.``/``privacy.``/``train.`` families) and its privacy report (the
run's ``privacy_report.json`` artifact, ``None`` for non-DP models).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import numpy as np
import polars as pl
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from tqdm import tqdm

from core.settings import Settings
from mlops.pyfunc import MODEL_DIR_ARTIFACT
from mlops.tracking import client as tracking_client
from mlops.tracking import metric_name
from mlops.vectors import ITEMS_VERSION_TAG, USERS_VERSION_TAG, parse_version_tag
from models.base import (
    RECS_SCHEMA,
    Recommender,
    UnknownUserError,
    check_interactions,
    top_k_frame,
)
from models.registry import load_model

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
PRIVACY_ARTIFACT = "privacy_report.json"
NON_EVALUATION_PREFIXES = ("delta.", "champion.", "fallback.", "round.", "privacy.", "train.")
"""Run metric families that are not the run's own evaluation metrics."""


class NoChampionError(LookupError):
    """No model version carries the ``champion`` alias (nothing promoted yet)."""


class ChampionDownloadError(RuntimeError):
    """The champion's artifacts are missing or not a pyfunc model with a ``model_dir``."""


@dataclass
class ChampionHandle:
    """The loaded champion: the recommender plus where it came from and how good/private it is."""

    recommender: Recommender
    version: str
    run_id: str
    model_dir: Path
    privacy: dict[str, Any] | None
    metrics: dict[str, float] = field(default_factory=dict)
    items_table_version: int | None = None
    """``collab_items`` version published with this model (pin it with ``checkout_items``)."""
    users_table_version: int | None = None
    serves: str = "challenger"
    """``challenger`` (the trained model won) or ``fallback`` (popularity, shipped because the
    trained model lost to it on the held-out split); from the version's ``serves`` tag."""
    serving_reason: str = ""
    """Why this version serves (the version's ``serving_reason`` tag; empty for old versions)."""


def _registered_aliases(client: MlflowClient, name: str) -> dict[str, str] | None:
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    match = [m for m in found if m.name == name]
    return dict(match[0].aliases) if match else None


def champion_version(settings: Settings) -> str | None:
    """Version number (string) of the current champion, ``None`` when nothing is promoted."""
    aliases = _registered_aliases(tracking_client(settings), settings.training.registered_model)
    if not aliases:
        return None
    version = aliases.get(CHAMPION_ALIAS)
    return str(version) if version is not None else None


def cache_dir(settings: Settings, version: str) -> Path:
    """Where model version ``version`` is cached locally."""
    return Path(settings.paths.models) / "registry" / settings.training.registered_model / version


def _model_dir(pyfunc_dir: Path) -> Path:
    """The saved Recommender directory inside a downloaded pyfunc model (from its MLmodel file)."""
    mlmodel = pyfunc_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ChampionDownloadError(f"{pyfunc_dir} has no MLmodel file")
    flavor = Model.load(str(mlmodel)).flavors.get("python_function", {})
    artifacts = flavor.get("artifacts", {})
    if MODEL_DIR_ARTIFACT not in artifacts:
        raise ChampionDownloadError(f"{mlmodel}: no {MODEL_DIR_ARTIFACT!r} pyfunc artifact")
    return pyfunc_dir / artifacts[MODEL_DIR_ARTIFACT]["path"]


def download_version(settings: Settings, version: str) -> Path:
    """Download registered model ``version`` into the cache (no-op when cached); return the
    Recommender directory inside it."""
    target = cache_dir(settings, version)
    if (target / "MLmodel").is_file():
        return _model_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{version}.{uuid.uuid4().hex}.download")
    uri = f"models:/{settings.training.registered_model}/{version}"
    try:
        mlflow.set_tracking_uri(settings.paths.mlflow_uri)
        mlflow.set_registry_uri(settings.paths.mlflow_uri)
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging))
        _model_dir(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "MLmodel").is_file():
                raise
            log.debug("another process cached this version first", extra={"version": version})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("downloaded model version", extra={"version": version, "path": str(target)})
    return _model_dir(target)


def run_evaluation_metrics(client: MlflowClient, run_id: str) -> dict[str, float]:
    """The run's own evaluation metrics (latest values), without the comparison families."""
    metrics = client.get_run(run_id).data.metrics
    return {
        metric_name(k): float(v)
        for k, v in metrics.items()
        if not k.startswith(NON_EVALUATION_PREFIXES)
    }


def run_privacy_report(client: MlflowClient, run_id: str) -> dict[str, Any] | None:
    """The run's ``privacy_report.json`` artifact, ``None`` if the run logged none."""
    names = {a.path for a in client.list_artifacts(run_id)}
    if PRIVACY_ARTIFACT not in names:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{PRIVACY_ARTIFACT}")


def load_version(settings: Settings, version: str) -> ChampionHandle:
    """Load registered model ``version`` (cached download) as a handle."""
    client = tracking_client(settings)
    mv = client.get_model_version(settings.training.registered_model, version)
    if not mv.run_id:
        raise ChampionDownloadError(f"model version {version} is not linked to a run")
    mlflow.set_tracking_uri(settings.paths.mlflow_uri)
    model_dir = download_version(settings, version)
    return ChampionHandle(
        recommender=load_model(model_dir),
        version=str(version),
        run_id=mv.run_id,
        model_dir=model_dir,
        privacy=run_privacy_report(client, mv.run_id),
        metrics=run_evaluation_metrics(client, mv.run_id),
        items_table_version=parse_version_tag(mv.tags, ITEMS_VERSION_TAG),
        users_table_version=parse_version_tag(mv.tags, USERS_VERSION_TAG),
        serves=mv.tags.get("serves", "challenger"),
        serving_reason=mv.tags.get("serving_reason", ""),
    )


def load_champion(settings: Settings) -> ChampionHandle:
    """Load the current ``@champion``; raises :class:`NoChampionError` when there is none."""
    version = champion_version(settings)
    if version is None:
        raise NoChampionError(
            f"registered model {settings.training.registered_model!r} has no "
            f"@{CHAMPION_ALIAS} in {settings.paths.mlflow_uri}; run the nightly cycle and promote"
        )
    return load_version(settings, version)


class FoldInView(Recommender):
    """A fitted recommender seen through tonight's training histories (read-only).

    Used to score the champion on the challenger's split: the champion was trained on older data,
    so its own user state is stale and it may not know tonight's users or items. ``recommend``
    folds in each user's history from ``train`` (:meth:`Recommender.score_history`) and ranks the
    split's training catalogue -- the same candidates the challenger ranks -- with items unknown to
    the wrapped model (``nan`` scores) and, with ``exclude_seen``, the user's training items left
    out. The view cannot be fitted, saved or loaded: it exists only for evaluation.

    Fold-in costs one ``score_history`` per user (ALS solves a least-squares problem each time),
    and the cycle asks for the same users twice (metrics, then metrics by activity), so the last
    ``recommend`` answer is memoised.
    """

    name: ClassVar[str] = "fold-in-view"

    def __init__(self, base: Recommender, train: pl.DataFrame) -> None:
        interactions = check_interactions(train)
        self.base = base
        self.catalog = np.asarray(sorted(interactions["item_id"].unique().to_list()), dtype=object)
        grouped = interactions.group_by("user_id").agg("item_id", "weight")
        self.histories: dict[str, tuple[list[str], list[float]]] = {
            row["user_id"]: (row["item_id"], row["weight"]) for row in grouped.iter_rows(named=True)
        }
        self._memo: tuple[tuple[tuple[str, ...], int, bool], pl.DataFrame] | None = None

    def fit(
        self, interactions: pl.DataFrame, item_features: pl.DataFrame | None = None
    ) -> Recommender:
        raise TypeError("FoldInView wraps an already fitted model; fit the base model instead")

    def recommend(
        self, user_ids: list[str], k: int = 10, exclude_seen: bool = True
    ) -> pl.DataFrame:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        key = (tuple(str(u) for u in user_ids), k, exclude_seen)
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]
        catalog = self.catalog.tolist()
        position = {item: n for n, item in enumerate(catalog)}
        frames = []
        for uid in tqdm(user_ids, desc="fold-in", unit="user", disable=len(user_ids) < 500):
            if uid not in self.histories:
                raise UnknownUserError(str(uid))
            items, weights = self.histories[uid]
            scores = np.asarray(self.base.score_history(items, weights, catalog), dtype=np.float64)
            scores[~np.isfinite(scores)] = -np.inf
            if exclude_seen:
                scores[[position[i] for i in items]] = -np.inf
            frames.append(top_k_frame([str(uid)], scores[None, :], self.catalog, k))
        recs = pl.concat(frames) if frames else pl.DataFrame(schema=RECS_SCHEMA)
        self._memo = (key, recs)
        return recs

    def score(self, user_id: str, item_ids: list[str]) -> np.ndarray:
        if user_id not in self.histories:
            raise UnknownUserError(str(user_id))
        items, weights = self.histories[user_id]
        return self.base.score_history(items, weights, item_ids)

    def score_history(
        self, history: list[str], weights: list[float] | None, item_ids: list[str]
    ) -> np.ndarray:
        return self.base.score_history(history, weights, item_ids)

    def similar_items(self, item_id: str, k: int = 10) -> pl.DataFrame:
        return self.base.similar_items(item_id, k)

    def save(self, directory: Path) -> None:
        raise TypeError("FoldInView is an evaluation view; save the base model instead")

    @classmethod
    def load(cls, directory: Path) -> Recommender:
        raise TypeError("FoldInView is an evaluation view; load the base model instead")
