"""Federated faults (issue 13): failing or dropped clients, and ε over every contributor.

Three clients, 30 % of train messages fail (half crash inside the client, half lose their reply);
training completes, the reported ε is the maximum over every client that ever released an update
(not over the last round's repliers), and the failures reach MLflow through the round history.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from mlflow.tracking import MlflowClient

from mlops.run_logging import log_privacy, log_round_history
from models.federated.client_app import app as client_app
from models.federated.client_app import handle_train, load_accountant
from models.federated.config import TaskConfig
from models.federated.recommender import (
    FaultPlan,
    FederatedRecommender,
    InProcessGrid,
    node_contexts,
    serverapp_identity,
)
from models.federated.server_app import FederationError, run_federation
from models.privacy.accounting import epsilon_of_history

NUM_ITEMS = 12
ROUNDS = 6
CFG = TaskConfig(
    num_items=NUM_ITEMS,
    embedding_dim=4,
    dropout=0.0,
    batch_size=4,
    local_epochs=1,
    rounds=ROUNDS,
    num_clients=3,
    dp=True,
    target_epsilon=1.0,
    seed=7,
)


@pytest.fixture
def data_path(tmp_path: Path, rng: np.random.Generator) -> Path:
    rows = [
        (f"user-{u}", int((u % 3) * 4 + i))
        for u in range(30)
        for i in rng.choice(4, size=3, replace=False)
    ]
    path = tmp_path / "interactions.parquet"
    pl.DataFrame(rows, schema=["user_id", "item_index"], orient="row").write_parquet(path)
    return path


def _released_epsilon(context: Context, trained: list[int], released: set[int]) -> float:
    """ε of a client's own accountant at its last released round (0 if it never released)."""
    # Opacus merges equal consecutive runs: expand to single steps, then cut per round.
    steps = [(s, q, 1) for s, q, n in load_accountant(context).history for _ in range(n)]
    per_round = len(steps) // len(trained)  # every round runs the same local steps
    assert per_round * len(trained) == len(steps)  # one run per round the client trained
    last = max((i for i, rnd in enumerate(trained) if rnd in released), default=None)
    if last is None:
        return 0.0
    return epsilon_of_history(steps[: (last + 1) * per_round], CFG.target_delta)


def test_thirty_percent_failures_complete_and_epsilon_covers_every_contributor(
    data_path: Path,
) -> None:
    contexts = node_contexts(data_path, CFG)
    faults = FaultPlan(rate=0.3, seed=200)
    with serverapp_identity():
        result = run_federation(InProcessGrid(client_app, contexts, faults=faults), CFG)

    kinds = {kind for _, _, kind in faults.failures}
    assert kinds == {"raise", "drop"}, faults.failures  # both fault kinds are exercised
    assert len(result.history) == ROUNDS
    assert sum(r["client_failures"] for r in result.history) == len(faults.failures)
    assert all(r["clients_sampled"] == 3 for r in result.history)

    crashed = {(rnd, node) for rnd, node, kind in faults.failures if kind == "raise"}
    failed = {(rnd, node) for rnd, node, _ in faults.failures}
    expected = 0.0
    last_round_repliers = 0.0
    for node, context in contexts.items():
        trained = [r for r in range(1, ROUNDS + 1) if (r, node) not in crashed]
        released = {r for r in trained if (r, node) not in failed}
        eps = _released_epsilon(context, trained, released)
        expected = max(expected, eps)
        if ROUNDS in released:
            last_round_repliers = max(last_round_repliers, eps)

    assert result.privacy.epsilon == pytest.approx(expected, rel=1e-9)
    assert result.privacy.epsilon <= CFG.target_epsilon + 1e-6
    assert result.privacy.clients_contributed == 3
    assert result.privacy.client_failures == len(faults.failures)
    # The old report (max over the last round's repliers) would have under-stated ε here.
    assert last_round_repliers < expected
    assert result.history[-1]["epsilon"] == pytest.approx(expected)
    epsilons = [r["epsilon"] for r in result.history]
    assert epsilons == sorted(epsilons)


def _flaky_app(failing: set[tuple[int, int]]) -> ClientApp:
    """The real train handler, except that it raises for the given (round, node) pairs."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        rnd = int(msg.content.config_records["config"]["server-round"])  # type: ignore[arg-type]
        if (rnd, context.node_id) in failing:
            raise OSError(f"disk failure on node {context.node_id}")
        return handle_train(msg, context)

    return app


def test_client_exception_is_a_failed_reply_not_an_abort(data_path: Path) -> None:
    contexts = node_contexts(data_path, CFG)
    failing = {(2, 1), (3, 1), (3, 2)}
    with serverapp_identity():
        result = run_federation(InProcessGrid(_flaky_app(failing), contexts), CFG)
    failures = {r["round"]: r["client_failures"] for r in result.history}
    assert failures == {1: 0, 2: 1, 3: 2, 4: 0, 5: 0, 6: 0}
    # A crashed client's state is as before the call: its accountant has no run for that round.
    steps = {node: sum(n for _, _, n in load_accountant(c).history) for node, c in contexts.items()}
    assert steps[1] * ROUNDS == steps[3] * (ROUNDS - 2)


def test_a_round_where_every_client_fails_is_an_error(data_path: Path) -> None:
    contexts = node_contexts(data_path, CFG)
    failing = {(2, node) for node in contexts}
    with serverapp_identity(), pytest.raises(FederationError, match="round 2.*disk failure"):
        run_federation(InProcessGrid(_flaky_app(failing), contexts), CFG)


def test_failures_are_logged_to_mlflow(tmp_path: Path, rng: np.random.Generator) -> None:
    rows = [
        (f"u{u}", f"item-{(u % 3) * 4 + i}")
        for u in range(36)
        for i in rng.choice(4, size=3, replace=False)
    ]
    df = pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")
    model = FederatedRecommender(
        dp=True,
        num_clients=3,
        rounds=5,
        local_epochs=1,
        embedding_dim=4,
        batch_size=4,
        bias_rounds=0,
        show_progress=False,
        simulated_failure_rate=0.3,
        seed=3,
    ).fit(df)
    assert model.faults.failures
    report = model.privacy_report()
    assert report["client_failures"] == len(model.faults.failures)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("faults")
    with mlflow.start_run() as run:
        log_round_history(model.round_history)
        log_privacy(report)
    client = MlflowClient(tracking_uri=uri)
    logged = client.get_metric_history(run.info.run_id, "round.client_failures")
    assert sum(m.value for m in logged) == len(model.faults.failures)
    assert [m.step for m in logged] == [1, 2, 3, 4, 5]
    stored = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/privacy_report.json")
    assert stored["client_failures"] == len(model.faults.failures)
    assert stored["epsilon"] == pytest.approx(report["epsilon"])
