"""Privacy accounting: our wrappers agree with Opacus's accountants and behave monotonically."""

from __future__ import annotations

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from models.federated.config import FederatedConfigError, TaskConfig
from models.federated.noise import (
    AccountantState,
    calibrated_noise,
    noise_schedule,
    privacy_plan,
    steps_per_epoch,
)
from models.privacy.accounting import (
    PrivacyParameterError,
    PrivacyReport,
    calibrate_noise,
    calibrate_noise_after,
    central_dp_epsilon,
    compute_epsilon,
    epsilon_of_history,
    merge_runs,
)


@pytest.mark.parametrize("name,cls", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_epsilon_equals_opacus_accountant(name: str, cls: type) -> None:
    acc = cls()
    for _ in range(120):
        acc.step(noise_multiplier=1.3, sample_rate=0.05)
    expected = acc.get_epsilon(delta=1e-5)
    assert compute_epsilon(1.3, 0.05, 120, 1e-5, accountant=name) == pytest.approx(expected)


def test_epsilon_grows_with_steps_and_shrinks_with_noise() -> None:
    eps = [compute_epsilon(1.0, 0.1, steps, 1e-5) for steps in (10, 50, 200)]
    assert eps[0] < eps[1] < eps[2]
    assert compute_epsilon(2.0, 0.1, 50, 1e-5) < eps[1]
    assert compute_epsilon(1.0, 0.1, 0, 1e-5) == 0.0


def test_calibrated_noise_meets_the_target_for_the_total_steps() -> None:
    sigma = calibrate_noise(1.0, 1e-5, sample_rate=0.25, steps=120)
    eps = compute_epsilon(sigma, 0.25, 120, 1e-5)
    assert 0.98 <= eps <= 1.0
    # the task calibrates for rounds x local epochs x steps per epoch of a client
    cfg = TaskConfig(num_items=10, dp=True, rounds=4, local_epochs=2, batch_size=32)
    spe = steps_per_epoch(100, 32)
    assert calibrated_noise(cfg, 100) == pytest.approx(
        calibrate_noise(1.0, 1e-5, 1 / spe, 4 * 2 * spe)
    )


def test_accountant_history_composes_like_one_run() -> None:
    split = AccountantState([(1.1, 0.2, 30)])
    split.history.append((1.1, 0.2, 20))  # a second round with the same mechanism
    assert split.epsilon(1e-5) == pytest.approx(compute_epsilon(1.1, 0.2, 50, 1e-5))
    assert split.steps == 50
    assert epsilon_of_history([], 1e-5) == 0.0


def test_central_dp_uses_client_sampling_rate() -> None:
    assert central_dp_epsilon(1.5, 5, 20, 30, 1e-5) == pytest.approx(
        compute_epsilon(1.5, 0.25, 30, 1e-5)
    )
    with pytest.raises(PrivacyParameterError, match="clients_per_round"):
        central_dp_epsilon(1.5, 30, 20, 30, 1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"delta": 0.0}, "delta"),
        ({"steps": -1}, "steps"),
        ({"accountant": "gdp2"}, "accountant"),
    ],
)
def test_bad_inputs_raise_typed_errors(kwargs: dict, match: str) -> None:
    args = {"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 10, "delta": 1e-5, **kwargs}
    with pytest.raises(PrivacyParameterError, match=match):
        compute_epsilon(**args)


def test_privacy_report_validates() -> None:
    report = PrivacyReport(
        epsilon=0.9,
        delta=1e-5,
        privacy_unit="one user's whole interaction history",
        accountant="opacus-rdp",
        noise_multiplier=3.0,
        max_grad_norm=1.0,
        rounds=5,
        sample_rate=0.5,
    )
    assert report.model_dump()["mechanism"] == "dp-sgd"
    with pytest.raises(ValueError):
        PrivacyReport(**{**report.model_dump(), "delta": 2.0})


def test_noise_after_earlier_phase_meets_the_target_exactly() -> None:
    earlier = [(6.0, 1.0, 2)]
    sigma = calibrate_noise_after(earlier, 1.0, 1e-5, sample_rate=1.0, steps=10)
    total = epsilon_of_history([*earlier, (sigma, 1.0, 10)], 1e-5)
    assert 0.99 <= total <= 1.0
    # a little less noise would overspend: the calibration is tight, not merely safe
    assert epsilon_of_history([*earlier, (sigma * 0.98, 1.0, 10)], 1e-5) > 1.0
    with pytest.raises(PrivacyParameterError, match="already spend"):
        calibrate_noise_after([(0.5, 1.0, 10)], 1.0, 1e-5, sample_rate=1.0, steps=1)


def test_two_phase_schedule_splits_the_budget_and_composes_to_the_target() -> None:
    cfg = TaskConfig(
        num_items=10,
        dp=True,
        rounds=4,
        bias_rounds=2,
        bias_local_epochs=1,
        local_epochs=5,
        batch_size=10_000,
        bias_budget=0.9,
    )
    schedule = noise_schedule(cfg, 300)
    plan = dict(privacy_plan(cfg, 300))
    assert plan == {"bias": 2, "main": 10}  # full batch: one step per epoch
    # the bias phase alone spends 90% of ε; both phases compose to (just under) the target
    assert compute_epsilon(schedule.bias, 1.0, 2, 1e-5) == pytest.approx(0.9, abs=0.01)
    history = [(schedule.bias, 1.0, 2), (schedule.main, 1.0, 10)]
    assert 0.99 <= epsilon_of_history(history, 1e-5) <= 1.0
    with pytest.raises(FederatedConfigError, match="bias-budget"):
        noise_schedule(TaskConfig(**{**vars(cfg), "bias_budget": 1.0}), 300)


def test_history_runs_merge_as_opacus_records_them() -> None:
    runs = [(1.1, 0.2, 3), (1.1, 0.2, 3), (2.0, 1.0, 1), (1.1, 0.2, 3)]
    assert merge_runs(runs) == [(1.1, 0.2, 6), (2.0, 1.0, 1), (1.1, 0.2, 3)]
    acc = RDPAccountant()
    acc.history = list(runs)
    assert epsilon_of_history(runs, 1e-5) == pytest.approx(acc.get_epsilon(delta=1e-5))


def test_server_ledger_takes_the_max_over_every_client_that_released() -> None:
    from flwr.app import MetricRecord

    from models.federated.server_app import ClientLedger

    def reply(eps: float, noise: float = 2.0) -> MetricRecord:
        return MetricRecord(
            {"epsilon": eps, "noise-multiplier": noise, "sample-rate": 0.5, "local-steps": 2}
        )

    ledger = ClientLedger(1e-5)
    ledger.record(1, reply(0.3))
    ledger.record(1, reply(0.5))  # client 1 released twice, then failed for good
    ledger.record(2, reply(0.3))  # client 2 released once
    two_rounds = compute_epsilon(2.0, 0.5, 4, 1e-5)
    assert ledger.epsilon(1) == pytest.approx(max(two_rounds, 0.5))
    assert ledger.max_epsilon() == ledger.epsilon(1) > ledger.epsilon(2)
    assert ledger.contributors == 2
    ledger.record(3, reply(5.0, noise=0.0))  # a client whose own accountant reports more
    assert ledger.max_epsilon() == 5.0


def test_prv_schedule_needs_less_noise_and_composes_to_the_target_by_prv() -> None:
    cfg = TaskConfig(
        num_items=10,
        dp=True,
        rounds=4,
        bias_rounds=2,
        bias_local_epochs=1,
        local_epochs=5,
        batch_size=10_000,
        bias_budget=0.9,
    )
    rdp = noise_schedule(cfg, 300)
    prv_cfg = TaskConfig(**{**vars(cfg), "accountant": "prv"})
    prv = noise_schedule(prv_cfg, 300)
    # same (ε, δ), tighter accounting: PRV calibrates less noise in both phases
    assert prv.bias < 0.97 * rdp.bias and prv.main < 0.97 * rdp.main
    history = [(prv.bias, 1.0, 2), (prv.main, 1.0, 10)]
    assert 0.99 <= epsilon_of_history(history, 1e-5, "prv") <= 1.0
    assert epsilon_of_history(history, 1e-5, "rdp") > 1.0  # RDP cannot certify that noise
    with pytest.raises(FederatedConfigError, match="accountant"):
        noise_schedule(TaskConfig(**{**vars(cfg), "accountant": "gdp"}), 300)
    with pytest.raises(PrivacyParameterError, match="accountant"):
        epsilon_of_history([(1.0, 1.0, 1)], 1e-5, "gdp")  # type: ignore[arg-type]
