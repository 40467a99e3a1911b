"""Flower ClientApp: thin handlers around :mod:`models.federated.task`.

A client reads its users' histories from a local Parquet file (``data-path`` in the node config,
else in the run config) and its partition from the node config (``partition-id``,
``num-partitions``). Replies carry only item-side arrays and aggregate metrics (``num-examples``,
``train-loss``, ``epsilon``...), never user ids or histories. Besides train/evaluate, a
``query.gram`` message asks for the partition's item-item Gram (federated EASE; with ``alpha`` in
its config, the weighted Gram of federated RP3beta).

The client's RDP accountant history lives in ``context.state["privacy"]`` (a ConfigRecord), so ε
keeps composing across rounds even when the deployment engine recreates the ClientApp for every
message.
"""

from __future__ import annotations

import logging

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from models.federated.config import TaskConfig
from models.federated.data import ClientData, FederatedDataError, load_partition
from models.federated.gram import gram_reply
from models.federated.noise import AccountantState
from models.federated.task import (
    evaluate_local,
    record_to_weights,
    round_plan,
    train_local,
    weights_to_record,
)

logger = logging.getLogger(__name__)

PRIVACY_STATE_KEY = "privacy"

app = ClientApp()


def load_accountant(context: Context) -> AccountantState:
    """The client's accountant history restored from ``context.state`` (empty on first use)."""
    if PRIVACY_STATE_KEY not in context.state.config_records:
        return AccountantState()
    rec = context.state.config_records[PRIVACY_STATE_KEY]
    noise, rates, steps = rec["noise"], rec["rate"], rec["steps"]
    return AccountantState(
        [(float(s), float(q), int(n)) for s, q, n in zip(noise, rates, steps, strict=True)]  # type: ignore[arg-type]
    )


def store_accountant(context: Context, state: AccountantState) -> None:
    """Persist the accountant history into ``context.state`` (overwrites the previous one)."""
    context.state[PRIVACY_STATE_KEY] = ConfigRecord(
        {
            "noise": [float(s) for s, _, _ in state.history],
            "rate": [float(q) for _, q, _ in state.history],
            "steps": [int(n) for _, _, n in state.history],
        }
    )


def client_data(context: Context, cfg: TaskConfig) -> ClientData:
    """Load this node's partition as configured by node config (preferred) and run config."""
    node = context.node_config
    for key in ("partition-id", "num-partitions"):
        if key not in node:
            raise FederatedDataError(f"node config is missing {key!r}")
    path = str(node.get("data-path", cfg.data_path))
    if not path:
        raise FederatedDataError("no 'data-path' in node config or run config")
    return load_partition(
        path,
        partition_id=int(node["partition-id"]),
        num_partitions=int(node["num-partitions"]),
        num_items=cfg.num_items,
        seed=cfg.seed,
        validation_fraction=cfg.validation_fraction,
    )


def _server_round(msg: Message) -> int:
    config = msg.content.config_records.get("config", ConfigRecord())
    return int(config.get("server-round", 0))  # type: ignore[arg-type]


def handle_train(msg: Message, context: Context) -> Message:
    """Train the received global arrays on local histories; reply with arrays and metrics."""
    cfg = TaskConfig.from_run_config(context.run_config)
    data = client_data(context, cfg)
    weights = record_to_weights(msg.content.array_records["arrays"])
    accountant = load_accountant(context)
    partition = int(context.node_config["partition-id"])
    server_round = _server_round(msg)
    bias_only, candidates = round_plan(weights, cfg, server_round)
    result = train_local(
        weights,
        data.train,
        cfg,
        round_seed=cfg.seed * 1_000_003 + server_round * 1_009 + partition,
        accountant=accountant,
        bias_only=bias_only,
        candidates=candidates,
    )
    if cfg.dp:
        store_accountant(context, accountant)
    metrics = MetricRecord(
        {
            "num-examples": result.num_examples,
            "unit-weight": 1.0,
            "train-loss": result.loss,
            "epsilon": result.epsilon,
            "noise-multiplier": result.noise_multiplier,
            "sample-rate": result.sample_rate,
            "local-steps": result.steps,
        }
    )
    content = RecordDict({"arrays": weights_to_record(result.weights), "metrics": metrics})
    return Message(content=content, reply_to=msg)


def handle_evaluate(msg: Message, context: Context) -> Message:
    """Score the global model on the client's held-out items (needs ``validation-fraction`` > 0)."""
    cfg = TaskConfig.from_run_config(context.run_config)
    data = client_data(context, cfg)
    weights = record_to_weights(msg.content.array_records["arrays"])
    loss, ndcg, users = evaluate_local(weights, data.train, data.heldout, cfg)
    if users == 0:
        raise FederatedDataError(
            "evaluation requested but this client holds no validation items "
            "(set validation-fraction > 0)"
        )
    metrics = MetricRecord({"num-examples": users, "eval-loss": loss, "ndcg-at-10": ndcg})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


def handle_gram(msg: Message, context: Context) -> Message:
    """Reply with this partition's item-item Gram ``XᵀX`` over its users' training histories
    (packed upper triangle, float32), per-item weight sums and the user count (federated EASE:
    :mod:`models.federated.gram`). With ``alpha`` in the config, the RP3beta-weighted Gram plus
    per-item degrees instead (federated RP3beta)."""
    cfg = TaskConfig.from_run_config(context.run_config)
    config = msg.content.config_records.get("config", ConfigRecord())
    asked = int(config.get("num-items", cfg.num_items))  # type: ignore[arg-type]
    if asked != cfg.num_items:
        raise FederatedDataError(
            f"the server asks for a Gram over {asked} items, this run has {cfg.num_items}"
        )
    alpha = float(config["alpha"]) if "alpha" in config else None  # type: ignore[arg-type]
    data = client_data(context, cfg)
    node = context.node_config
    content = gram_reply(
        data.train, int(node["partition-id"]), int(node["num-partitions"]), alpha=alpha
    )
    return Message(content=content, reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    return handle_train(msg, context)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return handle_evaluate(msg, context)


@app.query("gram")
def gram(msg: Message, context: Context) -> Message:
    return handle_gram(msg, context)
