"""Privacy accounting on top of Opacus's accountants (RDP, PRV): ε for a run, noise for a target ε.

Two mechanisms are accounted here:

* **DP-SGD inside a client** (Opacus): ``steps`` Poisson-subsampled Gaussian steps at
  ``sample_rate`` with ``noise_multiplier``; the privacy unit is one training sample (for the
  federated recommender: one user's whole history).
* **Central DP at the server** (Flower's ``DifferentialPrivacyServerSideFixedClipping``): each
  round the server clips every client update to ``clip`` and adds Gaussian noise of std
  ``noise_multiplier x clip / sampled_clients`` to their uniform average, i.e. the sum has noise
  ``noise_multiplier x clip``: one subsampled Gaussian mechanism per round with sample rate
  ``clients_per_round / total_clients``. The privacy unit is one client's whole update (all of its
  users), so it is user-level DP only when a client is a single user. Accounted with Opacus's RDP
  accountant, not Flower's (which needs Google's ``dp-accounting``, not installed).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from pydantic import BaseModel, ConfigDict, Field

AccountantName = Literal["rdp", "prv"]


class PrivacyParameterError(ValueError):
    """An accounting input is out of range (the message names it)."""


class PrivacyReport(BaseModel):
    """What guarantee a trained model carries, reported next to the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(ge=0)
    """Composed ε at ``delta`` (max over clients for per-client DP-SGD)."""
    delta: float = Field(gt=0, lt=1)
    privacy_unit: str
    """What neighbouring datasets differ by (e.g. one user's whole history)."""
    accountant: str
    """Accountant that computed ``epsilon`` (e.g. ``opacus-rdp``)."""
    noise_multiplier: float = Field(ge=0)
    max_grad_norm: float = Field(gt=0)
    rounds: int = Field(ge=0)
    sample_rate: float = Field(ge=0, le=1)
    """Poisson sampling rate per step (the largest over clients)."""
    mechanism: str = "dp-sgd"
    """``dp-sgd`` (per-client Opacus) or ``central-dp`` (server-side fixed clipping)."""
    steps: int = Field(0, ge=0)
    """Private steps composed by the accountant (per client for DP-SGD)."""
    clients_contributed: int = Field(0, ge=0)
    """Clients that released at least one update (``epsilon`` is the maximum over them)."""
    client_failures: int = Field(0, ge=0)
    """Sampled client-rounds that returned no update (error reply or no reply)."""


def _check(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> None:
    if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise PrivacyParameterError(f"noise_multiplier must be > 0, got {noise_multiplier}")
    if not 0 < sample_rate <= 1:
        raise PrivacyParameterError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if steps < 0:
        raise PrivacyParameterError(f"steps must be >= 0, got {steps}")
    if not 0 < delta < 1:
        raise PrivacyParameterError(f"delta must be in (0, 1), got {delta}")


def compute_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: AccountantName = "rdp",
) -> float:
    """ε after ``steps`` Poisson-subsampled Gaussian steps, by Opacus's RDP or PRV accountant."""
    _check(noise_multiplier, sample_rate, steps, delta)
    if steps == 0:
        return 0.0
    acc = _accountant(accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=delta))


def merge_runs(history: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Consecutive runs with the same noise and sample rate merged (as Opacus records them)."""
    out: list[tuple[float, float, int]] = []
    for s, q, n in history:
        if out and out[-1][0] == float(s) and out[-1][1] == float(q):
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + int(n))
        else:
            out.append((float(s), float(q), int(n)))
    return out


def _accountant(name: str) -> RDPAccountant | PRVAccountant:
    if name == "rdp":
        return RDPAccountant()
    if name == "prv":
        return PRVAccountant()
    raise PrivacyParameterError(f"accountant must be 'rdp' or 'prv', got {name!r}")


def epsilon_of_history(
    history: list[tuple[float, float, int]], delta: float, accountant: AccountantName = "rdp"
) -> float:
    """ε of an Opacus accountant history (``(noise, sample_rate, steps)`` runs), RDP or PRV.

    PRV (Gopi et al. 2021, Opacus's ``PRVAccountant``) returns its upper bound on ε; it composes
    runs of different noise exactly up to discretisation and is tighter than RDP's conversion.
    Memoised on the merged runs: Opacus's fractional-order RDP takes seconds per call, and the
    server ledger and the clients ask for the same histories round after round.
    """
    return _epsilon_of_runs(tuple(merge_runs(history)), float(delta), accountant)


@functools.lru_cache(maxsize=1024)
def _epsilon_of_runs(
    runs: tuple[tuple[float, float, int], ...], delta: float, accountant: str
) -> float:
    acc = _accountant(accountant)
    if not runs:
        return 0.0
    acc.history = list(runs)
    return float(acc.get_epsilon(delta=delta))


def calibrate_noise(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: AccountantName = "rdp",
) -> float:
    """Smallest noise multiplier (within Opacus's 0.01 ε tolerance) whose ε after ``steps`` <= target."""
    if not target_epsilon > 0:
        raise PrivacyParameterError(f"target_epsilon must be > 0, got {target_epsilon}")
    _check(1.0, sample_rate, steps, delta)
    if steps < 1:
        raise PrivacyParameterError("steps must be >= 1 to calibrate noise")
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    )


def calibrate_noise_after(
    history: list[tuple[float, float, int]],
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    tolerance: float = 1e-3,
    accountant: AccountantName = "rdp",
) -> float:
    """Smallest noise multiplier for ``steps`` more steps so the composed ε stays <= target.

    ``history`` is what was (or will be) spent before, as Opacus accountant runs
    ``(noise_multiplier, sample_rate, steps)``. Bisection on the noise with the real accountant:
    the result composes to an ε within ``tolerance`` (relative noise) below ``target_epsilon``.
    Raises :class:`PrivacyParameterError` when ``history`` alone already spends the target.
    """
    if not target_epsilon > 0:
        raise PrivacyParameterError(f"target_epsilon must be > 0, got {target_epsilon}")
    _check(1.0, sample_rate, steps, delta)
    if steps < 1:
        raise PrivacyParameterError("steps must be >= 1 to calibrate noise")
    spent = epsilon_of_history(history, delta, accountant)
    if spent >= target_epsilon:
        raise PrivacyParameterError(
            f"the earlier phases already spend ε={spent:.4f} >= target {target_epsilon}: "
            "give them a smaller budget share"
        )

    def eps(sigma: float) -> float:
        return epsilon_of_history([*history, (sigma, sample_rate, steps)], delta, accountant)

    low, high = 0.05, 1.0
    while eps(high) > target_epsilon:
        low, high = high, high * 2
        if high > 1e6:
            raise PrivacyParameterError("no finite noise multiplier meets the target")
    while high - low > tolerance * high:
        mid = (low + high) / 2
        if eps(mid) > target_epsilon:
            low = mid
        else:
            high = mid
    return float(high)


def central_dp_epsilon(
    noise_multiplier: float,
    clients_per_round: int,
    total_clients: int,
    rounds: int,
    delta: float,
) -> float:
    """ε of server-side fixed-clipping central DP (client-level), Opacus RDP accounting."""
    if not 1 <= clients_per_round <= total_clients:
        raise PrivacyParameterError(
            f"clients_per_round must be in 1..total_clients={total_clients}, "
            f"got {clients_per_round}"
        )
    return compute_epsilon(
        noise_multiplier, clients_per_round / total_clients, rounds, delta, accountant="rdp"
    )
