"""The deployment files are accepted by the engines that read them, checked with their own
validators (no network, no daemon):

- ``dagster.yaml``, ``configs/deploy/dagster-instance.yaml``: Dagster's instance schema, and each
  pluggable class's own config schema where its module is installed. The Kubernetes run launcher
  and the ``step_k8s_config`` executor block need ``dagster-k8s``, which has no release for the
  installed Dagster, so only their shape (module/class, the ``resources`` part) is checked.
- Dagster run configs: the ``nightly`` job's run-config schema.
- ``bentofile.yaml``: BentoML's build-config class, its include/exclude matcher (every module the
  service imports and every package-data file must be packed) and PEP 508 requirements.
- ``docker-compose.yaml``: the compose-spec JSON schema vendored by ``check-jsonschema``, plus the
  references ``docker compose config`` resolves (services, named volumes, bind-mount sources).
- ``nginx.conf``: crossplane's parser with nginx's directive contexts and argument counts.
- ``flower/config.toml``: Flower's own SuperLink-connection reader.
- ``production.yaml``: :func:`core.settings.load_settings`.

Every validator is shown to reject a broken copy of its file.
"""

from __future__ import annotations

import io
import json
import shutil
import tomllib
from collections.abc import Callable
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import PROJECT_ROOT
from core.settings import ConfigError, load_settings

DEPLOY = PROJECT_ROOT / "configs" / "deploy"


def _broken(tmp_path: Path, source: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the YAML file ``source`` (same name, in ``tmp_path``) with ``edit`` applied."""
    data = yaml.safe_load(source.read_text())
    edit(data)
    out = tmp_path / source.name
    out.write_text(yaml.safe_dump(data))
    return out


# --- settings overlay -------------------------------------------------------------------------


def test_production_overlay_validates():
    s = load_settings(DEPLOY / "production.yaml")
    assert s.sources.tmdb.mode == "live" and s.sources.justwatch.mode == "live"
    assert s.paths.lancedb.startswith("s3://")  # object-store URI kept as is
    assert s.paths.mlflow_uri.startswith("postgresql")


def test_broken_production_overlay_is_rejected(tmp_path: Path):
    bad = _broken(tmp_path, DEPLOY / "production.yaml", lambda d: d["serving"].update(port="http"))
    with pytest.raises(ConfigError, match=r"serving\.port"):
        load_settings(bad)


# --- Dagster instance -------------------------------------------------------------------------


def validate_dagster_instance(path: Path, tmp_path: Path) -> dict[str, Any]:
    """Validate ``path`` as ``$DAGSTER_HOME/dagster.yaml``: Dagster's instance schema, then the
    config schema of each pluggable class whose module is installed. Returns the validated value."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData

    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(path, home / "dagster.yaml")
    value, _ = dagster_instance_config(str(home))
    for key in ("run_coordinator", "run_launcher", "compute_logs", "scheduler"):
        block = value.get(key)
        if not block:
            continue
        data = ConfigurableClassData(
            block["module"], block["class"], yaml.safe_dump(block.get("config") or {})
        )
        if data.module_name.startswith("dagster_") and not find_spec(data.module_name):
            continue  # an integration not installed here (see the module docstring)
        data.rehydrate()  # imports the class, validates its config against its schema, builds it
    return value


@pytest.mark.parametrize(
    "path", [PROJECT_ROOT / "dagster.yaml", DEPLOY / "dagster-instance.yaml"], ids=lambda p: p.name
)
def test_dagster_instance_files_validate(path: Path, tmp_path: Path):
    value = validate_dagster_instance(path, tmp_path)
    assert value["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert (value["run_retries"]["enabled"], value["run_retries"]["max_retries"]) == (True, 2)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["run_coordinator"]["config"].update(max_concurrent_runs="four"),
        lambda d: d["run_retries"].update(enabled="sometimes"),
        lambda d: d["storage"]["postgres"]["postgres_db"].pop("hostname"),
        lambda d: d.update(run_storage={"module": "x", "class": "Y"}),
    ],
    ids=["coordinator-config", "retries-type", "postgres-missing-host", "storage-and-run-storage"],
)
def test_broken_dagster_instance_is_rejected(edit, tmp_path: Path):
    from dagster._core.errors import DagsterInvalidConfigError

    bad = _broken(tmp_path, DEPLOY / "dagster-instance.yaml", edit)
    with pytest.raises(DagsterInvalidConfigError):
        validate_dagster_instance(bad, tmp_path)


# --- Dagster run configs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nightly_job():
    from pipelines.definitions import build_definitions

    return build_definitions().resolve_job_def("nightly")


