"""``media-gateway serve``: run ``bentoml serve serving.service:MediaGateway`` with our config.

The chosen overlay files travel to the server process in ``MEDIA_GATEWAY_CONFIG`` (absolute paths,
so the working directory of the server does not matter); host, port and the number of worker
processes come from ``settings.serving`` (the CLI's ``--host/--port/--workers`` override them;
workers reach the service definition as ``MEDIA_GATEWAY_WORKERS``). The JWT secret is checked here
first so a missing secret fails before BentoML starts (see :mod:`serving.auth`). The call blocks
until the server exits and returns its exit code.

No orphans: ``kill -9`` of ``media-gateway serve`` used to leave BentoML serving the port. Now the
server process gets ``PR_SET_PDEATHSIG`` (SIGTERM when its parent dies, set between fork and exec)
and every worker sets the same for itself when the service starts (:func:`die_with_parent`), so
killing the CLI stops the server, and killing the server stops its workers. (Linux only; elsewhere
these are no-ops.)
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from core import PROJECT_ROOT
from core.settings import CONFIG_ENV, Settings
from serving.auth import jwt_secret

log = logging.getLogger(__name__)

SERVICE = "serving.service:MediaGateway"
WORKERS_ENV = "MEDIA_GATEWAY_WORKERS"
PR_SET_PDEATHSIG = 1


def workers_from_env() -> int:
    """Worker processes for the service definition (``MEDIA_GATEWAY_WORKERS``, default 1)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return 1
    try:
        workers = int(raw)
    except ValueError as exc:
        raise ValueError(f"{WORKERS_ENV}={raw!r} is not a whole number") from exc
    if workers < 1:
        raise ValueError(f"{WORKERS_ENV} must be >= 1")
    return workers


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Safe in a ``preexec_fn`` (no allocation beyond ctypes' call, no locks).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


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


def server_env(
    config_files: Sequence[str | Path],
    base: dict[str, str] | None = None,
    *,
    workers: int = 1,
) -> dict:
    """The server's environment: ``base`` (default: ours), the overlays as absolute paths and the
    number of workers."""
    env = dict(os.environ if base is None else base)
    env[WORKERS_ENV] = str(workers)
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
        extra={
            "host": settings.serving.host,
            "port": settings.serving.port,
            "workers": settings.serving.workers,
        },
    )
    env = server_env(config_files, workers=settings.serving.workers)
    with subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, preexec_fn=die_with_parent) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


class ServerStartError(RuntimeError):
    """The server process exited or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (loopback by default)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_server(
    settings: Settings,
    config_files: Sequence[str | Path],
    *,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> subprocess.Popen:
    """Start the server in the background in its own process group (stop with :func:`stop_server`)."""
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - handed to Popen
    return subprocess.Popen(
        server_command(settings),
        env=server_env(config_files, env, workers=settings.serving.workers),
        cwd=PROJECT_ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def wait_ready(
    proc: subprocess.Popen, base_url: str, timeout_s: float = 180.0, workers: int = 1
) -> float:
    """Poll until ``workers`` distinct workers answer ready; returns the seconds it took.

    ``/readyz`` answers for whichever worker takes the connection, so with several workers one
    ready answer says little: ``/status`` names its ``worker_pid``, and the wait lasts until
    ``workers`` different ones have said ready. Raises :class:`ServerStartError`.
    """
    import time

    import httpx

    started = time.monotonic()
    seen: set[int] = set()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise ServerStartError(f"server exited with code {proc.returncode} before ready")
        try:
            with httpx.Client(base_url=base_url, timeout=2.0) as http:  # a new connection each
                if workers == 1 and http.get("/readyz").status_code == 200:
                    return time.monotonic() - started
                if workers > 1:
                    body = http.get("/status").json()
                    if body.get("ready"):
                        seen.add(body["worker_pid"])
                    if len(seen) >= workers:
                        return time.monotonic() - started
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.05 if seen else 0.25)
    raise ServerStartError(
        f"server at {base_url} not ready after {timeout_s:.0f} s ({len(seen)} of {workers} workers)"
    )


def stop_server(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""

    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)
