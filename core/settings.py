"""Typed settings, layered by pydantic-settings sources and validated by pydantic.

Layers, lowest precedence first (nested mappings merge, lists and scalars replace):

1. ``configs/base.yaml``;
2. the overlays, in order: the arguments of :func:`load_settings` (the CLI's ``--config``), else
   ``MEDIA_GATEWAY_CONFIG`` (a comma-separated list of paths, read when :func:`load_settings` is
   called, never at import time);
3. environment variables ``MEDIA_GATEWAY_<SECTION>__<KEY>`` (``__`` descends one level, e.g.
   ``MEDIA_GATEWAY_SERVING__PORT=8080``; lists and mappings as JSON);
4. ``overrides`` passed to :func:`load_settings` (tests, benchmarks).

Each YAML file is one :class:`YamlLayer` source; a validation error names the key and the layer
(file or variable) that set it. Secrets such as ``TMDB_API_KEY`` or ``GEMINI_API_KEY`` are not
settings: only the code that needs them reads them from the environment.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from core import PROJECT_ROOT

CONFIG_ENV = "MEDIA_GATEWAY_CONFIG"
ENV_PREFIX = "MEDIA_GATEWAY_"
ENV_NESTED_DELIMITER = "__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathsSettings(_Strict):
    lake: Path
    """Folder of Parquet tables, one sub-folder per table."""
    lancedb: str
    """LanceDB database: a local folder, or an object-store URI (``s3://bucket/prefix``,
    ``gs://...``, ``az://...``) that LanceDB opens natively (credentials from the environment)."""
    mlflow_uri: str
    """MLflow tracking URI (``sqlite:///...`` by default)."""
    mlflow_artifacts: Path
    """Artifact root used when the tracking store is local."""
    inbox: Path
    """Export files dropped here are imported by the inbox sensor."""
    models: Path
    """Trained model directories."""
    dagster_home: Path = Path("var/dagster")
    """DAGSTER_HOME used by `media-gateway nightly` (run history in local SQLite)."""
    feedback: Path
    """Append-only feedback log written by the API and read by the nightly run."""


class TMDBSettings(_Strict):
    mode: Literal["live", "recorded"] = "recorded"
    base_url: str = "https://api.themoviedb.org/3"
    exports_url: str = "https://files.tmdb.org/p/exports"
    max_concurrency: int = Field(8, ge=1, le=64)
    max_retries: int = Field(5, ge=0, le=20)
    discover_pages: int = Field(5, ge=1, le=500)


class JustWatchSettings(_Strict):
    mode: Literal["live", "recorded"] = "recorded"
    url: str = "https://apis.justwatch.com/graphql"
    language: str = "en"


class HistoryImport(_Strict):
    """One export file (or folder) the pipeline imports on every run (idempotent)."""

    format: Literal[
        "movielens", "movielens-100k", "netflix", "netflix-activity", "letterboxd", "imdb", "trakt"
    ]
    user: str
    path: Path


class SourcesSettings(_Strict):
    tmdb: TMDBSettings = TMDBSettings()
    justwatch: JustWatchSettings = JustWatchSettings()
    recorded_dir: Path = Path("data/sample/recorded")
    """Recorded TMDB/JustWatch responses read by the recorded sources in ``recorded`` mode."""
    platform_catalogs_dir: Path | None = None
    """Folder with ``{netflix,amazon_prime,disney_plus,hulu}_titles.csv`` (second availability source)."""
    countries: list[str] = ["US"]
    history_manifest: Path | None = None
    """JSON list of {user, format, path} (paths relative to the manifest) imported every run."""
    history_imports: list[HistoryImport] = []
    """Further history files imported every run (e.g. a MovieLens folder for evaluation runs)."""

    @field_validator("countries")
    @classmethod
    def _iso_countries(cls, value: list[str]) -> list[str]:
        for code in value:
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ValueError(f"country {code!r} is not an ISO 3166-1 alpha-2 code like 'US'")
        return value


class CheckSettings(_Strict):
    min_resolution_rate: float = Field(0.5, ge=0, le=1)
    """Blocking check: share of imported history rows that resolve to a catalogue title."""
    min_titles: int = Field(1, ge=0)
    """Blocking check: the unified catalogue has at least this many titles."""


class EmbeddingSettings(_Strict):
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(64, ge=1)


class TrainingSettings(_Strict):
    model: Literal[
        "popularity",
        "als",
        "bpr",
        "ease",
        "federated",
        "federated-dp",
        "federated-ease",
        "federated-rp3beta",
        "hybrid",
    ] = "federated-dp"
    seed: int = 42
    target_epsilon: float = Field(1.0, gt=0)
    target_delta: float = Field(1e-5, gt=0, lt=1)
    rounds: int = Field(10, ge=1)
    promotion_margin: float = Field(0.0, ge=0)
    """The challenger's nDCG@10 must exceed the champion's by more than this to be promoted."""
    registered_model: str = "media-gateway-recommender"


class OIDCIssuerSettings(_Strict):
    """An OpenID Connect provider whose access tokens the API accepts (see :mod:`serving.oidc`)."""

    issuer: str
    """Exact ``iss`` value; discovery is read from ``<issuer>/.well-known/openid-configuration``.
    Must be https, except on loopback (local test issuers)."""
    audience: str
    """Required ``aud`` (the API's identifier at the provider)."""
    algorithms: list[Literal["RS256", "ES256"]] = ["RS256", "ES256"]
    token_type: str | None = None
    """Required ``typ`` header (e.g. ``at+jwt``, RFC 9068); ``None`` accepts any."""
    jwks_cache_s: float = Field(300.0, gt=0)
    """How long the key set is reused before it is fetched again."""
    jwks_refresh_cooldown_s: float = Field(30.0, ge=0)
    """Minimum time between refreshes forced by an unknown ``kid`` (forged kids cannot flood
    the provider)."""
    http_timeout_s: float = Field(5.0, gt=0)

    @field_validator("issuer")
    @classmethod
    def _https(cls, value: str) -> str:
        from urllib.parse import urlparse

        url = urlparse(value)
        loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise ValueError(f"oidc issuer {value!r} must be https (http only on loopback)")
        return value.rstrip("/")


class RealtimeSettings(_Strict):
    """The ``/ws`` channel (see :mod:`serving.realtime`)."""

    heartbeat_s: float = Field(15.0, gt=0)
    """A ``ping`` message every this many seconds; a client silent for 3 beats is closed."""
    queue_size: int = Field(64, ge=1)
    """Undelivered messages per connection before it is closed (1013) as too slow."""
    replay: int = Field(256, ge=1)
    """Events per user kept for ``resume``."""


class ServingSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    """BentoML worker processes; they share the user-state store and the rate-limit buckets."""
    jwt_issuer: str = "media-gateway-local"
    jwt_audience: str = "media-gateway-api"
    anonymous_per_minute: int = Field(10, ge=1)
    authenticated_per_minute: int = Field(100, ge=1)
    trusted_proxies: list[str] = []
    """Load balancers (addresses or CIDR blocks) whose ``X-Forwarded-For`` names the client."""
    freeze_heap: bool = True
    """After each state load, collect and ``gc.freeze()`` the heap (``serving.gateway.
    freeze_long_lived``): full collections then skip the loaded state. Off only where many
    services start in one process (the test suite), since each freeze runs a full collection."""
    similarity_table_mib: int = Field(256, ge=0)
    """Largest title-by-title content cosine table (float32) a worker keeps, in MiB (256: up to
    8,192 titles); bigger catalogues compute the cosines per request. 0 turns the table off."""
    oidc: list[OIDCIssuerSettings] = []
    """Identity providers whose RS256/ES256 access tokens are accepted (besides HS256 dev tokens)."""
    dev_tokens: bool = True
    """Accept HS256 tokens signed with ``MEDIA_GATEWAY_JWT_SECRET`` (`media-gateway token`)."""
    realtime: RealtimeSettings = RealtimeSettings()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {item!r} is not an address or CIDR") from exc
        return value


class StateSettings(_Strict):
    """Where the user-state store lives (:mod:`core.feedback`)."""

    database_url: str | None = None
    """Unset: SQLite in ``paths.feedback``. ``postgresql://user@host:5432/db``: that PostgreSQL
    database (password from ``MEDIA_GATEWAY_STATE_DB_PASSWORD``, never in a config file)."""

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("state.database_url must be a postgresql:// URL (or unset)")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER
    )

    paths: PathsSettings
    sources: SourcesSettings = SourcesSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    checks: CheckSettings = CheckSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    state: StateSettings = StateSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest precedence first: overrides, environment, overlays (last first), base."""
        return (init_settings, env_settings, *reversed(_YAML_LAYERS.get()))

    def resolved(self, root: Path) -> Settings:
        """Return a copy whose relative paths are made absolute against ``root``."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (root / p).resolve()

        paths = self.paths.model_copy(
            update={
                name: fix(getattr(self.paths, name))
                for name in (
                    "lake",
                    "mlflow_artifacts",
                    "inbox",
                    "models",
                    "feedback",
                    "dagster_home",
                )
            }
        )
        if "://" not in paths.lancedb:
            paths = paths.model_copy(update={"lancedb": str(fix(Path(paths.lancedb)))})
        uri = paths.mlflow_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            paths = paths.model_copy(update={"mlflow_uri": f"sqlite:///{fix(Path(uri[10:]))}"})
        sources = self.sources.model_copy(
            update={
                "recorded_dir": fix(self.sources.recorded_dir),
                "history_manifest": (
                    fix(self.sources.history_manifest) if self.sources.history_manifest else None
                ),
                "history_imports": [
                    h.model_copy(update={"path": fix(h.path)}) for h in self.sources.history_imports
                ],
                "platform_catalogs_dir": (
                    fix(self.sources.platform_catalogs_dir)
                    if self.sources.platform_catalogs_dir
                    else None
                ),
            }
        )
        return self.model_copy(update={"paths": paths, "sources": sources})


