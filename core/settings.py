"""Typed settings: `configs/base.yaml` deep-merged with overlays, validated by pydantic.

The environment picks *which* files are loaded (``MEDIA_GATEWAY_CONFIG``, a comma-separated list of
overlay paths, read when :func:`load_settings` is called, never at import time); secrets such as
``TMDB_API_KEY`` or ``GEMINI_API_KEY`` are only ever read from the environment by the code that needs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core import PROJECT_ROOT

CONFIG_ENV = "MEDIA_GATEWAY_CONFIG"


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
    """Recorded TMDB/JustWatch responses replayed by the fake servers in ``recorded`` mode."""
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
    model: Literal["popularity", "als", "bpr", "ease", "federated", "federated-dp", "hybrid"] = (
        "federated-dp"
    )
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


class Settings(_Strict):
    paths: PathsSettings
    sources: SourcesSettings = SourcesSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    checks: CheckSettings = CheckSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    state: StateSettings = StateSettings()

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


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` into a copy of ``base``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ConfigError(ValueError):
    """A configuration file is missing or invalid (the message names the file)."""


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def load_settings(
    *overlays: str | Path,
    root: Path = PROJECT_ROOT,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load ``configs/base.yaml`` plus overlays (arguments, else ``$MEDIA_GATEWAY_CONFIG``).

    ``overrides`` is a nested mapping merged last (used by tests to point paths at a tmp folder).
    Relative paths in the result are absolute, resolved against ``root``.
    """
    files: list[Path] = [root / "configs" / "base.yaml"]
    chosen = [str(o) for o in overlays] or [
        p for p in os.environ.get(CONFIG_ENV, "").split(",") if p.strip()
    ]
    for item in chosen:
        path = Path(item)
        files.append(path if path.is_absolute() else (root / path))
    merged: dict[str, Any] = {}
    for path in files:
        merged = deep_merge(merged, _read_yaml(path))
    if overrides:
        merged = deep_merge(merged, overrides)
    try:
        settings = Settings.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(
            f"invalid configuration from {', '.join(map(str, files))}:\n{exc}"
        ) from exc
    return settings.resolved(root)
