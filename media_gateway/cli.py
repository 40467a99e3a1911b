"""The `media-gateway` command. Thin: every command parses arguments and calls a library function."""

from __future__ import annotations

import logging
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
        str, typer.Option(help="popularity|als|bpr|ease|federated|federated-dp|hybrid")
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