def workspace_paths(var: Path) -> dict[str, str]:
    """``paths`` overrides putting every writable store under ``var`` (tests, benchmarks, scratch
    workspaces): lake, LanceDB, SQLite MLflow store and artifacts, inbox, models, feedback, Dagster."""
    paths = {
        name: str(var / name)
        for name in ("lake", "lancedb", "inbox", "models", "feedback", "dagster_home")
    }
    return {
        **paths,
        "mlflow_uri": f"sqlite:///{var / 'mlflow.db'}",
        "mlflow_artifacts": str(var / "mlartifacts"),
    }


class ConfigError(ValueError):
    """A configuration file is missing or invalid (the message names the file)."""


class YamlLayer(YamlConfigSettingsSource):
    """One YAML file of the layering.

    Unlike the stock source, which skips a missing file, a missing file, invalid YAML or a top
    level that is not a mapping is a :class:`ConfigError` naming the file.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        self.path = path
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file_path}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file_path}: top level must be a mapping")
        return data


_YAML_LAYERS: ContextVar[tuple[YamlLayer, ...]] = ContextVar("yaml_layers", default=())
"""The YAML layers (lowest precedence first) of the :func:`load_settings` call in progress."""


def _set_depth(data: Any, loc: tuple[int | str, ...]) -> int:
    """How many leading items of ``loc`` one layer's data sets (0: none of it).

    Mappings merge across layers, anything else is replaced whole, so a layer sets ``loc`` when it
    holds every mapping key on the way down to ``loc`` or to a list or scalar above it.
    """
    node = data
    for depth, key in enumerate(loc):
        if not isinstance(node, dict):
            return depth
        if key not in node:
            return 0
        node = node[key]
    return len(loc)


def _origin(
    loc: tuple[int | str, ...],
    yaml_layers: tuple[YamlLayer, ...],
    env: dict[str, Any],
    overrides: dict[str, Any],
) -> str:
    """Name the highest-precedence layer that set ``loc`` (a file, a variable or the overrides)."""
    if _set_depth(overrides, loc):
        return "overrides"
    depth = _set_depth(env, loc)
    if depth:
        name = ENV_NESTED_DELIMITER.join(str(k).upper() for k in loc[:depth])
        return f"environment variable {ENV_PREFIX}{name}"
    for layer in reversed(yaml_layers):
        if _set_depth(layer.yaml_data, loc):
            return str(layer.path)
    return "no layer sets it"


def _explain(
    exc: ValidationError,
    yaml_layers: tuple[YamlLayer, ...],
    overrides: dict[str, Any],
) -> str:
    env = EnvSettingsSource(Settings)()
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(map(str, loc)) or "(top level)"
        origin = _origin(loc, yaml_layers, env, overrides)
        got = "" if isinstance(err["input"], dict) else f" (got {err['input']!r:.80})"
        lines.append(f"  {key} ({origin}): {err['msg']}{got}")
    files = ", ".join(str(layer.path) for layer in yaml_layers)
    return f"invalid configuration from {files}:\n" + "\n".join(lines)


def load_settings(
    *overlays: str | Path,
    root: Path = PROJECT_ROOT,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load ``configs/base.yaml`` plus overlays (arguments, else ``$MEDIA_GATEWAY_CONFIG``), then
    ``MEDIA_GATEWAY_<SECTION>__<KEY>`` variables, then ``overrides`` (see the module docstring).

    ``overrides`` is a nested mapping applied last (used by tests to point paths at a tmp folder).
    Relative paths in the result are absolute, resolved against ``root``.
    """
    files: list[Path] = [root / "configs" / "base.yaml"]
    chosen = [str(o) for o in overlays] or [
        p for p in os.environ.get(CONFIG_ENV, "").split(",") if p.strip()
    ]
    for item in chosen:
        path = Path(item.strip())
        files.append(path if path.is_absolute() else (root / path))
    yaml_layers = tuple(YamlLayer(Settings, path) for path in files)
    token = _YAML_LAYERS.set(yaml_layers)
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_explain(exc, yaml_layers, overrides or {})) from exc
    finally:
        _YAML_LAYERS.reset(token)
    return settings.resolved(root)
