"""Run the nightly job once, in process, against the Dagster instance in ``paths.dagster_home``.

The run is recorded in that instance, so `make dagster` (DAGSTER_HOME=var/dagster) shows it with
all asset metadata and check results.

What the terminal shows: one progress bar per Dagster step (asset or check) while the job runs,
then one summary table (each asset, check and skip with its key figures, and which model serves
and why). Everything else -- Python logging of this project and of Flower, MLflow, Opacus, Dagster,
alembic, httpx; warnings; library progress bars; anything written to the stderr file descriptor
by native code or child processes -- goes to ONE log file, ``<var>/logs/nightly-<UTC stamp>.log``
(``<var>`` is the folder holding ``paths.dagster_home``), whose path is printed first. Each record
is written once: the root logger has the file as its only handler and library loggers that bring
their own console handler (Flower) are made to propagate to it instead.

Crash safety, before the job starts (one nightly at a time, enforced by an exclusive
:class:`filelock.FileLock` on ``<dagster_home>/nightly.lock``: an OS lock, which the kernel
releases when the process dies, never a lock file a killed run would leave behind):

* lake leftovers of a killed write are repaired (:func:`core.lake.recover_lake`);
* Dagster runs started by this function whose process died (status still ``STARTED``) are
  reported failed through the instance API; runs launched by a Dagster daemon are not touched
  (the daemon's run monitoring owns them);
* MLflow runs left ``RUNNING`` and model versions registered but never recorded are cleaned
  (:func:`mlops.tracking.clean_orphans`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import dagster as dg
from filelock import FileLock, Timeout
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import PROJECT_ROOT
from core.settings import Settings

log = logging.getLogger(__name__)

LAUNCHER_TAG = "media_gateway/launcher"
"""Tag on every run this module starts (stale-run detection only touches those)."""
LAUNCHER = "run_nightly"
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.NOT_STARTED,
]
SUMMARY_KEYS = (
    "rows",
    "encoded",
    "reused",
    "batch_resolution_rate",
    "erased_rows",
    "table_version",
    "challenger_ndcg@10",
    "epsilon",
    "shipped",
    "model_version",
)


class NightlyBusyError(RuntimeError):
    """Another nightly run holds the lock on this DAGSTER_HOME."""


def prepare_dagster_home(settings: Settings) -> dg.DagsterInstance:
    """Create DAGSTER_HOME with the project's dagster.yaml and return its instance."""
    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def log_path(settings: Settings, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.paths.dagster_home).parent / "logs" / f"nightly-{stamp}.log"


@contextlib.contextmanager
def nightly_lock(settings: Settings) -> Iterator[None]:
    """Exclusive, non-blocking lock for the duration of one nightly run."""
    path = Path(settings.paths.dagster_home) / "nightly.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    # no soft (lock-file-exists) fallback: a killed run must not keep the lock
    lock = FileLock(path, fallback_to_soft=False)
    try:
        lock.acquire(blocking=False)
    except Timeout as exc:
        raise NightlyBusyError(f"another nightly run holds {path}") from exc
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[IO[str]]:
    """Route logging, warnings, library progress bars and the stderr fd to ``path``.

    Yields a text stream on the ORIGINAL stderr for the caller's own terminal output. Everything
    is restored on exit.
    """
    import importlib.util

    if importlib.util.find_spec("flwr") is not None:
        import flwr.common.logger  # noqa: F401  (creates Flower's logger and its console handler)

    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    terminal = os.fdopen(os.dup(saved_fd), "w", buffering=1)
    log_file = path.open("a", encoding="utf-8", buffering=1)
    os.dup2(log_file.fileno(), 2)
    saved_streams = (sys.stdout, sys.stderr)
    sys.stdout = sys.stderr = log_file  # also when sys.stderr is not fd 2 (pytest, notebooks)
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    changed: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    for name in ("flwr", "mlflow"):
        logger = logging.getLogger(name)
        changed.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = []
        logger.propagate = True
    saved_tqdm = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    logging.captureWarnings(True)
    try:
        yield terminal
    finally:
        logging.captureWarnings(False)
        if saved_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved_tqdm
        for logger, handlers, propagate in changed:
            logger.handlers = handlers
            logger.propagate = propagate
        root.handlers, level = saved_root
        root.setLevel(level)
        sys.stdout, sys.stderr = saved_streams
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        terminal.close()
        log_file.close()


