"""The `media-gateway` command. Thin: every command parses arguments and calls a library function."""

from __future__ import annotations

import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Media Gateway: what to watch tonight.", no_args_is_help=True)
console = Console(stderr=True)

ConfigOpt = Annotated[
    list[str] | None,
    typer.Option("--config", "-c", help="Overlay YAML(s) on top of configs/base.yaml."),
]


def _settings(config: list[str] | None):
    from core.settings import ConfigError, load_settings

    try:
        return load_settings(*(config or []))
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command("import-history")
def import_history(
    paths: Annotated[list[Path], typer.Argument(help="Export file(s) to import.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="netflix, netflix-activity, letterboxd, imdb, trakt, movielens, movielens-100k.",
        ),
    ],
    user: Annotated[str, typer.Option("--user", "-u", help="User id the history belongs to.")],
    lake: Annotated[Path | None, typer.Option(help="Lake folder (default: from config).")] = None,
    date_format: Annotated[
        str | None,
        typer.Option(
            help="Netflix history day/month order, e.g. %d/%m/%y or %m/%d/%y "
            "(default: detected from the whole file)."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Netflix ViewingActivity: import only this profile.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Import watch-history export files into the lake's watch_events (idempotent).

    Exit 0: imported (warnings, quarantined and unresolved rows are listed).
    Exit 2: nothing imported, lake unchanged (bad, hostile or wrong-format file;
    or no usable row: header only, every row quarantined or dropped).
    """
    from pipelines.lib.histories.importer import (
        HistoryImportError,
        NothingToImportError,
        import_files,
    )

    settings = _settings(config)
    try:
        summary = import_files(
            fmt=format,
            user_id=user,
            paths=paths,
            lake=lake or settings.paths.lake,
            date_format=date_format,
            profile=profile,
        )
    except NothingToImportError as exc:
        console.print(exc.summary.as_table())
        console.print(f"[red]import failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    except HistoryImportError as exc:
        console.print(f"[red]import failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(summary.as_table())
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command()
def train(
    interactions: Annotated[
        Path, typer.Option(help="CSV/Parquet: user_id,item_id[,rating][,timestamp]")
    ],
    model: Annotated[
        str,
        typer.Option(
            help=(
                "popularity|als|bpr|ease|rp3beta|itemknn|ensemble|federated|federated-dp|"
                "federated-ease|federated-rp3beta|hybrid (models.registry)"
            )
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output model directory.")],
    items: Annotated[Path | None, typer.Option(help="Item features (titles Parquet/CSV).")] = None,
    epsilon: Annotated[float | None, typer.Option(help="Target ε for federated-dp.")] = None,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Train one model on an interactions file and save it to OUT."""
    from models.train import TrainingInputError, train_model

    try:
        report = train_model(
            interactions_path=interactions,
            model=model,
            out=out,
            items_path=items,
            epsilon=epsilon,
            seed=seed,
        )
    except TrainingInputError as exc:
        console.print(f"[red]bad input:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print_json(data=report)


@app.command("recommend-batch")
def recommend_batch(
    model_dir: Annotated[Path, typer.Option(help="A directory written by `train`.")],
    k: Annotated[int, typer.Option(min=1)],
    out: Annotated[Path, typer.Option(help="Output Parquet: user_id,item_id,rank,score.")],
) -> None:
    """Top-k for every training user, excluding items seen in training."""
    from models.train import recommend_batch as run

    rows = run(model_dir=model_dir, k=k, out=out)
    console.print(f"wrote {rows} rows to {out}")


@app.command()
def nightly(config: ConfigOpt = None) -> None:
    """Run the nightly Dagster job (ingest, embed, index, train, evaluate, promote) once.

    Shows a progress bar per step and one summary; library logs go to the file it names.
    Exit codes: 0 success (including "nothing promoted"), 1 a step failed, 3 another nightly runs.
    """
    from pipelines.run import NightlyBusyError, run_nightly

    settings = _settings(config)
    try:
        ok = run_nightly(settings, config_files=config or [])
    except NightlyBusyError as exc:
        console.print(f"[red]not started:[/red] {exc}")
        raise typer.Exit(3) from exc
    raise typer.Exit(0 if ok else 1)


SERVE_EXAMPLES = """
Examples:

  media-gateway serve -c configs/sample.yaml

  media-gateway serve --host 0.0.0.0 --port 8080 --workers 2

Exit codes: 0 stopped cleanly; 2 bad configuration or missing MEDIA_GATEWAY_JWT_SECRET;
otherwise the BentoML server's own exit code.
"""


@app.command(epilog=SERVE_EXAMPLES)
def serve(
    config: ConfigOpt = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: serving.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port (default: serving.port, 3000)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes sharing one state store (default: 1)."),
    ] = None,
) -> None:
    """Start the BentoML HTTP service (champion model, LanceDB tables, shared user state)."""
    from serving.auth import AuthConfigError
    from serving.run import serve as run

    settings = _settings(config)
    overrides = {
        name: value
        for name, value in (("host", host), ("port", port), ("workers", workers))
        if value is not None
    }
    settings = settings.model_copy(
        update={"serving": settings.serving.model_copy(update=overrides)}
    )
    try:
        code = run(settings, config_files=config or [])
    except AuthConfigError as exc:
        console.print(f"[red]cannot start the server:[/red] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


UI_EXAMPLES = """
Examples:

  media-gateway ui mlflow -c configs/sample.yaml --port 5000

  media-gateway ui dagster -c configs/sample.yaml --host 0.0.0.0 --port 3001

Exit codes: 0 stopped cleanly (Ctrl-C); 2 bad configuration; otherwise the UI's own exit code.
"""


class UI(StrEnum):
    mlflow = "mlflow"
    dagster = "dagster"


def ui_command(which: UI, settings, host: str, port: int, config_files: list[str]) -> list[str]:
    """The argv that starts ``which`` on this configuration's stores (also sets DAGSTER_HOME)."""
    import sys

    bin_dir = Path(sys.executable).parent
    if which is UI.mlflow:
        return [
            str(bin_dir / "mlflow"), "ui",
            "--backend-store-uri", settings.paths.mlflow_uri,
            "--default-artifact-root", str(settings.paths.mlflow_artifacts),
            "--host", host, "--port", str(port), "--workers", "1",
        ]  # fmt: skip
    from pipelines.run import prepare_dagster_home

    prepare_dagster_home(settings)  # the nightly's instance: its runs show in the UI
    if config_files:
        os.environ["MEDIA_GATEWAY_CONFIG"] = ",".join(config_files)
    return [
        str(bin_dir / "dagster"), "dev", "-m", "pipelines.definitions",
        "--host", host, "--port", str(port),
    ]  # fmt: skip


@app.command(epilog=UI_EXAMPLES)
def ui(
    which: Annotated[UI, typer.Argument(help="mlflow (experiments, models) or dagster (runs).")],
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port (default: mlflow 5000, dagster 3001)."),
    ] = None,
) -> None:
    """Open the MLflow or Dagster web UI on this configuration's stores."""
    import subprocess

    settings = _settings(config)
    port = port or (5000 if which is UI.mlflow else 3001)
    argv = ui_command(which, settings, host, port, config or [])
    # One web worker and no background job runners (MLflow 3 starts 4 workers and 7 huey
    # consumers by default, which outlive a killed UI): a notebook-side UI on a 2-core machine.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    console.print(f"{which.value} UI on http://{host}:{port} (Ctrl-C stops it)")
    try:
        code = subprocess.call(argv)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
def token(
    user: Annotated[str, typer.Option(help="Subject (user id) of the token.")],
    scopes: Annotated[
        list[str],
        typer.Option(help="read:recommendations, write:feedback, read:preferences"),
    ],
    ttl_minutes: Annotated[int, typer.Option(min=1)] = 60,
    config: ConfigOpt = None,
) -> None:
    """Issue a local OAuth2 bearer token (JWT) for the API (signing key: MEDIA_GATEWAY_JWT_SECRET)."""
    from serving.auth import AuthConfigError, issue_token

    try:
        token = issue_token(_settings(config), user=user, scopes=scopes, ttl_minutes=ttl_minutes)
    except AuthConfigError as exc:
        console.print(f"[red]cannot issue a token:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(token)


if __name__ == "__main__":
    app()
