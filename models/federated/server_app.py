"""Flower ServerApp: FedAvg over item-side arrays, per-round history, privacy report, outputs.

:func:`run_federation` is the whole server loop; the deployment ServerApp (``main``) and the
in-process driver of :class:`models.federated.recommender.FederatedRecommender` both call it, with
a real Flower ``Grid`` and with :class:`InProcessGrid` respectively.

Aggregation: FedAvg weighted by ``num-examples`` (users per client). Metrics: ``train-loss`` is
averaged with the same weights; ``epsilon`` is the *maximum* over clients. Clients hold disjoint
users and each client's DP-SGD is (ε_k, δ)-DP w.r.t. one of its users' histories; a user's
history influences only its own client's update, so the released sequence of global models is
(max_k ε_k, δ)-DP for every user (parallel composition), which is what the report states.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, Strategy

from models.federated.content import load_item_vectors
from models.federated.task import (
    ACCOUNTANT,
    PRIVACY_UNIT,
    TaskConfig,
    build_model,
    get_weights,
    record_to_weights,
    weights_to_record,
)
from models.privacy.accounting import PrivacyReport, central_dp_epsilon

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"
METRICS_FILE = "metrics.json"
MAX_KEYS = ("epsilon", "noise-multiplier", "sample-rate", "local-steps")


def aggregate_train_metrics(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """Weighted mean of ``train-loss``; max of privacy metrics; sum of ``num-examples``."""
    metrics = [next(iter(r.metric_records.values())) for r in records]
    weights = np.array([float(m["num-examples"]) for m in metrics])  # type: ignore[arg-type]
    out = MetricRecord(
        {
            "num-examples": int(weights.sum()),
            "train-loss": float(
                np.average([float(m["train-loss"]) for m in metrics], weights=weights)  # type: ignore[arg-type]
            ),
        }
    )
    for key in MAX_KEYS:
        out[key] = max(float(m[key]) for m in metrics)  # type: ignore[arg-type]
    return out


def aggregate_eval_metrics(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """Mean of ``eval-loss`` and ``ndcg-at-10`` weighted by evaluated users."""
    metrics = [next(iter(r.metric_records.values())) for r in records]
    weights = np.array([float(m["num-examples"]) for m in metrics])  # type: ignore[arg-type]
    return MetricRecord(
        {
            key: float(np.average([float(m[key]) for m in metrics], weights=weights))  # type: ignore[arg-type]
            for key in ("eval-loss", "ndcg-at-10")
        }
    )


class ItemFedAvg(FedAvg):
    """FedAvg whose aggregation order is deterministic (replies sorted by source node)."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ordered = sorted(replies, key=lambda m: m.metadata.src_node_id)
        return super().aggregate_train(server_round, ordered)


def build_strategy(cfg: TaskConfig) -> Strategy:
    """FedAvg over all ``num-clients`` each round, optionally wrapped in central DP."""
    evaluate = cfg.validation_fraction > 0
    strategy = ItemFedAvg(
        fraction_train=1.0,
        fraction_evaluate=1.0 if evaluate else 0.0,
        min_train_nodes=cfg.num_clients,
        min_evaluate_nodes=cfg.num_clients if evaluate else 0,
        min_available_nodes=cfg.num_clients,
        # Central DP needs a uniform average for its sensitivity (noise std = z x clip / n).
        weighted_by_key="unit-weight" if cfg.central_dp else "num-examples",
        train_metrics_aggr_fn=aggregate_train_metrics,
        evaluate_metrics_aggr_fn=aggregate_eval_metrics,
    )
    if not cfg.central_dp:
        return strategy
    return DifferentialPrivacyServerSideFixedClipping(
        strategy,
        noise_multiplier=cfg.central_noise_multiplier,
        clipping_norm=cfg.central_clip,
        num_sampled_clients=cfg.num_clients,
    )


@dataclass
class FederationResult:
    """Final global weights, per-round history (for plots) and the privacy report."""

    weights: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    privacy: PrivacyReport | None = None


