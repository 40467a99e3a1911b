"""The social graph: follows, friendships (consent both ways), blocks, group invitations and
per-user privacy settings, in SQLite (``<paths.feedback>/social.sqlite3``).

Rules (the service enforces them through this module only):

* **Follow** is one-way and needs no consent, but only ever shows what the followee made
  ``public``.
* **Friends** = a friend request accepted by the addressee; a request while the reverse request is
  pending accepts both at once (both sides asked). Unfriending, declining and cancelling are one
  ``DELETE``.
* **Block** removes every edge between the two users (friendship, follows both ways, requests,
  invitations) and forbids new ones in either direction; the blocked user sees nothing of the
  blocker. The refusal does not say "blocked" (the same reason as for a stranger).
* **Privacy** (per user, private by default): ``activity`` and ``friend_list`` each one of
  ``private`` (only the user), ``friends`` or ``public`` (any signed-in user not blocked).
* **Group consent**: a user may be put in a caller's group when they are friends, or when they
  accepted the caller's group invitation and it has not expired.
* **Erasure** (:func:`erase_user`) deletes every row naming the user, in every table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from serving.social.db import SqliteStore

DB_NAME = "social.sqlite3"
Visibility = Literal["private", "friends", "public"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "friends", "public")
DEFAULT_INVITATION_TTL_S = 48 * 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS follows (
    follower TEXT NOT NULL, followee TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (follower, followee), CHECK (follower <> followee));
CREATE INDEX IF NOT EXISTS follows_followee ON follows (followee);
CREATE TABLE IF NOT EXISTS friend_requests (
    requester TEXT NOT NULL, addressee TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (requester, addressee), CHECK (requester <> addressee));
CREATE INDEX IF NOT EXISTS friend_requests_addressee ON friend_requests (addressee);
CREATE TABLE IF NOT EXISTS friendships (
    user_a TEXT NOT NULL, user_b TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (user_a, user_b), CHECK (user_a < user_b));
CREATE INDEX IF NOT EXISTS friendships_b ON friendships (user_b);
CREATE TABLE IF NOT EXISTS blocks (
    blocker TEXT NOT NULL, blocked TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (blocker, blocked), CHECK (blocker <> blocked));
CREATE INDEX IF NOT EXISTS blocks_blocked ON blocks (blocked);
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY, inviter TEXT NOT NULL, invitee TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at REAL NOT NULL, expires_at REAL NOT NULL, CHECK (inviter <> invitee));
CREATE INDEX IF NOT EXISTS invitations_invitee ON invitations (invitee);
CREATE INDEX IF NOT EXISTS invitations_inviter ON invitations (inviter);
CREATE TABLE IF NOT EXISTS privacy (
    user_id TEXT PRIMARY KEY,
    activity TEXT NOT NULL CHECK (activity IN ('private', 'friends', 'public')),
    friend_list TEXT NOT NULL CHECK (friend_list IN ('private', 'friends', 'public')),
    updated_at REAL NOT NULL);
"""

# every (table, column) that names a user: erasure and export walk this list
USER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("follows", "follower"),
    ("follows", "followee"),
    ("friend_requests", "requester"),
    ("friend_requests", "addressee"),
    ("friendships", "user_a"),
    ("friendships", "user_b"),
    ("blocks", "blocker"),
    ("blocks", "blocked"),
    ("invitations", "inviter"),
    ("invitations", "invitee"),
    ("privacy", "user_id"),
)


