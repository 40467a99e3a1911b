"""Opaque search cursors.

``next_cursor`` is a base64url token of the next offset bound to a hash of the query, filters and
user (:func:`query_hash`), so a cursor cannot be replayed against another query: 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from serving.guard import ApiError


def query_hash(payload: dict[str, Any]) -> str:
    """A short stable hash of what a cursor is bound to."""
    raw = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_cursor(offset: int, bound_to: str) -> str:
    raw = json.dumps({"o": offset, "h": bound_to}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, bound_to: str) -> int:
    """The offset in ``cursor``; :class:`ApiError` 400 if malformed or bound to another query."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        owner = str(data["h"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "cursor is not valid") from exc
    if owner != bound_to or offset < 0:
        raise ApiError(400, "cursor belongs to another query")
    return offset