def _history(cfg: TaskConfig, result: Any) -> list[dict[str, float]]:
    rows = []
    for rnd in range(1, cfg.rounds + 1):
        row: dict[str, float] = {"round": rnd}
        train = result.train_metrics_clientapp.get(rnd)
        if train is None:
            raise RuntimeError(f"round {rnd}: no client replied successfully (see Flower log)")
        row["train_loss"] = float(train["train-loss"])
        row["num_examples"] = int(train["num-examples"])
        row["epsilon"] = float(train["epsilon"])
        row["noise_multiplier"] = float(train["noise-multiplier"])
        row["sample_rate"] = float(train["sample-rate"])
        row["local_steps"] = int(train["local-steps"])
        if cfg.central_dp:
            row["central_epsilon"] = central_dp_epsilon(
                cfg.central_noise_multiplier,
                cfg.num_clients,
                cfg.num_clients,
                rnd,
                cfg.target_delta,
            )
        evaluated = result.evaluate_metrics_clientapp.get(rnd)
        if evaluated is not None:
            row["val_loss"] = float(evaluated["eval-loss"])
            row["val_ndcg_at_10"] = float(evaluated["ndcg-at-10"])
        rows.append(row)
    return rows


def privacy_report(cfg: TaskConfig, history: list[dict[str, float]]) -> PrivacyReport | None:
    """The guarantee of the final model, or ``None`` when trained without any DP."""
    last = history[-1] if history else {}
    if cfg.dp:
        return PrivacyReport(
            epsilon=float(last["epsilon"]),
            delta=cfg.target_delta,
            privacy_unit=PRIVACY_UNIT,
            accountant=f"opacus-{ACCOUNTANT} (max over clients, parallel composition)",
            noise_multiplier=float(last["noise_multiplier"]),
            max_grad_norm=cfg.max_grad_norm,
            rounds=cfg.rounds,
            sample_rate=float(last["sample_rate"]),
            mechanism="dp-sgd",
            steps=int(sum(r["local_steps"] for r in history)),
        )
    if cfg.central_dp:
        return PrivacyReport(
            epsilon=float(last["central_epsilon"]),
            delta=cfg.target_delta,
            privacy_unit="one client's whole update (client-level DP)",
            accountant="opacus-rdp",
            noise_multiplier=cfg.central_noise_multiplier,
            max_grad_norm=cfg.central_clip,
            rounds=cfg.rounds,
            sample_rate=1.0,
            mechanism="central-dp",
            steps=cfg.rounds,
        )
    return None


def initial_weights(cfg: TaskConfig) -> dict[str, np.ndarray]:
    """Fresh global weights; the content model's public item vectors come from
    ``item-vectors-path`` (a ``.npy`` of num-items x content-dim)."""
    weights = get_weights(build_model(cfg))
    if cfg.content_dim > 0:
        if not cfg.item_vectors_path:
            raise ValueError("run config 'content-dim' > 0 needs 'item-vectors-path' (.npy)")
        weights["decoder.weight"] = load_item_vectors(
            cfg.item_vectors_path, cfg.num_items, cfg.content_dim
        )
    return weights


def run_federation(
    grid: Grid, cfg: TaskConfig, initial: dict[str, np.ndarray] | None = None
) -> FederationResult:
    """Run ``cfg.rounds`` rounds of FedAvg on ``grid`` and collect history and privacy report."""
    strategy = build_strategy(cfg)
    start = initial if initial is not None else get_weights(build_model(cfg))
    result = strategy.start(
        grid=grid,
        initial_arrays=weights_to_record(start),
        num_rounds=cfg.rounds,
        train_config=ConfigRecord({"local-epochs": cfg.local_epochs}),
    )
    history = _history(cfg, result)
    return FederationResult(
        weights=record_to_weights(result.arrays),
        history=history,
        privacy=privacy_report(cfg, history),
    )


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_outputs(out_dir: Path, cfg: TaskConfig, result: FederationResult) -> None:
    """Write ``weights.npz`` and ``metrics.json`` (history + privacy report) atomically."""

    def weights(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **result.weights)

    payload = {
        "config": {k: v for k, v in vars(cfg).items()},
        "history": result.history,
        "privacy": result.privacy.model_dump() if result.privacy else None,
    }
    _atomic_write(out_dir / WEIGHTS_FILE, weights)
    _atomic_write(out_dir / METRICS_FILE, lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Deployment entry point: run the federation and write outputs to ``model-out``."""
    cfg = TaskConfig.from_run_config(context.run_config)
    if not cfg.model_out:
        raise ValueError("run config 'model-out' must name the output folder of the ServerApp")
    result = run_federation(grid, cfg, initial_weights(cfg))
    write_outputs(Path(cfg.model_out), cfg, result)
    logger.info("federation finished; outputs in %s", cfg.model_out)
