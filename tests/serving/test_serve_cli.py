"""`media-gateway serve`: options, examples and exit codes (the server itself is started by the
real-server tests)."""

from __future__ import annotations

from typer.testing import CliRunner

from media_gateway.cli import app
from serving.run import WORKERS_ENV, server_command, server_env, workers_from_env


def test_help_lists_options_and_examples() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for text in ("--host", "--port", "--workers", "Examples", "Exit codes"):
        assert text in result.output


def test_bad_values_exit_2(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MEDIA_GATEWAY_JWT_SECRET", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["serve", "--port", "0"]).exit_code == 2
    assert runner.invoke(app, ["serve", "--workers", "0"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving: {workers: many}\n")
    assert runner.invoke(app, ["serve", "-c", str(bad)]).exit_code == 2
    missing_secret = runner.invoke(app, ["serve", "--port", "3999"])
    assert missing_secret.exit_code == 2 and "cannot start the server" in missing_secret.output


def test_host_port_and_workers_reach_the_server(monkeypatch) -> None:
    from core.settings import load_settings

    settings = load_settings(overrides={"serving": {"host": "0.0.0.0", "port": 8081, "workers": 2}})
    command = server_command(settings)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8081"
    env = server_env([], {}, workers=settings.serving.workers)
    assert env[WORKERS_ENV] == "2"
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert workers_from_env() == 2
