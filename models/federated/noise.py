"""The noise plan of a federation: per-client steps, sample rate and calibrated noise multipliers.

Privacy unit: ONE USER'S WHOLE HISTORY. With DP enabled each client trains with Opacus DP-SGD
where one Opacus sample is one user's history row, so per-sample clipping bounds the influence of
a user's entire history (user-level DP within each client). Batches are Poisson-sampled (Opacus
``DPDataLoader``) as the accountant assumes. The noise multiplier is calibrated once, before
training, for the *total* number of local steps of the whole federation
(``rounds x local_epochs x steps_per_epoch``) at the client's sample rate, so the composed ε of a
client after the last round is <= the target. The accountant's history is carried across rounds
(see :class:`AccountantState`), never reset.

Users are partitioned disjointly across clients, so by parallel composition the federation as a
whole is (max_k ε_k, δ)-DP with respect to any single user's history: the reported ε is the maximum
over clients of each client's composed ε. Not covered by ε: the scalar aggregates a client reports
next to the weights (``num-examples``, ``train-loss``, and evaluation metrics when
``validation-fraction`` > 0).

DP schedule (defaults in :func:`models.federated.recommender.defaults`): the bias rounds and the
later rounds get their noise from one budget split (``bias-budget``), composed by the same
per-client accountant (``accountant``: Opacus's RDP or PRV; :func:`noise_schedule`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from models.federated.config import FederatedConfigError, TaskConfig
from models.privacy.accounting import (
    AccountantName,
    PrivacyParameterError,
    calibrate_noise,
    calibrate_noise_after,
    epsilon_of_history,
)

PRIVACY_UNIT = "one user's whole interaction history (user-level DP within each client)"
ACCOUNTANTS = ("rdp", "prv")


@dataclass
class AccountantState:
    """The RDP accountant history of one client: ``(noise_multiplier, sample_rate, steps)`` runs.

    It survives ClientApp re-creation by being stored in ``Context.state`` (see client_app.py).
    """

    history: list[tuple[float, float, int]] = field(default_factory=list)

    def epsilon(self, delta: float, accountant: AccountantName = "rdp") -> float:
        """Composed ε so far by ``accountant`` (0 before any private step)."""
        if not self.history:
            return 0.0
        return epsilon_of_history(self.history, delta, accountant)

    @property
    def steps(self) -> int:
        return sum(int(s) for _, _, s in self.history)


def steps_per_epoch(num_users: int, batch_size: int) -> int:
    """Local steps in one epoch: Opacus's Poisson loader keeps the plain loader's length."""
    if num_users <= 0:
        raise ValueError("a client needs at least one user to train")
    return math.ceil(num_users / batch_size)


def sample_rate(num_users: int, batch_size: int) -> float:
    """Poisson sampling rate of a client (``1 / steps_per_epoch``, as Opacus sets it)."""
    return 1.0 / steps_per_epoch(num_users, batch_size)


@dataclass(frozen=True)
class NoiseSchedule:
    """Noise multipliers of one client: ``bias`` for the bias rounds, ``main`` for the others."""

    bias: float
    main: float


def round_epochs(cfg: TaskConfig, bias_round: bool) -> int:
    """Local epochs of a bias round (``bias_local_epochs`` if set) or of a main round."""
    if bias_round and cfg.bias_local_epochs is not None:
        return cfg.bias_local_epochs
    return cfg.local_epochs


def privacy_plan(cfg: TaskConfig, num_users: int) -> list[tuple[str, int]]:
    """Private steps of a client per phase: ``[("bias", steps), ("main", steps)]`` (non-empty)."""
    spe = steps_per_epoch(num_users, cfg.batch_size)
    bias_rounds = min(max(cfg.bias_rounds, 0), cfg.rounds)
    plan = []
    if bias_rounds:
        plan.append(("bias", bias_rounds * round_epochs(cfg, True) * spe))
    if cfg.rounds > bias_rounds:
        plan.append(("main", (cfg.rounds - bias_rounds) * round_epochs(cfg, False) * spe))
    return plan


def accountant_of(cfg: TaskConfig) -> AccountantName:
    """The configured accountant, checked."""
    if cfg.accountant == "rdp":
        return "rdp"
    if cfg.accountant == "prv":
        return "prv"
    raise FederatedConfigError(
        f"run config 'accountant' must be one of {', '.join(ACCOUNTANTS)}, got {cfg.accountant!r}"
    )


@functools.lru_cache(maxsize=64)
def noise_schedule(cfg: TaskConfig, num_users: int) -> NoiseSchedule:
    """Noise multipliers so that the whole run composes to ``cfg.target_epsilon`` (by the
    configured accountant).

    One phase: the noise for all its steps. Bias rounds followed by main rounds: the bias phase
    gets the noise spending ``bias_budget x target_epsilon`` alone, the main phase the smallest
    noise keeping the composition of both <= ``target_epsilon``. A fixed ``noise_multiplier``
    applies to both phases.
    """
    if cfg.noise_multiplier is not None:
        return NoiseSchedule(cfg.noise_multiplier, cfg.noise_multiplier)
    rate = sample_rate(num_users, cfg.batch_size)
    plan = dict(privacy_plan(cfg, num_users))
    if len(plan) == 1:
        ((_, steps),) = plan.items()
        sigma = calibrate_noise(
            cfg.target_epsilon, cfg.target_delta, rate, steps, accountant=accountant_of(cfg)
        )
        return NoiseSchedule(sigma, sigma)
    if not 0.0 < cfg.bias_budget < 1.0:
        raise FederatedConfigError(
            f"run config 'bias-budget' must be in (0, 1) with bias rounds, got {cfg.bias_budget}"
        )
    bias = calibrate_noise(
        cfg.bias_budget * cfg.target_epsilon,
        cfg.target_delta,
        rate,
        plan["bias"],
        accountant=accountant_of(cfg),
    )
    try:
        main = calibrate_noise_after(
            [(bias, rate, plan["bias"])],
            cfg.target_epsilon,
            cfg.target_delta,
            rate,
            plan["main"],
            accountant=accountant_of(cfg),
        )
    except PrivacyParameterError as exc:
        raise FederatedConfigError(f"run config 'bias-budget'={cfg.bias_budget}: {exc}") from exc
    return NoiseSchedule(bias, main)


def calibrated_noise(cfg: TaskConfig, num_users: int) -> float:
    """Noise multiplier of the main (non-bias) rounds; see :func:`noise_schedule`."""
    return noise_schedule(cfg, num_users).main
