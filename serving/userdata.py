"""What we hold about a user: preferences profile, export (GDPR access/portability) and erasure.

Profiles are JSON files under ``<feedback>/profiles/<sha256(user)[:32]>.json`` (hashing the id keeps
any id a safe file name), written atomically (temp file, ``fsync``, ``os.replace``). A user without
a profile gets :data:`DEFAULT_PROFILE` (US, any service, subscription or free offers).

Erasure removes the profile and the user's feedback lines at once, drops their in-memory events,
and appends an erasure record so the nightly run excludes and physically deletes their lake events
and retrains without them. The served champion never uses per-user factors (users are scored by
fold-in from their history), so no trained user vector of an erased user is used after erasure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from pipelines.lib.feedback import (
    append_erasure,
    erase_feedback,
    read_feedback_records,
)
from pipelines.lib.lake import read_table
from serving.schemas import PreferencesBody
from serving.user_stores import erase_user_stores

log = logging.getLogger(__name__)

PROFILES_DIR = "profiles"
DEFAULT_PROFILE = PreferencesBody()


class ProfileError(ValueError):
    """A stored profile file is unreadable (the message names the file)."""


def profile_path(folder: Path, user: str) -> Path:
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]
    return Path(folder) / PROFILES_DIR / f"{digest}.json"


def save_profile(folder: Path, user: str, prefs: PreferencesBody) -> Path:
    """Store ``prefs`` for ``user`` atomically; returns the file."""
    path = profile_path(folder, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "user_id": user,
        "updated_at": datetime.now(UTC).isoformat(),
        "preferences": prefs.model_dump(mode="json"),
    }
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(payload, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_profile(folder: Path, user: str) -> PreferencesBody | None:
    """The stored preferences, ``None`` when the user never set any."""
    path = profile_path(folder, user)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("user_id") != user:
            raise ProfileError(f"{path}: belongs to another user id (hash collision?)")
        return PreferencesBody.model_validate(payload["preferences"])
    except (json.JSONDecodeError, KeyError, ValidationError) as exc:
        raise ProfileError(f"{path}: unreadable profile: {exc}") from exc


def effective_profile(folder: Path, user: str) -> PreferencesBody:
    return load_profile(folder, user) or DEFAULT_PROFILE


def delete_profile(folder: Path, user: str) -> bool:
    path = profile_path(folder, user)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _jsonable(df: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.write_json())


def export_user(lake: Path, folder: Path, user: str) -> dict[str, Any]:
    """Everything held about ``user``: profile, lake events (resolved and unresolved), the
    malformed lines of their imports (``quarantine``: file, line number, reason and the raw line,
    as they sent it), feedback."""
    events = read_table(lake, "watch_events").filter(pl.col("user_id") == user)
    unresolved = read_table(lake, "unresolved_events").filter(pl.col("user_id") == user)
    quarantine = read_table(lake, "quarantine").filter(pl.col("user_id") == user)
    feedback = [
        r.model_dump(mode="json") for r in read_feedback_records(folder) if r.user_id == user
    ]
    profile = load_profile(folder, user)
    return {
        "user_id": user,
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": profile.model_dump(mode="json") if profile else None,
        "watch_events": _jsonable(events.sort("event_time")),
        "unresolved_events": _jsonable(unresolved.sort("event_time")),
        "quarantine": _jsonable(quarantine.sort("file", "line")),
        "feedback": feedback,
    }


@dataclass(frozen=True)
class ErasureReport:
    profile_deleted: bool
    feedback_lines_removed: int
    erasure_recorded: bool = True


def erase_user_files(folder: Path, user: str) -> ErasureReport:
    """Record the erasure durably first (so a crash midway still erases at the next nightly
    run), then delete the profile and the user's feedback lines."""
    append_erasure(folder, user)
    deleted = delete_profile(folder, user)
    removed = erase_feedback(folder, user)
    erase_user_stores(folder, user)
    log.info("user erased", extra={"profile_deleted": deleted, "feedback_removed": removed})
    return ErasureReport(profile_deleted=deleted, feedback_lines_removed=removed)
