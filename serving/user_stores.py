"""The per-user SQLite stores of the social, watchlist and alert features, for erasure."""

from __future__ import annotations

from pathlib import Path

from serving.social.store import erase_user as erase_social
from serving.watchlist.store import erase_user as erase_watchlist


def erase_user_stores(folder: Path, user: str) -> dict[str, int]:
    """Delete every row naming ``user`` from the social graph and the watchlist store."""
    return {
        "social_rows": erase_social(folder, user),
        "watchlist_rows": erase_watchlist(folder, user),
    }
