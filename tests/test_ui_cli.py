"""`media-gateway ui mlflow|dagster --host --port`: the real UIs start on the given port and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from media_gateway.cli import app
from serving.run import free_port
from tests.conftest import write_tmp_overlay

CLI = str(Path(sys.executable).parent / "media-gateway")


def _serve_until_ok(argv: list[str], url: str, timeout_s: float) -> tuple[int, str]:
    """Start ``argv``, poll ``url`` until 200, then Ctrl-C it; (status, body head)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            try:
                r = httpx.get(url, timeout=5)
                if r.status_code == 200:
                    return r.status_code, r.text[:2000]
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{url} never answered 200 within {timeout_s} s")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_help_lists_host_port_and_examples() -> None:
    result = CliRunner().invoke(app, ["ui", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for text in ("mlflow", "dagster", "--host", "--port", "Examples", "Exit codes"):
        assert text in result.output


def test_bad_port_and_bad_config_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ui", "mlflow", "--port", "70000"]).exit_code == 2
    assert runner.invoke(app, ["ui", "tensorboard"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("paths: {lake: [1, 2]}\n")
    result = runner.invoke(app, ["ui", "mlflow", "-c", str(bad)])
    assert result.exit_code == 2 and "config error" in result.output


@pytest.mark.slow
def test_mlflow_ui_serves_on_the_given_port(tmp_path: Path) -> None:
    overlay = write_tmp_overlay(tmp_path)
    port = free_port()
    argv = [
        CLI,
        "ui",
        "mlflow",
        "-c",
        "configs/sample.yaml",
        "-c",
        str(overlay),
        "--port",
        str(port),
    ]
    status, body = _serve_until_ok(argv, f"http://127.0.0.1:{port}/health", timeout_s=120)
    assert status == 200 and "OK" in body


@pytest.mark.slow
def test_dagster_ui_serves_the_project_on_the_given_port(tmp_path: Path) -> None:
    overlay = write_tmp_overlay(tmp_path)
    port = free_port()
    argv = [CLI, "ui", "dagster", "-c", "configs/sample.yaml", "-c", str(overlay)]
    argv += ["--port", str(port)]
    status, body = _serve_until_ok(argv, f"http://127.0.0.1:{port}/server_info", timeout_s=240)
    assert status == 200 and "dagster_webserver_version" in body
    assert (tmp_path / "var" / "dagster_home" / "dagster.yaml").is_file()
