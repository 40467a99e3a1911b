"""Name -> implementation of every recommender, imported lazily (torch/flwr load only when used)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from models.base import Recommender

MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "popularity": ("models.collaborative.popularity:PopularityRecommender", {}),
    "als": ("models.collaborative.implicit_models:ALSRecommender", {}),
    "bpr": ("models.collaborative.implicit_models:BPRRecommender", {}),
    "ease": ("models.collaborative.ease:EASERecommender", {}),
    "rp3beta": ("models.collaborative.neighbors:RP3betaRecommender", {}),
    "itemknn": ("models.collaborative.neighbors:ItemKNNRecommender", {}),
    "ensemble": ("models.collaborative.ensemble:EnsembleRecommender", {}),
    "federated": ("models.federated.recommender:FederatedRecommender", {"dp": False}),
    "federated-dp": ("models.federated.recommender:FederatedRecommender", {"dp": True}),
    "federated-ease": ("models.federated.ease:FederatedEASERecommender", {}),
    "federated-rp3beta": ("models.federated.rp3beta:FederatedRP3betaRecommender", {}),
    "hybrid": ("models.ranking.hybrid:HybridRecommender", {}),
}
"""Model name -> ("module:Class", default constructor kwargs)."""


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    target, _ = MODELS[name]
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def takes_param(name: str, param: str) -> bool:
    """True when model ``name``'s constructor has a parameter ``param`` (e.g. ``rounds``)."""
    return param in inspect.signature(model_class(name).__init__).parameters


def create(name: str, **params: Any) -> Recommender:
    """Instantiate model ``name`` with its defaults overridden by ``params``."""
    defaults = dict(MODELS[name][1]) if name in MODELS else {}
    return model_class(name)(**{**defaults, **params})


def load_model(directory: Path) -> Recommender:
    """Load a saved model directory (its ``model.json`` names the implementation)."""
    manifest = Recommender.read_manifest(Path(directory))
    return model_class(manifest["name"]).load(Path(directory))