def fail_stale_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report failed every run this module started whose process is gone (call with the lock)."""
    stale = instance.get_runs(
        filters=dg.RunsFilter(statuses=ACTIVE_STATUSES, tags={LAUNCHER_TAG: LAUNCHER})
    )
    for run in stale:
        instance.report_run_failed(
            run, message="the nightly process died (killed or crashed); marked failed on restart"
        )
    if stale:
        log.warning("marked stale nightly runs failed", extra={"runs": [r.run_id for r in stale]})
    return [r.run_id for r in stale]


class StepProgress:
    """Polls the run's event log and shows one progress bar per step on ``console``."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, steps: int, console: Console):
        self.instance = instance
        self.run_id = run_id
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<48}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.overall = self.progress.add_task("nightly", total=steps, state="")
        self.tasks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="nightly-progress")

    def __enter__(self) -> StepProgress:
        self.progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.update()
        self.progress.stop()

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self.update()

    def update(self) -> None:
        kinds = {
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        }
        if not self.instance.has_run(self.run_id):
            return
        for record in self.instance.all_logs(self.run_id, of_type=kinds):
            event = record.dagster_event
            step = event.step_key or "?"
            if step not in self.tasks:
                self.tasks[step] = self.progress.add_task(step, total=1, state="running")
            task = self.tasks[step]
            if event.event_type == dg.DagsterEventType.STEP_START:
                continue
            state = {
                dg.DagsterEventType.STEP_SUCCESS: "[green]done[/green]",
                dg.DagsterEventType.STEP_FAILURE: "[red]failed[/red]",
                dg.DagsterEventType.STEP_SKIPPED: "[yellow]skipped[/yellow]",
            }[event.event_type]
            if not self.progress.tasks[task].finished:
                self.progress.update(task, completed=1, state=state)
        done = sum(1 for t in self.tasks.values() if self.progress.tasks[t].finished)
        self.progress.update(self.overall, completed=done, state=f"{done} steps")


def run_nightly(
    settings: Settings,
    config_files: list[str],
    partition_key: str | None = None,
    console: Console | None = None,
) -> bool:
    """Materialise every asset (and run every check) for one daily partition. True on success.

    Prints the log-file path, per-step progress and one summary table (see the module docstring).
    Raises :class:`NightlyBusyError` when another nightly holds the lock.
    """
    day = partition_key or datetime.now(UTC).strftime("%Y-%m-%d")
    logfile = log_path(settings)
    with nightly_lock(settings), logs_to_file(logfile) as terminal:
        out = console or Console(file=terminal, stderr=False)
        out.print(f"nightly {day}: library logs go to {logfile}", soft_wrap=True)
        # imported here so that their import-time warnings land in the log file
        from core.lake import recover_lake
        from mlops.tracking import clean_orphans
        from pipelines.definitions import build_definitions

        instance = prepare_dagster_home(settings)
        repaired = recover_lake(settings.paths.lake)
        stale = fail_stale_runs(instance)
        orphans = clean_orphans(settings)
        for what, items in (
            ("lake leftovers of a killed run repaired", repaired),
            ("stale Dagster runs marked failed", stale),
            ("orphaned MLflow runs/versions cleaned", orphans),
        ):
            if items:
                out.print(f"[yellow]{what}:[/yellow] {', '.join(map(str, items))}")
        defs = build_definitions(overlays=",".join(str(c) for c in config_files))
        job = defs.resolve_job_def("nightly")
        run_id = str(uuid.uuid4())
        with StepProgress(instance, run_id, len(job.graph.nodes), out):
            result = job.execute_in_process(
                instance=instance,
                partition_key=day,
                raise_on_error=False,
                run_id=run_id,
                tags={LAUNCHER_TAG: LAUNCHER},
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            )
        out.print(summary_table(result, day))
        serving = serving_line(result)
        if serving:
            out.print(serving)
        failed = [e for e in result.all_events if e.is_step_failure]
        for event in failed:
            out.print(
                f"[red]step failed:[/red] {event.step_key}: "
                f"{event.event_specific_data.error.message.strip()} (details: {logfile})"
            )
        return result.success


def summary_table(result: dg.ExecuteInProcessResult, day: str) -> Table:
    """One row per materialised asset, skip (an observation with ``promoted: False``) and check,
    with the key figures."""
    table = Table(title=f"nightly {day} (run {result.run_id[:8]})")
    table.add_column("asset / check")
    table.add_column("result")
    table.add_column("key figures")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        figures = {k: v.value for k, v in mat.metadata.items() if k in SUMMARY_KEYS}
        table.add_row(mat.asset_key.to_user_string(), "materialized", _fmt(figures))
    for event in result.get_asset_observation_events():
        obs = event.event_specific_data.asset_observation
        # an asset that decided not to materialise (champion_model: nothing to promote) says so
        # explicitly with ``promoted: False``; any other observation is only reported
        promoted = obs.metadata.get("promoted")
        skipped = promoted is not None and promoted.value is False
        reason = obs.metadata.get("reason")
        table.add_row(
            obs.asset_key.to_user_string(),
            "[yellow]skipped[/yellow]" if skipped else "observed",
            str(reason.value) if reason is not None else "",
        )
    for evaluation in result.get_asset_check_evaluations():
        status = "[green]passed[/green]" if evaluation.passed else "[red]failed[/red]"
        table.add_row(evaluation.check_name, status, "")
    return table


def serving_line(result: dg.ExecuteInProcessResult) -> str | None:
    """Which model serves after this run, and why (from the training and champion metadata)."""
    meta: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() in ("challenger_model", "champion_model"):
            meta[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    challenger = meta.get("challenger_model")
    champion = meta.get("champion_model")
    if champion:
        return (
            f"[bold]serving:[/bold] model version {champion['model_version']} "
            f"({champion['shipped']}) -- {champion['reason']}"
        )
    if challenger and challenger.get("retrained"):
        return (
            f"[bold]serving:[/bold] the previous champion keeps serving; tonight's candidate was "
            f"the {challenger.get('shipped')} -- {challenger.get('reason')}"
        )
    return "[bold]serving:[/bold] the previous champion keeps serving (inputs unchanged)"


def _fmt(values: dict) -> str:
    return ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
