"""The social graph's rules on a real SQLite file (no service)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from serving.social.store import (
    USER_COLUMNS,
    Privacy,
    SocialError,
    SocialStore,
    erase_user,
)


@pytest.fixture
def store(tmp_path: Path) -> SocialStore:
    return SocialStore.in_folder(tmp_path)


def test_database_is_wal(store: SocialStore) -> None:
    assert store.query("PRAGMA journal_mode") == []  # never written: no file, no rows
    assert not store.path.exists()
    store.request_friend("a", "b")  # the first write creates it
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"


def test_friendship_needs_both_sides(store: SocialStore) -> None:
    assert store.request_friend("a", "b") == "requested"
    assert not store.are_friends("a", "b")
    assert not store.group_consents("a", "b")
    assert store.requests("b") == {"incoming": ["a"], "outgoing": []}
    store.accept_friend("b", "a")
    assert store.are_friends("b", "a") and store.friends("a") == ["b"]
    assert store.group_consents("a", "b") and store.group_consents("b", "a")
    assert store.requests("b") == {"incoming": [], "outgoing": []}


def test_crossing_requests_make_friends(store: SocialStore) -> None:
    store.request_friend("a", "b")
    assert store.request_friend("b", "a") == "friends"
    assert store.are_friends("a", "b")


def test_accepting_a_request_that_was_never_sent_is_404(store: SocialStore) -> None:
    with pytest.raises(SocialError) as err:
        store.accept_friend("b", "a")
    assert err.value.status == 404


def test_following_is_not_consent(store: SocialStore) -> None:
    store.follow("a", "b")
    assert store.followers("b") == ["a"]
    assert not store.group_consents("a", "b")
    assert not store.can_see("a", "b", "friends")
    assert store.can_see("a", "b", "public")


def test_block_drops_every_edge_and_refuses_new_ones(store: SocialStore) -> None:
    store.request_friend("a", "b")
    store.accept_friend("b", "a")
    store.follow("a", "b")
    store.follow("b", "a")
    inv = store.invite("a", "b")
    store.answer_invitation("b", inv.id, accept=True)
    store.block("b", "a")
    assert not store.are_friends("a", "b")
    assert store.following("a") == [] and store.following("b") == []
    assert store.invitations("a") == []
    assert not store.group_consents("a", "b")
    assert not store.can_see("a", "b", "public")
    for attempt in (store.request_friend, store.follow, store.invite):
        with pytest.raises(SocialError) as err:
            attempt("a", "b")
        assert err.value.status == 403
        assert "blocked" not in err.value.reason
    assert store.unblock("b", "a")
    store.follow("a", "b")


def test_invitation_consent_is_directional_and_expires(store: SocialStore) -> None:
    inv = store.invite("a", "b", ttl_s=60)
    assert not store.group_consents("a", "b")
    with pytest.raises(SocialError):
        store.answer_invitation("a", inv.id, accept=True)  # only the invitee accepts
    store.answer_invitation("b", inv.id, accept=True)
    assert store.group_consents("a", "b")
    assert not store.group_consents("b", "a")
    assert not store.group_consents("a", "b", now=time.time() + 61)
    assert store.revoke_invitation("b", inv.id)
    assert not store.group_consents("a", "b")


def test_privacy_defaults_private(store: SocialStore) -> None:
    assert store.privacy("a") == Privacy("private", "private")
    store.request_friend("a", "b")
    store.accept_friend("b", "a")
    assert not store.can_see("b", "a", store.privacy("a").activity)
    store.set_privacy("a", Privacy(activity="friends"))
    assert store.can_see("b", "a", store.privacy("a").activity)
    assert not store.can_see("c", "a", store.privacy("a").activity)


def test_erase_removes_every_row_naming_the_user(store: SocialStore, tmp_path: Path) -> None:
    store.request_friend("a", "b")
    store.accept_friend("b", "a")
    store.request_friend("a", "c")
    store.request_friend("d", "a")
    store.follow("a", "c")
    store.follow("c", "a")
    store.block("a", "e")
    store.block("f", "a")
    store.invite("a", "c")
    store.invite("c", "a")
    store.set_privacy("a", Privacy("public", "public"))
    assert store.knows("a")
    removed = erase_user(tmp_path, "a")
    assert removed == 10  # 1 friendship, 2 requests, 2 follows, 2 blocks, 2 invitations, privacy
    conn = sqlite3.connect(store.path)
    for table, column in USER_COLUMNS:
        n = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column}='a'").fetchone()[0]
        assert n == 0, (table, column)
    assert not store.knows("a")
    assert store.friends("b") == []
    assert erase_user(tmp_path / "nowhere", "a") == 0
