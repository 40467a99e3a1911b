"""LanceDB tables of collaborative vectors of the promoted model: ``collab_items`` and ``collab_users``.

Schemas: ``collab_items(item_id, vector fixed_size_list<float32>[d], model_version)`` and
``collab_users(user_id, vector fixed_size_list<float32>[d], model_version)``. Each publish replaces
a table in ONE overwrite commit, so every promoted model is one new table version; the versions are
recorded in the registered model version's tags, and rollback restores them (see
:func:`restore_versions`). The two tables are not updated atomically together (a LanceDB limit):
the registry alias, switched after both writes, is the commit point readers follow. Writes must be
serialised (one nightly run at a time): LanceDB rejects a conflicting concurrent commit.

Which models publish (decision): a model publishes item vectors iff it implements the optional
:class:`ItemVectorModel` protocol (``item_vectors() -> (ids, matrix)``), and user vectors iff it
implements :class:`UserVectorModel`. Factor models (ALS, BPR, federated MF) have such factors.
Models without a latent space (popularity, EASE) are *skipped with a logged reason*: EASE's
item-item weight matrix is n x n, and projecting it to a fixed dimension would be a new model (a
truncated SVD) that nobody evaluated, so serving would use vectors that were never measured.
A skipped publish writes no commit; :class:`VectorVersions` then carries ``None`` and the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import lancedb
import numpy as np
import pyarrow as pa

from core.settings import Settings

log = logging.getLogger(__name__)

ITEMS_TABLE = "collab_items"
USERS_TABLE = "collab_users"
ITEMS_VERSION_TAG = "lancedb.collab_items.version"
"""Model-version tag holding the ``collab_items`` table version published for it (or ``none``)."""
USERS_VERSION_TAG = "lancedb.collab_users.version"
NO_VECTORS = "none"


class VectorError(ValueError):
    """Vectors a model exposes are malformed, or a requested table/version does not exist."""


@runtime_checkable
class ItemVectorModel(Protocol):
    """Optional model protocol: item ids and their (n_items, d) latent factor matrix."""

    def item_vectors(self) -> tuple[list[str], np.ndarray]: ...


@runtime_checkable
class UserVectorModel(Protocol):
    """Optional model protocol: user ids and their (n_users, d) latent factor matrix."""

    def user_vectors(self) -> tuple[list[str], np.ndarray]: ...


@dataclass(frozen=True)
class VectorVersions:
    """Table versions written for one model version (``None``: not published, see ``reason``)."""

    model_version: str
    items: int | None
    users: int | None
    reason: str | None = None


def _schema(id_column: str, dim: int) -> pa.Schema:
    return pa.schema(
        [
            (id_column, pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
            ("model_version", pa.string()),
        ]
    )


def vector_rows(id_column: str, ids: list[str], matrix: np.ndarray, model_version: str) -> pa.Table:
    """Validated Arrow rows: one id per matrix row, unique ids, finite float32 vectors."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[1] < 1:
        raise VectorError(f"{id_column} vectors must be a 2-d (n, d>=1) matrix, got {matrix.shape}")
    if len(ids) != matrix.shape[0]:
        raise VectorError(f"{len(ids)} {id_column}s but {matrix.shape[0]} vector rows")
    if len(set(ids)) != len(ids):
        raise VectorError(f"duplicate {id_column}s in the vectors")
    if not np.all(np.isfinite(matrix)):
        raise VectorError(f"{id_column} vectors contain NaN or infinite values")
    dim = int(matrix.shape[1])
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), pa.float32())
    schema = _schema(id_column, dim)
    return pa.table(
        [
            pa.array([str(i) for i in ids], pa.string()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
            pa.array([model_version] * len(ids), pa.string()),
        ],
        schema=schema,
    )


def _write(db_path: str | Path, table: str, rows: pa.Table) -> int:
    db = lancedb.connect(str(db_path))
    written = db.create_table(table, data=rows, schema=rows.schema, mode="overwrite")
    return int(written.version)


def publish_vectors(settings: Settings, model: object, model_version: str) -> VectorVersions:
    """Write the model's item (and user) vectors as new versions of the collab tables."""
    if not isinstance(model, ItemVectorModel):
        reason = f"model {type(model).__name__} exposes no item_vectors(); no latent space"
        log.info("collaborative vectors not published", extra={"reason": reason})
        return VectorVersions(model_version=model_version, items=None, users=None, reason=reason)
    db_path = settings.paths.lancedb  # a folder or an object-store URI
    ids, matrix = model.item_vectors()
    items_version = _write(db_path, ITEMS_TABLE, vector_rows("item_id", ids, matrix, model_version))
    users_version: int | None = None
    reason: str | None = None
    if isinstance(model, UserVectorModel):
        uids, umatrix = model.user_vectors()
        users_version = _write(
            db_path, USERS_TABLE, vector_rows("user_id", uids, umatrix, model_version)
        )
    else:
        reason = f"model {type(model).__name__} exposes no user_vectors(); users not published"
        log.info("user vectors not published", extra={"reason": reason})
    log.info(
        "published collaborative vectors",
        extra={"model_version": model_version, "items": items_version, "users": users_version},
    )
    return VectorVersions(model_version, items_version, users_version, reason)


def version_tags(versions: VectorVersions) -> dict[str, str]:
    """The model-version tags recording ``versions`` (``none`` for an unpublished table)."""
    return {
        ITEMS_VERSION_TAG: NO_VECTORS if versions.items is None else str(versions.items),
        USERS_VERSION_TAG: NO_VECTORS if versions.users is None else str(versions.users),
    }


def parse_version_tag(tags: dict[str, str], tag: str) -> int | None:
    """Table version recorded in model-version ``tags`` (``None``: ``none`` or never promoted)."""
    value = tags.get(tag, NO_VECTORS)
    return None if value == NO_VECTORS else int(value)


def _open(settings: Settings, table: str) -> lancedb.table.Table:
    db = lancedb.connect(str(settings.paths.lancedb))
    if table not in db.list_tables().tables:
        raise VectorError(f"no {table!r} table in {settings.paths.lancedb}")
    return db.open_table(table)


def _checkout(settings: Settings, table: str, version: int) -> lancedb.table.Table:
    handle = _open(settings, table)
    known = {int(v["version"]) for v in handle.list_versions()}
    if version not in known:
        raise VectorError(f"{table!r} has no version {version} (has {sorted(known)})")
    handle.checkout(version)
    return handle


def checkout_items(settings: Settings, version: int) -> lancedb.table.Table:
    """Read-only handle on ``collab_items`` as of table ``version`` (serving pins the champion's)."""
    return _checkout(settings, ITEMS_TABLE, version)


def checkout_users(settings: Settings, version: int) -> lancedb.table.Table:
    """Read-only handle on ``collab_users`` as of table ``version``."""
    return _checkout(settings, USERS_TABLE, version)


def latest_version(settings: Settings, table: str) -> int | None:
    """Current version of ``table``, ``None`` when the table does not exist yet."""
    db = lancedb.connect(str(settings.paths.lancedb))
    if table not in db.list_tables().tables:
        return None
    return int(db.open_table(table).version)


def restore_versions(settings: Settings, items: int | None, users: int | None) -> VectorVersions:
    """Make the given table versions the latest again (one ``restore`` commit each; ``None`` skips).

    Returns the *new* table versions created by the restores (``model_version`` is read back).
    """
    new_items = new_users = None
    model_version = ""
    if items is not None:
        handle = _checkout(settings, ITEMS_TABLE, items)
        handle.restore()
        new_items = int(handle.version)
        first = handle.to_arrow().column("model_version").to_pylist()[:1]
        model_version = first[0] if first else ""
    if users is not None:
        handle = _checkout(settings, USERS_TABLE, users)
        handle.restore()
        new_users = int(handle.version)
    log.info("restored collaborative vectors", extra={"items": new_items, "users": new_users})
    return VectorVersions(model_version, new_items, new_users)