def test_multiprocess_run_config_is_accepted_by_the_nightly_job(nightly_job):
    from dagster import validate_run_config

    cfg = yaml.safe_load((DEPLOY / "dagster-multiprocess-run.yaml").read_text())
    value = validate_run_config(nightly_job, cfg)
    executor = value["execution"]["multi_or_in_process_executor"]
    assert executor["multiprocess"]["max_concurrent"] == 4


def test_k8s_run_config_resources_are_accepted_by_the_nightly_job(nightly_job):
    """The ``execution`` block is for ``dagster_k8s.k8s_job_executor`` (not installable here);
    the ``resources`` block must be accepted by the job as it is."""
    from dagster import validate_run_config

    cfg = yaml.safe_load((DEPLOY / "dagster-k8s-run.yaml").read_text())
    assert set(cfg) == {"execution", "resources"}
    validate_run_config(nightly_job, {"resources": cfg["resources"]})


@pytest.mark.parametrize("name", ["dagster-k8s-run.yaml", "dagster-multiprocess-run.yaml"])
def test_run_configs_point_at_loadable_overlays(name: str):
    cfg = yaml.safe_load((DEPLOY / name).read_text())
    overlays = cfg["resources"]["app"]["config"]["overlays"].split(",")
    settings = load_settings(*overlays)  # raises ConfigError naming a missing or invalid file
    assert settings.paths.lake.is_absolute()


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["execution"]["config"]["multiprocess"].update(max_concurrent="four"),
        lambda d: d["resources"]["app"]["config"].update(overlayz="configs/sample.yaml"),
        lambda d: d["execution"]["config"].update(in_process={}),
    ],
    ids=["concurrency-type", "unknown-resource-field", "two-executors"],
)
def test_broken_run_config_is_rejected(edit, nightly_job, tmp_path: Path):
    from dagster import DagsterInvalidConfigError, validate_run_config

    bad = _broken(tmp_path, DEPLOY / "dagster-multiprocess-run.yaml", edit)
    with pytest.raises(DagsterInvalidConfigError):
        validate_run_config(nightly_job, yaml.safe_load(bad.read_text()))


# --- BentoML ----------------------------------------------------------------------------------


def _module_file(module: str) -> Path:
    base = PROJECT_ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def validate_bentofile(text: str) -> list[str]:
    """Parse ``text`` with BentoML's build-config class and return the project files the service
    needs (its module, every project module it imports, eagerly or lazily, their packages and the
    package data) that ``bentoml build`` would *not* pack."""
    import grimp
    from bentoml._internal.bento.build_config import BentoBuildConfig, BentoPathSpec
    from packaging.requirements import Requirement

    config = BentoBuildConfig.from_yaml(io.StringIO(text))
    for requirement in config.python.packages or []:
        Requirement(requirement)  # raises InvalidRequirement, as pip would
    module, _, attr = config.service.partition(":")
    service_file = _module_file(module)
    assert f"class {attr}" in service_file.read_text(), f"{config.service} is not defined"

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    graph = grimp.build_graph(*packages, cache_dir=None)
    modules = {module} | graph.find_upstream_modules(module)
    needed = set()
    for name in modules:
        parts = name.split(".")
        needed |= {_module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)}
    for package, patterns in pyproject["tool"]["setuptools"]["package-data"].items():
        folder = PROJECT_ROOT.joinpath(*package.split("."))
        needed |= {f for pattern in patterns for f in folder.glob(pattern)}
    spec = BentoPathSpec(include=config.include, exclude=config.exclude, ctx_dir=str(PROJECT_ROOT))
    return sorted(
        str(f.relative_to(PROJECT_ROOT))
        for f in needed
        if not spec.includes(str(f.relative_to(PROJECT_ROOT)))
    )


def test_bentofile_is_a_valid_build_config_that_packs_everything_the_service_needs():
    assert validate_bentofile((PROJECT_ROOT / "bentofile.yaml").read_text()) == []


def test_broken_bentofile_is_rejected():
    from cattrs.errors import ClassValidationError
    from packaging.requirements import InvalidRequirement

    text = (PROJECT_ROOT / "bentofile.yaml").read_text()
    with pytest.raises(ClassValidationError):
        validate_bentofile(text.replace("python:", "pythn:"))
    with pytest.raises(InvalidRequirement):
        validate_bentofile(text.replace("- polars>=1.30", "- polars>>1.30"))
    missing = validate_bentofile(text.replace('  - "core/**/*.py"\n', ""))
    assert "core/settings.py" in missing and all(m.startswith("core/") for m in missing)


# --- docker compose ---------------------------------------------------------------------------


