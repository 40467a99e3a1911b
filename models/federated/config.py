"""Settings of one federation: :class:`TaskConfig`, read once from Flower's run config.

The kebab-case ``[tool.flwr.app.config]`` keys (``num-items``, ``target-epsilon`` ...) map to the
snake_case fields below; :meth:`TaskConfig.from_run_config` casts and checks them once, so the
rest of the package works with typed values. Defaults for the recommender's centralized and DP
modes live in :func:`models.federated.recommender.defaults`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


class FederatedConfigError(ValueError):
    """A run-config value is missing or has the wrong type (the message names the key)."""


@dataclass(frozen=True)
class TaskConfig:
    """Settings of one federation, read once from the kebab-case ``[tool.flwr.app.config]``."""

    num_items: int
    """Size of the public item catalogue (model input and output width)."""
    embedding_dim: int = 200
    """Width ``d`` of the item embedding bag and the output layer."""
    dropout: float = 0.5
    """Input dropout on the history vector while training (denoising)."""
    learning_rate: float = 1e-3
    """Learning rate of the local optimiser."""
    optimizer: str = "adam"
    """Local optimiser: ``adam`` or ``sgd`` (SGD with momentum 0.9; averages DP noise better)."""
    bias_rounds: int = 0
    """First rounds train only the output bias (item popularity: 1 x n_items noised values
    instead of the whole model), a DP warm start; later rounds train everything trainable."""
    bias_budget: float = 0.5
    """Under DP with ``0 < bias_rounds < rounds``: the bias rounds get the noise that would spend
    ``bias_budget x target_epsilon`` on their own; the later rounds get the smallest noise that
    keeps the composed ε of the whole run <= ``target_epsilon`` (by ``accountant``)."""
    bias_learning_rate: float | None = None
    """Learning rate of the bias rounds (``None``: ``learning_rate``). A one-step bias round moves
    the bias by lr x (mean clipped gradient), so it sets the scale of the popularity prior."""
    bias_local_epochs: int | None = None
    """Local epochs of the bias rounds (``None``: ``local_epochs``). With a full batch one step is
    one Gaussian release of the clipped, normalised item histogram: the DP popularity count."""
    candidate_items: int = 0
    """> 0: bias rounds after the first train only the top-N items of the received global bias
    (itself a DP release, so the choice is post-processing): the noise of later bias rounds falls
    on N items instead of the catalogue, and items outside the top-N are put at the candidates'
    lowest bias."""
    public_prior: bool = False
    """The initial global bias is a PUBLIC popularity prior (e.g. TMDB vote counts; see
    :func:`models.federated.content.public_popularity_prior`): already bias round 1 counts only
    its top ``candidate_items``, so no privacy budget is spent on finding the candidates."""
    train_bias_after_warmup: bool = True
    """Whether rounds after the bias rounds keep training the bias (False: they train only the
    other trainable parameters, so no further noise lands on the n_items bias coordinates)."""
    train_mixing: bool = False
    """Content model: also train the d x d mixing matrix next to the scalar similarity weight
    (default: only the scalar, one private number besides the bias; on ML-100k at ε=1 the
    noised 32 x 32 matrix scored nDCG@10 0.21 against 0.29 for the scalar alone)."""
    content_dim: int = 0
    """> 0: the model is a :class:`ContentAutoencoder` whose item vectors (num_items x
    content_dim) are PUBLIC content features (never trained) that arrive in the global arrays;
    only a content_dim x content_dim mixing matrix and the item bias are learnt."""
    freeze_encoder: bool = False
    """Keep the encoder at its seeded random initialisation (a public random sketch of the
    history, never trained): halves the noised parameters under DP."""
    weight_decay: float = 0.0
    """L2 penalty of the local optimiser."""
    batch_size: int = 128
    """Expected local batch size (Poisson-sampled under DP)."""
    local_epochs: int = 1
    """Passes over the client's users per round."""
    rounds: int = 10
    """Federated rounds (needed up front to calibrate the DP noise)."""
    num_clients: int = 2
    """Clients (partitions) taking part; every round trains on all of them."""
    dp: bool = False
    """Train with Opacus DP-SGD (user-level, per-client accountant)."""
    target_epsilon: float = 1.0
    """ε each client may spend over the whole federation."""
    target_delta: float = 1e-5
    """δ of the guarantee."""
    max_grad_norm: float = 1.0
    """Per-user gradient clipping bound (DP only)."""
    accountant: str = "rdp"
    """Opacus accountant that calibrates the noise and reports ε: ``rdp`` or ``prv``."""
    noise_multiplier: float | None = None
    """Fixed noise multiplier; ``None`` calibrates it from ε, δ, rounds and the sample rate."""
    seed: int = 42
    """Seed of model initialisation, dropout, sampling and noise."""
    central_dp: bool = False
    """Server-side fixed-clipping central DP on client updates (Flower wrapper, client-level)."""
    central_noise_multiplier: float = 1.0
    """Noise multiplier of central DP (std = multiplier x clip / sampled clients)."""
    central_clip: float = 1.0
    """L2 clipping bound of each client's update under central DP."""
    validation_fraction: float = 0.0
    """Share of each user's items a client holds out for federated evaluation (0 = none)."""
    data_path: str = ""
    """Parquet file of interactions (deployment engine; node config may override it)."""
    model_out: str = ""
    """Where the ServerApp writes the final model and metrics (deployment engine)."""
    item_vectors_path: str = ""
    """``.npy`` of public item vectors (num_items x content_dim) the deployment ServerApp loads
    into the initial model when ``content-dim`` > 0 (see :func:`load_item_vectors`)."""

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object]) -> TaskConfig:
        """Cast the kebab-case run config (``num-items`` ...) into typed fields, once."""
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key not in run_config:
                continue
            raw = run_config[key]
            values[f.name] = _cast(key, raw, f.type)
        if "num_items" not in values:
            raise FederatedConfigError("run config is missing 'num-items'")
        return cls(**values)  # type: ignore[arg-type]


def _cast(key: str, raw: object, type_name: object) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise TypeError
            return int(raw)  # type: ignore[arg-type]
        if kind == "float":
            return float(raw)  # type: ignore[arg-type]
        if kind == "int | None":
            if raw in ("", None) or (isinstance(raw, int | float) and raw < 0):
                return None
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise TypeError
            return int(raw)  # type: ignore[arg-type]
        if kind == "float | None":
            if isinstance(raw, bool):
                raise TypeError
            negative = isinstance(raw, int | float) and raw < 0
            return None if raw in ("", None) or negative else float(raw)  # type: ignore[arg-type]
        if kind == "bool":
            if not isinstance(raw, bool):
                raise TypeError
            return raw
        if kind == "str":
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise FederatedConfigError(f"run config {key!r}={raw!r} is not a valid {kind}") from exc
    raise FederatedConfigError(f"run config {key!r}: unsupported field type {kind}")
