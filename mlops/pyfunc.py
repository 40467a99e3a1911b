"""MLflow pyfunc wrapper of a saved Recommender directory.

Logged by the nightly cycle with ``artifacts={"model_dir": <saved model dir>}``; ``load_context``
loads it through :func:`models.registry.load_model`, so ``mlflow.pyfunc.load_model`` and
``mlflow models serve --env-manager local`` work in an environment where this project is installed
(the recommender classes live in this package; the pinned ``pip_requirements`` only list the
third-party libraries, no environment is inferred at log time, which keeps logging fast).

``predict`` input: a DataFrame with ``user_id`` and optionally ``k`` (per row; the first value per
user wins) -- or ``params={"k": ...}``; default 10. Output: ``user_id, item_id, rank, score``.
Unknown users raise :class:`models.base.UnknownUserError` naming the user.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import polars as pl
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from models.base import RECS_SCHEMA, Recommender
from models.registry import load_model

MODEL_DIR_ARTIFACT = "model_dir"
DEFAULT_K = 10

_BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas", "polars", "pyarrow", "scipy")
_MODEL_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "als": ("implicit",),
    "bpr": ("implicit",),
    "federated": ("torch", "flwr"),
    "federated-dp": ("torch", "flwr", "opacus"),
    "hybrid": ("implicit", "torch", "sentence-transformers"),
}

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "user_id"), ColSpec("long", "k", required=False)]),
    outputs=Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("string", "item_id"),
            ColSpec("integer", "rank"),
            ColSpec("double", "score"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]),
)
"""Explicit signature: no input example is needed (and no model is run) at log time."""


class PredictInputError(ValueError):
    """The predict input frame is not ``user_id[, k]``."""


def pip_requirements(model_name: str) -> list[str]:
    """Pinned third-party requirements of a served model of family ``model_name``."""
    packages = (*_BASE_REQUIREMENTS, *_MODEL_REQUIREMENTS.get(model_name, ()))
    return [f"{pkg}=={importlib.metadata.version(pkg)}" for pkg in packages]


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc face of a Recommender: ``user_id[, k]`` in, ranked recommendations out."""

    def __init__(self) -> None:
        self.recommender: Recommender | None = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        if MODEL_DIR_ARTIFACT not in context.artifacts:
            raise KeyError(f"pyfunc artifacts lack {MODEL_DIR_ARTIFACT!r}: {context.artifacts}")
        self.recommender = load_model(Path(context.artifacts[MODEL_DIR_ARTIFACT]))

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input,  # a pandas DataFrame; unannotated on purpose: MLflow 3 would derive a
        # (wrong, "list of instances") schema from the hint. The signature is SIGNATURE.
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        if self.recommender is None:
            raise RuntimeError("RecommenderPyfunc.predict called before load_context")
        frame = pl.from_pandas(model_input) if isinstance(model_input, pd.DataFrame) else None
        if frame is None or "user_id" not in frame.columns:
            raise PredictInputError("predict expects a DataFrame with a 'user_id' column")
        default_k = int((params or {}).get("k", DEFAULT_K))
        if "k" in frame.columns:
            frame = frame.with_columns(pl.col("k").fill_null(default_k).cast(pl.Int64))
        else:
            frame = frame.with_columns(pl.lit(default_k, dtype=pl.Int64).alias("k"))
        requests = frame.select(pl.col("user_id").cast(pl.String), "k").unique(
            "user_id", keep="first", maintain_order=True
        )
        parts = []
        for k, group in requests.group_by("k", maintain_order=True):
            parts.append(self.recommender.recommend(group["user_id"].to_list(), k=int(k[0])))
        out = pl.concat(parts) if parts else pl.DataFrame(schema=RECS_SCHEMA)
        return out.to_pandas()
