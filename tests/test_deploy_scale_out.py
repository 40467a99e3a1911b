"""The scale-out compose overlay and its settings overlay agree: the API loads a configuration
whose ``state.database_url`` names the compose file's PostgreSQL service, user, database and port,
and gets the password from the variable the store reads. Where Docker is installed, ``docker
compose config`` validates the merged files too."""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

from core import PROJECT_ROOT
from core.postgres_db import PASSWORD_ENV
from core.settings import load_settings

DEPLOY = PROJECT_ROOT / "configs" / "deploy"
BASE, OVERLAY = DEPLOY / "docker-compose.yaml", DEPLOY / "docker-compose.scale-out.yaml"


def test_scale_out_overlay_points_the_api_at_the_compose_postgres() -> None:
    compose = yaml.safe_load(OVERLAY.read_text())
    base = yaml.safe_load(BASE.read_text())
    api = compose["services"]["api"]
    assert "api" in base["services"]  # an overlay of an existing service
    files = api["environment"]["MEDIA_GATEWAY_CONFIG"].split(",")
    settings = load_settings(*files)
    assert settings.paths.mlflow_uri.startswith("postgresql")  # still production.yaml underneath
    url = urlsplit(settings.state.database_url or "")
    db = compose["services"][url.hostname]
    assert db["image"].startswith("postgres:")
    assert url.port == 5432 and url.password is None  # the password never sits in a config file
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.path.lstrip("/") == db["environment"]["POSTGRES_DB"]
    assert PASSWORD_ENV in api["environment"]
    assert api["depends_on"][url.hostname]["condition"] == "service_healthy"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = ["docker", "compose", "version"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="no `docker compose` on this machine")
def test_docker_compose_accepts_the_merged_files() -> None:
    secrets = {"MEDIA_GATEWAY_JWT_SECRET": "x" * 32, "MLFLOW_DB_PASSWORD": "x"}
    result = subprocess.run(
        ["docker", "compose", "-f", str(BASE), "-f", str(OVERLAY), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, **secrets, "STATE_DB_PASSWORD": "x"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