def validate_compose(path: Path) -> dict[str, Any]:
    """The compose-spec schema, then the cross-references ``docker compose config`` resolves."""
    import jsonschema

    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    data = yaml.safe_load(path.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(data)
    services = data["services"]
    volumes = set(data.get("volumes") or {})
    for name, service in services.items():
        deps = service.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else list(deps):
            if dep not in services:
                raise ValueError(f"service {name!r} depends on undefined service {dep!r}")
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                if source.startswith(".") and not (path.parent / source).exists():
                    raise ValueError(f"service {name!r} mounts missing {source!r}")
            elif source not in volumes:
                raise ValueError(f"service {name!r} uses undeclared volume {source!r}")
    return data


def test_compose_file_validates():
    data = validate_compose(DEPLOY / "docker-compose.yaml")
    assert data["services"]["api"]["deploy"]["replicas"] == 3


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda d: d["services"]["lb"].update(ports="8080:80"), "ValidationError"),
        (lambda d: d["services"]["lb"].update(port=["8080:80"]), "ValidationError"),
        (lambda d: d.update(servics={}), "ValidationError"),
        (lambda d: d["services"]["lb"].update(depends_on=["apii"]), "ValueError"),
        (lambda d: d.pop("volumes"), "ValueError"),
        (lambda d: d["services"]["lb"]["volumes"].append("./missing.conf:/x:ro"), "ValueError"),
    ],
    ids=["ports-type", "unknown-key", "unknown-top-level", "depends-on", "volume", "bind"],
)
def test_broken_compose_file_is_rejected(edit, error: str, tmp_path: Path):
    bad = _broken(tmp_path, DEPLOY / "docker-compose.yaml", edit)
    shutil.copyfile(DEPLOY / "nginx.conf", tmp_path / "nginx.conf")
    with pytest.raises(Exception) as info:
        validate_compose(bad)
    assert type(info.value).__name__ == error


# --- nginx ------------------------------------------------------------------------------------


def validate_nginx_site(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Parse ``path`` as the compose file mounts it (``conf.d/*.conf``, inside ``http {}``)."""
    import crossplane

    main = tmp_path / "nginx-main.conf"
    main.write_text(f"events {{}}\nhttp {{\n    include {path.resolve()};\n}}\n")
    payload = crossplane.parse(str(main), strict=True, check_ctx=True, check_args=True)
    if payload["status"] != "ok":
        raise ValueError(payload["errors"])
    return payload["config"][1]["parsed"]


def test_nginx_site_validates(tmp_path: Path):
    directives = [d["directive"] for d in validate_nginx_site(DEPLOY / "nginx.conf", tmp_path)]
    assert directives == ["upstream", "server"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("listen 80;", "listn 80;"),
        lambda t: t.replace("least_conn;", "least_conn on;"),
        lambda t: t.replace("proxy_read_timeout 15s;", "proxy_read_timeout 15s"),
    ],
    ids=["unknown-directive", "argument-count", "missing-semicolon"],
)
def test_broken_nginx_site_is_rejected(edit, tmp_path: Path):
    bad = tmp_path / "site.conf"
    bad.write_text(edit((DEPLOY / "nginx.conf").read_text()))
    with pytest.raises(ValueError):
        validate_nginx_site(bad, tmp_path)


# --- Flower -----------------------------------------------------------------------------------


def read_flower_connections(config: Path, tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """Every SuperLink connection of ``config`` as Flower's CLI reads it from ``$FLWR_HOME``."""
    from flwr.cli.flower_config import read_superlink_connection

    home = tmp_path / "flwr_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(config, home / "config.toml")
    monkeypatch.setenv("FLWR_HOME", str(home))
    tables = tomllib.loads(config.read_text())["superlink"]
    names = [None] + [k for k, v in tables.items() if isinstance(v, dict)]
    return {name: read_superlink_connection(name) for name in names}


def test_flower_config_validates(tmp_path: Path, monkeypatch):
    conns = read_flower_connections(DEPLOY / "flower" / "config.toml", tmp_path, monkeypatch)
    assert conns[None].name == "production" and not conns["production"].insecure
    assert conns["production"].root_certificates == "/etc/media-gateway/flower/ca.crt"
    assert conns["local"].insecure and conns["local"].address == "127.0.0.1:9093"


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace('"/etc/media-gateway/flower/ca.crt"', '"ca.crt"'),
        lambda t: t.replace("insecure = true", 'insecure = "yes"'),
        lambda t: t.replace('default = "production"', 'default = "prod"'),
    ],
    ids=["relative-certificates", "insecure-type", "unknown-default"],
)
def test_broken_flower_config_is_rejected(edit, tmp_path: Path, monkeypatch):
    import click

    bad = tmp_path / "config.toml"
    bad.write_text(edit((DEPLOY / "flower" / "config.toml").read_text()))
    with pytest.raises(click.ClickException):
        read_flower_connections(bad, tmp_path, monkeypatch)
