"""Flower ServerApp: FedAvg over item-side arrays, per-round history, privacy report, outputs.

:func:`run_federation` is the whole server loop; the deployment ServerApp (``main``) and the
in-process driver of :class:`models.federated.recommender.FederatedRecommender` both call it, with
a real Flower ``Grid`` and with :class:`InProcessGrid` respectively.

Aggregation: FedAvg weighted by ``num-examples`` (users per client). Metrics: ``train-loss`` is
averaged with the same weights. Clients hold disjoint users and each client's DP-SGD is
(ε_k, δ)-DP w.r.t. one of its users' histories; a user's history influences only its own client's
updates, so the released sequence of global models is (max_k ε_k, δ)-DP for every user (parallel
composition), which is what the report states.

Privacy under client failures: ``ε`` is the maximum over **every client that ever released an
update**, not over the last round's repliers. :class:`ClientLedger` is a per-client accountant on
the server: each successful reply appends that round's ``(noise-multiplier, sample-rate,
local-steps)`` to its sender's history (a client's ε counts from the moment it released an
update), and a client's ε is the larger of what the server composes from its releases and what the
client's own accountant reports (which also covers rounds whose replies were lost in transit).

Failures: a sampled client that replies with an error (its ClientApp raised) or does not reply is a
failed client for that round. FedAvg aggregates the successful replies; the round's ``clients-*``
figures (sampled / replied / failed) go into the round history, which the nightly logs to MLflow as
``round.client_failures`` etc.; a round in which *no* client succeeded raises
:class:`FederationError` with the clients' reasons (nothing to aggregate is a real failure).

Deployment engine (``flwr run`` with SuperLink/SuperNodes): Flower turns an exception in a ClientApp
into an error reply (``ErrorCode.CLIENT_APP_RAISED_EXCEPTION``) and leaves the node's
``Context.state`` unchanged, so the client accountant does not record the failed round (nothing was
released); a node that does not answer within the strategy's ``timeout`` is simply missing from the
replies; both are counted as failures here. Before every round the server waits until
``num-clients`` nodes are connected (``min_available_nodes``): a node that is gone for good stalls
the next round until it (or a replacement with the same partition) reconnects. The in-process
driver (:class:`models.federated.recommender.InProcessGrid`) reproduces the same semantics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, Strategy

from core.atomic import atomic_path
from models.federated.config import TaskConfig
from models.federated.content import load_item_vectors
from models.federated.noise import PRIVACY_UNIT, accountant_of
from models.federated.task import (
    build_model,
    get_weights,
    record_to_weights,
    weights_to_record,
)
from models.privacy.accounting import AccountantName, PrivacyReport, epsilon_of_history

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


class FederationError(RuntimeError):
    """A round could not aggregate anything: every sampled client failed (reasons in message)."""


@dataclass
class ClientLedger:
    """Server-side per-client privacy accountant over the updates each client *released*.

    ``histories[node]`` holds Opacus accountant runs ``(noise_multiplier, sample_rate, steps)``, one per
    successful reply; ``reported[node]`` the largest ε the client's own accountant reported.
    """

    delta: float
    accountant: AccountantName = "rdp"
    histories: dict[int, list[tuple[float, float, int]]] = field(default_factory=dict)
    reported: dict[int, float] = field(default_factory=dict)

    def record(self, node: int, metrics: MetricRecord) -> None:
        """Account one released update of ``node`` (a successful train reply)."""
        noise = float(metrics["noise-multiplier"])  # type: ignore[arg-type]
        steps = int(metrics["local-steps"])  # type: ignore[arg-type]
        runs = self.histories.setdefault(node, [])
        if noise > 0 and steps > 0:
            runs.append((noise, float(metrics["sample-rate"]), steps))  # type: ignore[arg-type]
        self.reported[node] = max(self.reported.get(node, 0.0), float(metrics["epsilon"]))  # type: ignore[arg-type]

    def epsilon(self, node: int) -> float:
        """ε of one client: its released updates composed here, or its own report if larger."""
        composed = epsilon_of_history(self.histories.get(node, []), self.delta, self.accountant)
        return max(composed, self.reported.get(node, 0.0))

    def max_epsilon(self) -> float:
        """ε of the federation: the maximum over every client that ever released an update."""
        return max((self.epsilon(node) for node in self.histories), default=0.0)

    @property
    def contributors(self) -> int:
        return len(self.histories)


@dataclass(frozen=True)
class RoundStatus:
    """Who was asked to train in a round, who replied, and why the others failed."""

    sampled: int
    replied: int
    errors: tuple[str, ...] = ()

    @property
    def failed(self) -> int:
        return self.sampled - self.replied


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
    """FedAvg with a deterministic aggregation order (replies sorted by source node), a
    per-client privacy ledger and per-round failure counts (see the module docstring)."""

    def __init__(
        self, *args: Any, delta: float = 1e-5, accountant: AccountantName = "rdp", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = ClientLedger(delta, accountant)
        self.status: dict[int, RoundStatus] = {}
        self._sampled: dict[int, int] = {}
        self.epsilon_by_round: dict[int, float] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._sampled[server_round] = len(messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ordered = sorted(replies, key=lambda m: m.metadata.src_node_id)
        good = [m for m in ordered if not m.has_error()]
        errors = tuple(
            f"node {m.metadata.src_node_id}: {m.error.reason}" for m in ordered if m.has_error()
        )
        sampled = max(self._sampled.get(server_round, len(ordered)), len(ordered))
        self.status[server_round] = RoundStatus(sampled, len(good), errors)
        if not good:
            raise FederationError(
                f"round {server_round}: none of the {sampled} sampled clients returned an update "
                f"({len(errors)} errors, {sampled - len(errors)} without reply): {list(errors)}"
            )
        if sampled > len(good):
            logger.warning(
                "round %d: %d of %d clients failed (%s)",
                server_round,
                sampled - len(good),
                sampled,
                "; ".join(errors) or "no reply",
            )
        for msg in good:
            self.ledger.record(msg.metadata.src_node_id, _train_metrics(msg.content))
        self.epsilon_by_round[server_round] = self.ledger.max_epsilon()
        return super().aggregate_train(server_round, good)


def _train_metrics(content: RecordDict) -> MetricRecord:
    return next(iter(content.metric_records.values()))


def build_strategy(cfg: TaskConfig) -> Strategy:
    """FedAvg over all ``num-clients`` each round, optionally wrapped in central DP."""
    evaluate = cfg.validation_fraction > 0
    strategy = ItemFedAvg(
        delta=cfg.target_delta,
        accountant=accountant_of(cfg),
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


def item_strategy(strategy: Strategy) -> ItemFedAvg:
    """The :class:`ItemFedAvg` inside ``strategy`` (itself, or wrapped by central DP)."""
    inner = getattr(strategy, "strategy", strategy)
    if not isinstance(inner, ItemFedAvg):
        raise TypeError(f"expected an ItemFedAvg strategy, got {type(inner).__name__}")
    return inner


def _history(cfg: TaskConfig, result: Any, strategy: ItemFedAvg) -> list[dict[str, float]]:
    rows = []
    central: list[tuple[float, float, int]] = []
    for rnd in range(1, cfg.rounds + 1):
        row: dict[str, float] = {"round": rnd}
        train = result.train_metrics_clientapp.get(rnd)
        status = strategy.status.get(rnd)
        if train is None or status is None:
            why = (
                "Flower's central-DP wrapper skips aggregation when any client fails"
                if cfg.central_dp
                else "no client replied successfully"
            )
            raise FederationError(f"round {rnd}: nothing was aggregated ({why}; see Flower log)")
        row["train_loss"] = float(train["train-loss"])
        row["num_examples"] = int(train["num-examples"])
        row["epsilon"] = strategy.epsilon_by_round[rnd]
        row["noise_multiplier"] = float(train["noise-multiplier"])
        row["sample_rate"] = float(train["sample-rate"])
        row["local_steps"] = int(train["local-steps"])
        row["clients_sampled"] = status.sampled
        row["clients_replied"] = status.replied
        row["client_failures"] = status.failed
        row["client_failure_rate"] = status.failed / status.sampled if status.sampled else 0.0
        if cfg.central_dp:
            # Flower's wrapper adds noise z x clip / num_clients to the mean of the m replies
            # that arrived: the sum's noise is z x clip x m / num_clients (smaller when clients
            # failed), so each round is accounted at that effective multiplier.
            effective = cfg.central_noise_multiplier * status.replied / cfg.num_clients
            central.append((effective, 1.0, 1))
            row["central_epsilon"] = epsilon_of_history(central, cfg.target_delta)
        evaluated = result.evaluate_metrics_clientapp.get(rnd)
        if evaluated is not None:
            row["val_loss"] = float(evaluated["eval-loss"])
            row["val_ndcg_at_10"] = float(evaluated["ndcg-at-10"])
        rows.append(row)
    return rows


def privacy_report(
    cfg: TaskConfig, history: list[dict[str, float]], ledger: ClientLedger | None = None
) -> PrivacyReport | None:
    """The guarantee of the final model, or ``None`` when trained without any DP.

    ``ledger`` (the server's per-client accountant) gives ε as the maximum over every client that
    ever released an update; without it, the largest per-round figure of ``history``.
    """
    last = history[-1] if history else {}
    failures = int(sum(r.get("client_failures", 0) for r in history))
    if cfg.dp:
        epsilon = ledger.max_epsilon() if ledger is not None else max(r["epsilon"] for r in history)
        return PrivacyReport(
            epsilon=float(epsilon),
            delta=cfg.target_delta,
            privacy_unit=PRIVACY_UNIT,
            accountant=f"opacus-{accountant_of(cfg)} (max over clients, parallel composition)",
            noise_multiplier=float(last["noise_multiplier"]),
            max_grad_norm=cfg.max_grad_norm,
            rounds=cfg.rounds,
            sample_rate=float(last["sample_rate"]),
            mechanism="dp-sgd",
            steps=int(sum(r["local_steps"] for r in history)),
            clients_contributed=ledger.contributors if ledger is not None else cfg.num_clients,
            client_failures=failures,
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
            clients_contributed=ledger.contributors if ledger is not None else cfg.num_clients,
            client_failures=failures,
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
    inner = item_strategy(strategy)
    history = _history(cfg, result, inner)
    return FederationResult(
        weights=record_to_weights(result.arrays),
        history=history,
        privacy=privacy_report(cfg, history, inner.ledger),
    )


def _atomic_write(path: Path, write: Any) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


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
