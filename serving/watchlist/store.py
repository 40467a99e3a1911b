"""Watchlists and availability alerts in SQLite (``<paths.feedback>/watchlist.sqlite3``).

An **availability alert** says that a title on the user's watchlist joined or left one of the
user's services in the user's country (the offers their preferences accept). For each watchlist
entry the store keeps the set of matching providers last seen (``seen_providers``); a check
(:meth:`WatchlistStore.check_availability`, run when a user reads alerts and for every user when
the service swaps in a new catalogue) compares it with the current catalogue and appends one alert
per provider that joined or left. Adding a title records its current providers without an alert.
Alerts have increasing integer ids, so a client resumes with ``since=<last id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.social.db import SqliteStore

DB_NAME = "watchlist.sqlite3"
MAX_ITEMS = 1000
"""Watchlist entries per user (a 409 beyond that)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS watchlist (
    user_id TEXT NOT NULL, title_id TEXT NOT NULL, added_at REAL NOT NULL,
    seen_providers TEXT NOT NULL DEFAULT '[]', country TEXT,
    PRIMARY KEY (user_id, title_id));
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, title_id TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('joined', 'left')), provider_id TEXT NOT NULL,
    provider_name TEXT, country TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_user ON alerts (user_id, id);
"""

Providers = dict[str, str]
"""provider_id -> provider_name, for one title on one user's services in their country."""
ProvidersFor = Callable[[str, str], tuple[str, Providers]]
"""(user, title_id) -> (country, providers now)."""


class WatchlistFull(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    title_id: str
    added_at: float


@dataclass(frozen=True)
class Alert:
    id: int
    title_id: str
    change: str
    provider_id: str
    provider_name: str | None
    country: str
    created_at: float


class WatchlistStore(SqliteStore):
    SCHEMA = SCHEMA

    @classmethod
    def in_folder(cls, folder: Path) -> WatchlistStore:
        return cls(Path(folder) / DB_NAME)

    def entries(self, user: str) -> list[Entry]:
        rows = self.query(
            "SELECT title_id, added_at FROM watchlist WHERE user_id=? ORDER BY added_at DESC",
            (user,),
        )
        return [Entry(r[0], r[1]) for r in rows]

    def users(self) -> list[str]:
        return [r[0] for r in self.query("SELECT DISTINCT user_id FROM watchlist ORDER BY 1")]

    def add(self, user: str, title_id: str, country: str, providers: Providers) -> bool:
        """Add (idempotent: re-adding keeps the first ``added_at``); True if it was new."""
        with self.transaction() as c:
            if c.execute(
                "SELECT 1 FROM watchlist WHERE user_id=? AND title_id=?", (user, title_id)
            ).fetchone():
                return False
            n = c.execute("SELECT COUNT(*) FROM watchlist WHERE user_id=?", (user,)).fetchone()[0]
            if n >= MAX_ITEMS:
                raise WatchlistFull(f"a watchlist holds at most {MAX_ITEMS} titles")
            c.execute(
                "INSERT INTO watchlist VALUES (?, ?, ?, ?, ?)",
                (user, title_id, time.time(), json.dumps(sorted(providers)), country),
            )
        return True

    def remove(self, user: str, title_id: str) -> bool:
        with self.transaction() as c:
            return (
                c.execute(
                    "DELETE FROM watchlist WHERE user_id=? AND title_id=?", (user, title_id)
                ).rowcount
                > 0
            )

    def check_availability(self, user: str, providers_for: ProvidersFor) -> list[Alert]:
        """Compare the user's watchlist with the catalogue now; store and return new alerts."""
        now = time.time()
        created: list[Alert] = []
        with self.transaction() as c:
            rows = c.execute(
                "SELECT title_id, seen_providers, country FROM watchlist WHERE user_id=?", (user,)
            ).fetchall()
            for title_id, seen_raw, seen_country in rows:
                country, current = providers_for(user, title_id)
                seen = set(json.loads(seen_raw)) if seen_country == country else set()
                if seen_country != country:
                    # the user moved: the new country's offers are the baseline, no alert storm
                    seen = set(current)
                changes = [("joined", p) for p in sorted(set(current) - seen)] + [
                    ("left", p) for p in sorted(seen - set(current))
                ]
                for change, provider in changes:
                    cur = c.execute(
                        "INSERT INTO alerts (user_id, title_id, change, provider_id, "
                        "provider_name, country, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (user, title_id, change, provider, current.get(provider), country, now),
                    )
                    created.append(
                        Alert(
                            int(cur.lastrowid or 0),
                            title_id,
                            change,
                            provider,
                            current.get(provider),
                            country,
                            now,
                        )
                    )
                c.execute(
                    "UPDATE watchlist SET seen_providers=?, country=? WHERE user_id=? AND title_id=?",
                    (json.dumps(sorted(current)), country, user, title_id),
                )
        return created

    def alerts(self, user: str, since: int = 0, limit: int = 100) -> list[Alert]:
        rows = self.query(
            "SELECT id, title_id, change, provider_id, provider_name, country, created_at "
            "FROM alerts WHERE user_id=? AND id>? ORDER BY id LIMIT ?",
            (user, since, limit),
        )
        return [Alert(*r) for r in rows]

    def export(self, user: str) -> dict[str, object]:
        return {
            "watchlist": [vars(e) for e in self.entries(user)],
            "alerts": [vars(a) for a in self.alerts(user, limit=1_000_000)],
        }

    def erase(self, user: str) -> int:
        with self.transaction() as c:
            n = c.execute("DELETE FROM watchlist WHERE user_id=?", (user,)).rowcount
            n += c.execute("DELETE FROM alerts WHERE user_id=?", (user,)).rowcount
        return n


def erase_user(folder: Path, user: str) -> int:
    """Remove ``user``'s watchlist and alerts stored in ``folder``."""
    path = Path(folder) / DB_NAME
    if not path.exists():
        return 0
    store = WatchlistStore(path)
    try:
        return store.erase(user)
    finally:
        store.close()
