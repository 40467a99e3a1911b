"""``media-gateway serve``: run ``bentoml serve serving.service:MediaGateway`` with our config.

The chosen overlay files travel to the server process in ``MEDIA_GATEWAY_CONFIG`` (absolute paths,
so the working directory of the server does not matter); host and port come from
``settings.serving``. The JWT secret is checked here first so a missing secret fails before BentoML
starts (see :mod:`serving.auth`). The call blocks until the server exits and returns its exit code.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from media_gateway import PROJECT_ROOT
from media_gateway.settings import CONFIG_ENV, Settings
from serving.auth import jwt_secret

log = logging.getLogger(__name__)

SERVICE = "serving.service:MediaGateway"


def server_command(settings: Settings) -> list[str]:
    """The ``bentoml serve`` command line (the venv's own ``bentoml`` module)."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE,
        "--host",
        settings.serving.host,
        "--port",
        str(settings.serving.port),
        "--working-dir",
        str(PROJECT_ROOT),
    ]


def server_env(config_files: Sequence[str | Path], base: dict[str, str] | None = None) -> dict:
    """The server's environment: ``base`` (default: ours) plus the overlays as absolute paths."""
    env = dict(os.environ if base is None else base)
    paths = [Path(p) for p in config_files]
    env[CONFIG_ENV] = ",".join(
        str(p if p.is_absolute() else (Path.cwd() / p).resolve()) for p in paths
    )
    return env


def serve(settings: Settings, config_files: Sequence[str | Path]) -> int:
    """Run the server in the foreground until it exits; returns its exit code."""
    jwt_secret()  # fail fast with the clear AuthConfigError
    command = server_command(settings)
    log.info(
        "starting BentoML",
        extra={"host": settings.serving.host, "port": settings.serving.port},
    )
    return subprocess.call(command, env=server_env(config_files), cwd=PROJECT_ROOT)
