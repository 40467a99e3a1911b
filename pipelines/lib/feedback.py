"""The durable feedback and erasure log shared by the API (writer) and the nightly run (reader).

Layout under the feedback folder (``settings.paths.feedback``):

``feedback.jsonl``
    One JSON object per line, one line per ``POST /feedback``. Appended with ``O_APPEND`` under an
    exclusive ``flock`` and ``fsync``-ed before :func:`append_feedback` returns, so an acknowledged
    record survives a crash. :func:`read_feedback` turns it into ``WATCH_EVENTS`` rows
    (``source = "feedback"``) for training.
``erasures.jsonl``
    One ``{"user_id", "requested_at"}`` line per right-to-erasure request. The nightly run excludes
    and physically deletes these users' events; :func:`erase_feedback` removes their feedback lines
    at once.
``.lock``
    The lock file. ``flock`` locks conflict between processes *and* between separate ``open`` calls
    in one process, so threads of the API server and a nightly run are serialised alike.

Weights: feedback is implicit confidence for training (``weight > 0``). Each given signal is mapped
to ``[0, 1]`` (rating / 5, completion, 1.0 for ``watched``), the weight is their mean, floored at
``MIN_WEIGHT`` so a one-star rating still counts as an interaction, only a weak one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.lib.schemas import conform, empty

log = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
ERASURES_FILE = "erasures.jsonl"
LOCK_FILE = ".lock"
RATING_SCALE = 5.0
MIN_WEIGHT = 0.05


class FeedbackLogError(ValueError):
    """A line of the feedback or erasure log is not valid (the message names file and line)."""


class FeedbackRecord(BaseModel):
    """One feedback event as stored (``event_id`` and ``event_time`` are set on append)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    title_id: str = Field(min_length=1, max_length=256)
    rating: float | None = Field(None, ge=0.5, le=RATING_SCALE)
    """Explicit rating on a 0.5-5 scale."""
    watched: bool = False
    completion: float | None = Field(None, ge=0.0, le=1.0)
    """Share of the title watched, 0-1."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Request context (mood, occasion, device, ...) kept for analysis; not a training column."""
    event_id: str | None = None
    event_time: datetime | None = None

    @model_validator(mode="after")
    def _has_signal(self) -> FeedbackRecord:
        if self.rating is None and self.completion is None and not self.watched:
            raise ValueError("feedback needs a rating, a completion or watched=true")
        return self

    def weight(self) -> float:
        """Implicit-feedback weight in ``[MIN_WEIGHT, 1]`` (see module docstring)."""
        signals: list[float] = []
        if self.rating is not None:
            signals.append(self.rating / RATING_SCALE)
        if self.completion is not None:
            signals.append(self.completion)
        if self.watched:
            signals.append(1.0)
        return max(MIN_WEIGHT, sum(signals) / len(signals))


def _event_id(user_id: str, title_id: str, when: datetime, nonce: str) -> str:
    raw = f"{user_id}\x1ffeedback\x1f{title_id}\x1f{when.isoformat()}\x1f{nonce}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_line(folder: Path, name: str, payload: dict[str, Any]) -> None:
    line = (json.dumps(payload, separators=(",", ":"), sort_keys=True) + "\n").encode("utf-8")
    path = folder / name
    with _locked(folder):
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(folder)


def append_feedback(folder: Path, record: FeedbackRecord) -> str:
    """Append one record durably (returns only after ``fsync``); returns its ``event_id``."""
    when = record.event_time or datetime.now(UTC)
    event_id = record.event_id or _event_id(record.user_id, record.title_id, when, uuid.uuid4().hex)
    stored = record.model_copy(update={"event_id": event_id, "event_time": when})
    _append_line(Path(folder), FEEDBACK_FILE, stored.model_dump(mode="json"))
    log.info("feedback appended", extra={"event_id": event_id})
    return event_id


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FeedbackLogError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise FeedbackLogError(f"{path}:{number}: expected a JSON object")
            yield number, obj


def read_feedback_records(folder: Path) -> list[FeedbackRecord]:
    """Every stored record, in append order (raises :class:`FeedbackLogError` on a bad line)."""
    path = Path(folder) / FEEDBACK_FILE
    records = []
    for number, obj in _read_lines(path):
        try:
            record = FeedbackRecord.model_validate(obj)
        except ValidationError as exc:
            raise FeedbackLogError(f"{path}:{number}: {exc}") from exc
        if record.event_id is None or record.event_time is None:
            raise FeedbackLogError(f"{path}:{number}: record lacks event_id or event_time")
        records.append(record)
    return records


def read_feedback(folder: Path) -> pl.DataFrame:
    """The feedback log as ``WATCH_EVENTS`` rows (``source="feedback"``), erased users excluded."""
    erased = read_erasures(folder)
    rows = [
        {
            "event_id": r.event_id,
            "user_id": r.user_id,
            "title_id": r.title_id,
            "raw_title": None,
            "source": "feedback",
            "event_time": r.event_time,
            "event_date": r.event_time.date() if r.event_time else None,
            "rating": r.rating,
            "rating_scale": RATING_SCALE if r.rating is not None else None,
            "completion": r.completion,
            "weight": r.weight(),
            "import_batch": "feedback",
        }
        for r in read_feedback_records(folder)
        if r.user_id not in erased
    ]
    if not rows:
        return empty("watch_events")
    return conform(pl.DataFrame(rows, infer_schema_length=None), "watch_events")


def append_erasure(folder: Path, user_id: str) -> None:
    """Record a right-to-erasure request durably (the nightly run deletes the user's events)."""
    if not user_id:
        raise ValueError("user_id must not be empty")
    payload = {"user_id": user_id, "requested_at": datetime.now(UTC).isoformat()}
    _append_line(Path(folder), ERASURES_FILE, payload)
    log.info("erasure recorded")


def read_erasures(folder: Path) -> set[str]:
    """User ids whose data must be excluded and deleted."""
    path = Path(folder) / ERASURES_FILE
    users: set[str] = set()
    for number, obj in _read_lines(path):
        user = obj.get("user_id")
        if not isinstance(user, str) or not user:
            raise FeedbackLogError(f"{path}:{number}: erasure record lacks a user_id")
        users.add(user)
    return users


def erase_feedback(folder: Path, user_id: str) -> int:
    """Rewrite the feedback log without ``user_id``'s lines (atomic replace); returns lines removed."""
    folder = Path(folder)
    path = folder / FEEDBACK_FILE
    with _locked(folder):
        if not path.is_file():
            return 0
        kept: list[str] = []
        removed = 0
        with path.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise FeedbackLogError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
                if isinstance(obj, dict) and obj.get("user_id") == user_id:
                    removed += 1
                else:
                    kept.append(line if line.endswith("\n") else line + "\n")
        if removed:
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with tmp.open("w", encoding="utf-8") as out:
                out.writelines(kept)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            _fsync_dir(folder)
    return removed
