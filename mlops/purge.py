"""Right to erasure in the model stores: no model file, registered version or vector of an erased
user survives the nightly run that follows the erasure.

Stores swept by :func:`purge_erased_users` (each found by content, not by bookkeeping, so copies
made by a killed run are found too):

* MLflow logged models under ``paths.mlflow_artifacts/models/m-*`` (the registered pyfunc copies):
  a logged model whose files name an erased user is deleted (its files, the logged-model record)
  together with every registered version pointing at it. Deleting the version -- rather than
  rewriting its files -- is deliberate: a rewritten model would be a model nobody evaluated, and a
  deleted version cannot be rolled back to, so a rollback can never serve the user again. The
  current ``@champion`` is never deleted: the nightly replaces a champion trained on erased users
  before the sweep runs (``run_training_cycle(erased_users=...)``), and a champion still naming
  one is an error (:class:`ErasureIncompleteError`), not a silent leftover.
* Local model folders: ``paths.models/challengers/*`` and the registry download cache
  ``paths.models/registry/<model>/<version>``.
* LanceDB ``collab_users``: the users' rows are deleted, the table compacted and every older
  table version removed (old versions still hold the vectors). Model versions whose
  ``lancedb.collab_users.version`` tag pointed at a removed table version are re-tagged ``none``
  with a note; a rollback to them restores their item vectors and leaves user vectors alone
  (serving never reads user vectors: users are scored by fold-in of their history).

Only a local (``file://``) artifact store can be swept; any other raises
:class:`ErasureIncompleteError` naming the store, rather than reporting a sweep that did not happen.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import lancedb
from mlflow.exceptions import MlflowException

from core.settings import Settings
from mlops.tracking import client as tracking_client
from mlops.vectors import NO_VECTORS, USERS_TABLE, USERS_VERSION_TAG

log = logging.getLogger(__name__)

PURGE_NOTE_TAG = "erasure.note"


class ErasureIncompleteError(RuntimeError):
    """A store still holds an erased user's data and cannot be swept automatically."""


@dataclass
class PurgeReport:
    deleted_versions: list[str] = field(default_factory=list)
    deleted_logged_models: list[str] = field(default_factory=list)
    deleted_folders: list[str] = field(default_factory=list)
    user_vectors_deleted: int = 0
    retagged_versions: list[str] = field(default_factory=list)


def _needles(users: Iterable[str]) -> list[bytes]:
    """Each id as it appears in a JSON file (quoted), so ``u1`` does not match ``u10``."""
    return [json.dumps(u).encode() for u in sorted(users)]


def mentions_users(directory: Path, users: Iterable[str]) -> bool:
    """True when any file under ``directory`` contains one of ``users`` as a JSON string."""
    needles = _needles(users)
    if not needles or not Path(directory).exists():
        return False
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                return True
    return False


def _local_dir(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ErasureIncompleteError(
            f"the artifact store {uri} is not local: erased users' model files there cannot be "
            "swept by the nightly run; delete the model versions named in the erasure log by hand"
        )
    return Path(parsed.path)


def _purge_logged_models(settings: Settings, users: set[str], report: PurgeReport) -> None:
    from mlops.champion import champion_version
    from mlops.tracking import EXPERIMENT

    client = tracking_client(settings)
    roots = {_local_dir(Path(settings.paths.mlflow_artifacts).as_uri()) / "models"}
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:  # where MLflow really writes (may differ from the settings)
        roots.add(_local_dir(experiment.artifact_location) / "models")
    folders = sorted(p for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir())
    registered = settings.training.registered_model
    versions = client.search_model_versions(f"name = '{registered}'")
    champion = champion_version(settings)
    for folder in folders:
        if not mentions_users(folder, users):
            continue
        model_id = folder.name
        pointing = [mv for mv in versions if mv.source == f"models:/{model_id}"]
        if any(str(mv.version) == champion for mv in pointing):
            raise ErasureIncompleteError(
                f"the @champion (version {champion}) was trained on an erased user; it must be "
                "replaced by a model trained without them before it can be deleted"
            )
        for mv in pointing:
            client.delete_model_version(registered, mv.version)
            report.deleted_versions.append(str(mv.version))
        try:
            client.delete_logged_model(model_id)
        except MlflowException as exc:
            # files of a logged model this store has no record of (e.g. a copied folder)
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        shutil.rmtree(folder)
        report.deleted_logged_models.append(model_id)


def _purge_folders(parents: Iterable[Path], users: set[str], report: PurgeReport) -> None:
    for parent in parents:
        if not parent.is_dir():
            continue
        for folder in sorted(p for p in parent.iterdir() if p.is_dir()):
            if mentions_users(folder, users):
                shutil.rmtree(folder)
                report.deleted_folders.append(str(folder))


def _purge_user_vectors(settings: Settings, users: set[str], report: PurgeReport) -> None:
    db = lancedb.connect(str(settings.paths.lancedb))
    if USERS_TABLE not in db.list_tables().tables:
        return
    table = db.open_table(USERS_TABLE)
    quoted = ", ".join("'" + u.replace("'", "''") + "'" for u in sorted(users))
    anywhere = False
    current = int(table.version)
    for version in (int(v["version"]) for v in table.list_versions()):
        table.checkout(version)
        hits = table.count_rows(f"user_id IN ({quoted})")
        if version == current:
            report.user_vectors_deleted = hits
        anywhere = anywhere or hits > 0
    table.checkout_latest()
    if not anywhere:
        return
    table.delete(f"user_id IN ({quoted})")
    with warnings.catch_warnings():
        # Dropping every older version is the point here (they hold the erased vectors); the
        # nightly lock guarantees no other writer.
        warnings.filterwarnings("ignore", message=r".*removes every version except the latest.*")
        table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
    kept = {int(v["version"]) for v in table.list_versions()}
    client = tracking_client(settings)
    registered = settings.training.registered_model
    for mv in client.search_model_versions(f"name = '{registered}'"):
        value = mv.tags.get(USERS_VERSION_TAG, NO_VECTORS)
        if value != NO_VECTORS and int(value) not in kept:
            client.set_model_version_tag(registered, mv.version, USERS_VERSION_TAG, NO_VECTORS)
            client.set_model_version_tag(
                registered,
                mv.version,
                PURGE_NOTE_TAG,
                f"collab_users version {value} removed by an erasure sweep",
            )
            report.retagged_versions.append(str(mv.version))


def purge_erased_users(settings: Settings, users: set[str]) -> PurgeReport:
    """Remove ``users`` from every model store (see the module docstring). Idempotent."""
    report = PurgeReport()
    if not users:
        return report
    _purge_logged_models(settings, users, report)
    models = Path(settings.paths.models)
    _purge_folders(
        [models / "challengers", models / "registry" / settings.training.registered_model],
        users,
        report,
    )
    _purge_user_vectors(settings, users, report)
    log.info(
        "erasure sweep of the model stores",
        extra={
            "versions": len(report.deleted_versions),
            "folders": len(report.deleted_folders),
            "user_vectors": report.user_vectors_deleted,
        },
    )
    return report
