"""What we hold about a user: preferences profile, export (GDPR access/portability) and erasure.

Profiles live in the shared user-state store (:mod:`core.feedback`, one SQLite file all
workers share), validated as :class:`serving.schemas.PreferencesBody` on the way in and out. A user
without a profile gets :data:`DEFAULT_PROFILE` (US, any service, subscription or free offers).

Erasure (:func:`erase_user_files`) is one store transaction: the erasure is recorded and the
profile and feedback deleted together, or nothing happens (the caller answers 503 then). The caller
drops the user's in-memory events; other workers drop theirs when they next read the store's change
counters; the next nightly run physically deletes their lake events and retrains without them.
Erasure is time-bounded: feedback the user sends afterwards is kept (see
:mod:`core.feedback`). The served champion never uses per-user factors (users are scored
by fold-in from their history), so no trained user vector of an erased user is used after erasure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from core.feedback import (
    erase_user_data,
    load_profile_payload,
    read_erasures,
    read_feedback_records,
    save_profile_payload,
)
from core.lake import read_table
from pipelines.lib.erasure import drop_erased
from serving.schemas import PreferencesBody
from serving.user_stores import erase_user_stores

log = logging.getLogger(__name__)

DEFAULT_PROFILE = PreferencesBody()


class ProfileError(ValueError):
    """A stored profile is unreadable (the message says why)."""


def save_profile(folder: Path, user: str, prefs: PreferencesBody) -> None:
    """Store ``prefs`` for ``user`` (committed to the shared store before returning)."""
    save_profile_payload(folder, user, prefs.model_dump(mode="json"))


def load_profile(folder: Path, user: str) -> PreferencesBody | None:
    """The stored preferences, ``None`` when the user never set any."""
    payload = load_profile_payload(folder, user)
    if payload is None:
        return None
    try:
        return PreferencesBody.model_validate(payload)
    except ValidationError as exc:
        raise ProfileError(f"stored profile no longer validates: {exc}") from exc


def effective_profile(folder: Path, user: str) -> PreferencesBody:
    return load_profile(folder, user) or DEFAULT_PROFILE


def _jsonable(df: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.write_json())


def export_user(lake: Path, folder: Path, user: str) -> dict[str, Any]:
    """Everything held about ``user``: profile, lake events (resolved and unresolved), the
    malformed lines of their imports (``quarantine``: file, line number, reason and the raw line,
    as they sent it), feedback.

    Lake rows an erasure already covers (deleted physically by the next nightly run) are left out.
    """
    erasures = read_erasures(folder)

    def lake_rows(table: str) -> pl.DataFrame:
        return drop_erased(read_table(lake, table).filter(pl.col("user_id") == user), erasures)

    events = lake_rows("watch_events")
    unresolved = lake_rows("unresolved_events")
    quarantine = lake_rows("quarantine")
    feedback = [r.model_dump(mode="json") for r in read_feedback_records(folder, user)]
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
    erased_at: datetime
    erasure_recorded: bool = True


def erase_user_files(folder: Path, user: str) -> ErasureReport:
    """Record the erasure and delete the profile and feedback, atomically (one transaction), then
    remove the user from the social graph and watchlist stores."""
    outcome = erase_user_data(folder, user)
    erase_user_stores(folder, user)
    log.info(
        "user erased",
        extra={
            "profile_deleted": outcome.profile_deleted,
            "feedback_removed": outcome.feedback_removed,
        },
    )
    return ErasureReport(
        profile_deleted=outcome.profile_deleted,
        feedback_lines_removed=outcome.feedback_removed,
        erased_at=outcome.requested_at,
    )