class SocialError(Exception):
    """A refused social operation: ``status`` (403/404/409) and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Privacy:
    activity: Visibility = "private"
    friend_list: Visibility = "private"


@dataclass(frozen=True)
class Invitation:
    id: str
    inviter: str
    invitee: str
    status: str
    created_at: float
    expires_at: float


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


class SocialStore(SqliteStore):
    """The graph in one SQLite file; every method is one transaction."""

    SCHEMA = SCHEMA

    def __init__(self, path: Path, invitation_ttl_s: float = DEFAULT_INVITATION_TTL_S) -> None:
        super().__init__(path)
        self.invitation_ttl_s = invitation_ttl_s

    @classmethod
    def in_folder(cls, folder: Path, **kwargs: float) -> SocialStore:
        return cls(Path(folder) / DB_NAME, **kwargs)

    # ---- reads -----------------------------------------------------------------------------
    def is_blocked_either_way(self, a: str, b: str) -> bool:
        rows = self.query(
            "SELECT 1 FROM blocks WHERE (blocker=? AND blocked=?) OR (blocker=? AND blocked=?)",
            (a, b, b, a),
        )
        return bool(rows)

    def are_friends(self, a: str, b: str) -> bool:
        return bool(
            self.query("SELECT 1 FROM friendships WHERE user_a=? AND user_b=?", _pair(a, b))
        )

    def friends(self, user: str) -> list[str]:
        rows = self.query(
            "SELECT user_b AS u FROM friendships WHERE user_a=? "
            "UNION SELECT user_a FROM friendships WHERE user_b=? ORDER BY u",
            (user, user),
        )
        return [r[0] for r in rows]

    def following(self, user: str) -> list[str]:
        rows = self.query("SELECT followee FROM follows WHERE follower=? ORDER BY 1", (user,))
        return [r[0] for r in rows]

    def followers(self, user: str) -> list[str]:
        rows = self.query("SELECT follower FROM follows WHERE followee=? ORDER BY 1", (user,))
        return [r[0] for r in rows]

    def blocked_by(self, user: str) -> list[str]:
        """Users ``user`` has blocked (only ever shown to ``user``)."""
        rows = self.query("SELECT blocked FROM blocks WHERE blocker=? ORDER BY 1", (user,))
        return [r[0] for r in rows]

    def requests(self, user: str) -> dict[str, list[str]]:
        incoming = self.query(
            "SELECT requester FROM friend_requests WHERE addressee=? ORDER BY created_at", (user,)
        )
        outgoing = self.query(
            "SELECT addressee FROM friend_requests WHERE requester=? ORDER BY created_at", (user,)
        )
        return {"incoming": [r[0] for r in incoming], "outgoing": [r[0] for r in outgoing]}

    def privacy(self, user: str) -> Privacy:
        rows = self.query("SELECT activity, friend_list FROM privacy WHERE user_id=?", (user,))
        if not rows:
            return Privacy()
        return Privacy(activity=rows[0]["activity"], friend_list=rows[0]["friend_list"])

    def can_see(self, viewer: str, owner: str, visibility: Visibility) -> bool:
        """Whether ``viewer`` may read something of ``owner`` shared at ``visibility``."""
        if viewer == owner:
            return True
        if visibility == "private" or self.is_blocked_either_way(viewer, owner):
            return False
        if visibility == "public":
            return True
        return self.are_friends(viewer, owner)

    def invitations(self, user: str, now: float | None = None) -> list[Invitation]:
        """Unexpired invitations sent or received by ``user``."""
        now = time.time() if now is None else now
        rows = self.query(
            "SELECT * FROM invitations WHERE (inviter=? OR invitee=?) AND expires_at>? "
            "ORDER BY created_at",
            (user, user, now),
        )
        return [Invitation(**dict(r)) for r in rows]

    def group_consents(self, caller: str, member: str, now: float | None = None) -> bool:
        """``member`` agreed to be in ``caller``'s groups: friends, or an accepted invitation."""
        if caller == member:
            return True
        if self.is_blocked_either_way(caller, member):
            return False
        if self.are_friends(caller, member):
            return True
        now = time.time() if now is None else now
        rows = self.query(
            "SELECT 1 FROM invitations WHERE inviter=? AND invitee=? AND status='accepted' "
            "AND expires_at>?",
            (caller, member, now),
        )
        return bool(rows)

    def knows(self, user: str) -> bool:
        """The user appears anywhere in the graph (has a row in any table)."""
        return any(
            self.query(f"SELECT 1 FROM {table} WHERE {column}=? LIMIT 1", (user,))
            for table, column in USER_COLUMNS
        )

    def export(self, user: str) -> dict[str, object]:
        """Every social row naming ``user`` (GDPR access), grouped by what it is."""
        privacy = self.privacy(user)
        return {
            "privacy": {"activity": privacy.activity, "friend_list": privacy.friend_list},
            "friends": self.friends(user),
            "following": self.following(user),
            "followers": self.followers(user),
            "blocked": self.blocked_by(user),
            "friend_requests": self.requests(user),
            "invitations": [vars(i) for i in self.invitations(user, now=0.0)],
        }

    # ---- writes ----------------------------------------------------------------------------
    def _refuse_if_blocked(self, a: str, b: str) -> None:
        if self.is_blocked_either_way(a, b):
            raise SocialError(403, f"{b} cannot be reached")

    def request_friend(self, requester: str, addressee: str) -> str:
        """Ask ``addressee`` for friendship; returns ``"requested"`` or ``"friends"``."""
        if requester == addressee:
            raise SocialError(409, "you cannot befriend yourself")
        now = time.time()
        with self.transaction() as c:
            self._refuse_if_blocked(requester, addressee)
            if self.are_friends(requester, addressee):
                return "friends"
            reverse = c.execute(
                "SELECT 1 FROM friend_requests WHERE requester=? AND addressee=?",
                (addressee, requester),
            ).fetchone()
            if reverse:
                self._make_friends(c, requester, addressee, now)
                return "friends"
            c.execute(
                "INSERT OR IGNORE INTO friend_requests VALUES (?, ?, ?)",
                (requester, addressee, now),
            )
        return "requested"

    def accept_friend(self, addressee: str, requester: str) -> None:
        """``addressee`` accepts ``requester``'s pending request (404 when there is none)."""
        with self.transaction() as c:
            found = c.execute(
                "SELECT 1 FROM friend_requests WHERE requester=? AND addressee=?",
                (requester, addressee),
            ).fetchone()
            if not found:
                raise SocialError(404, f"no pending friend request from {requester}")
            self._make_friends(c, requester, addressee, time.time())

    @staticmethod
    def _make_friends(c, a: str, b: str, now: float) -> None:  # type: ignore[no-untyped-def]
        c.execute(
            "DELETE FROM friend_requests WHERE (requester=? AND addressee=?) "
            "OR (requester=? AND addressee=?)",
            (a, b, b, a),
        )
        c.execute("INSERT OR IGNORE INTO friendships VALUES (?, ?, ?)", (*_pair(a, b), now))

    def unfriend(self, user: str, other: str) -> bool:
        """End a friendship, or decline/cancel a request, either direction; True if any existed."""
        with self.transaction() as c:
            n = c.execute(
                "DELETE FROM friendships WHERE user_a=? AND user_b=?", _pair(user, other)
            ).rowcount
            n += c.execute(
                "DELETE FROM friend_requests WHERE (requester=? AND addressee=?) "
                "OR (requester=? AND addressee=?)",
                (user, other, other, user),
            ).rowcount
        return n > 0

    def follow(self, follower: str, followee: str) -> None:
        if follower == followee:
            raise SocialError(409, "you cannot follow yourself")
        with self.transaction() as c:
            self._refuse_if_blocked(follower, followee)
            c.execute(
                "INSERT OR IGNORE INTO follows VALUES (?, ?, ?)", (follower, followee, time.time())
            )

    def unfollow(self, follower: str, followee: str) -> bool:
        with self.transaction() as c:
            return (
                c.execute(
                    "DELETE FROM follows WHERE follower=? AND followee=?", (follower, followee)
                ).rowcount
                > 0
            )

    def block(self, blocker: str, blocked: str) -> None:
        """Block ``blocked`` and drop every edge between the two users."""
        if blocker == blocked:
            raise SocialError(409, "you cannot block yourself")
        a, b = blocker, blocked
        with self.transaction() as c:
            c.execute("DELETE FROM friendships WHERE user_a=? AND user_b=?", _pair(a, b))
            for table, x, y in (
                ("follows", "follower", "followee"),
                ("friend_requests", "requester", "addressee"),
                ("invitations", "inviter", "invitee"),
            ):
                c.execute(
                    f"DELETE FROM {table} WHERE ({x}=? AND {y}=?) OR ({x}=? AND {y}=?)",
                    (a, b, b, a),
                )
            c.execute("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?)", (a, b, time.time()))

    def unblock(self, blocker: str, blocked: str) -> bool:
        with self.transaction() as c:
            return (
                c.execute(
                    "DELETE FROM blocks WHERE blocker=? AND blocked=?", (blocker, blocked)
                ).rowcount
                > 0
            )

    def set_privacy(self, user: str, privacy: Privacy) -> None:
        for value in (privacy.activity, privacy.friend_list):
            if value not in VISIBILITIES:
                raise SocialError(409, f"visibility must be one of {list(VISIBILITIES)}")
        with self.transaction() as c:
            c.execute(
                "INSERT INTO privacy VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                "activity=excluded.activity, friend_list=excluded.friend_list, "
                "updated_at=excluded.updated_at",
                (user, privacy.activity, privacy.friend_list, time.time()),
            )

    def invite(self, inviter: str, invitee: str, ttl_s: float | None = None) -> Invitation:
        """A group invitation from ``inviter``; ``invitee`` accepts it to consent."""
        if inviter == invitee:
            raise SocialError(409, "you cannot invite yourself")
        now = time.time()
        inv = Invitation(
            id=uuid.uuid4().hex,
            inviter=inviter,
            invitee=invitee,
            status="pending",
            created_at=now,
            expires_at=now + (self.invitation_ttl_s if ttl_s is None else ttl_s),
        )
        with self.transaction() as c:
            self._refuse_if_blocked(inviter, invitee)
            c.execute(
                "INSERT INTO invitations VALUES (?, ?, ?, ?, ?, ?)",
                (inv.id, inv.inviter, inv.invitee, inv.status, inv.created_at, inv.expires_at),
            )
        return inv

    def answer_invitation(self, invitee: str, invitation_id: str, accept: bool) -> None:
        """Accept or decline (delete) an invitation addressed to ``invitee`` (404 otherwise)."""
        with self.transaction() as c:
            row = c.execute(
                "SELECT 1 FROM invitations WHERE id=? AND invitee=? AND expires_at>?",
                (invitation_id, invitee, time.time()),
            ).fetchone()
            if not row:
                raise SocialError(404, "no such invitation for you (or it expired)")
            if accept:
                c.execute("UPDATE invitations SET status='accepted' WHERE id=?", (invitation_id,))
            else:
                c.execute("DELETE FROM invitations WHERE id=?", (invitation_id,))

    def revoke_invitation(self, user: str, invitation_id: str) -> bool:
        """Either party withdraws an invitation (the invitee revokes consent)."""
        with self.transaction() as c:
            return (
                c.execute(
                    "DELETE FROM invitations WHERE id=? AND (inviter=? OR invitee=?)",
                    (invitation_id, user, user),
                ).rowcount
                > 0
            )

    def erase(self, user: str) -> int:
        """Delete every row naming ``user``; returns how many."""
        removed = 0
        with self.transaction() as c:
            for table, column in USER_COLUMNS:
                removed += c.execute(
                    f"DELETE FROM {table} WHERE {column}=?",
                    (user,),
                ).rowcount
        return removed

    def members_without_consent(self, caller: str, members: Iterable[str]) -> list[str]:
        """The ``members`` who have not agreed to be in ``caller``'s groups."""
        return [m for m in members if not self.group_consents(caller, m)]


def erase_user(folder: Path, user: str) -> int:
    """Remove ``user`` from the social graph stored in ``folder`` (called by the erasure path)."""
    path = Path(folder) / DB_NAME
    if not path.exists():
        return 0
    store = SocialStore(path)
    try:
        return store.erase(user)
    finally:
        store.close()
