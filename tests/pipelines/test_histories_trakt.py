"""Trakt history JSON: movies, episodes to their show, malformed items with their line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.trakt import parse_trakt

ITEMS = [
    {
        "id": 1,
        "watched_at": "2024-01-05T20:15:00.000Z",
        "action": "scrobble",
        "type": "movie",
        "movie": {
            "title": "Heat",
            "year": 1995,
            "ids": {"trakt": 10, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949},
        },
    },
    {
        "id": 2,
        "watched_at": "2024-01-06T21:00:00+01:00",
        "action": "watch",
        "type": "episode",
        "episode": {"season": 2, "number": 3, "title": "Ghosts", "ids": {"trakt": 77}},
        "show": {
            "title": "Dark",
            "year": 2017,
            "ids": {"trakt": 5, "slug": "dark", "imdb": "tt5753856", "tmdb": 70523, "tvdb": 334824},
        },
    },
    {
        "id": 3,
        "watched_at": "yesterday",
        "action": "watch",
        "type": "movie",
        "movie": {"title": "X"},
    },
    {"id": 4, "watched_at": "2024-01-07T10:00:00Z", "type": "episode", "show": {"title": "Dark"}},
    {"id": 5, "watched_at": "2024-01-07T10:00:00Z", "type": "season", "show": {"title": "Dark"}},
]


def test_trakt_history(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text(json.dumps(ITEMS, indent=2))
    result = parse_trakt([path], "u")
    ev = result.events
    assert ev.select(
        "raw_title", "title_type", "tmdb_id", "imdb_id", "season", "episode", "episode_title"
    ).rows() == [
        ("Heat", "movie", 949, "tt0113277", None, None, None),
        ("Dark", "series", 70523, "tt5753856", 2, 3, "Ghosts"),
    ]
    assert ev["event_time"].to_list() == [
        datetime(2024, 1, 5, 20, 15, tzinfo=UTC),
        datetime(2024, 1, 6, 20, 0, tzinfo=UTC),  # +01:00 converted to UTC
    ]
    text = path.read_text().splitlines()
    q = result.quarantine
    assert q["reason"].to_list() == [
        "watched_at 'yesterday' is not an ISO date-time",
        "missing episode",
        "unknown type 'season' (expected movie or episode)",
    ]
    for line in q["line"].to_list():
        assert text[line - 1].strip() == "{"
    assert json.loads(q["raw"][0])["id"] == 3
    assert ev["line"].to_list()[0] == 2


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text('[\n  {"id": 1},\n  {"id": 2,,}\n]')
    with pytest.raises(HistoryImportError, match=r"history\.json:3: invalid JSON"):
        parse_trakt([path], "u")
    path.write_text('{"not": "a list"}')
    with pytest.raises(HistoryImportError, match="expected a JSON list"):
        parse_trakt([path], "u")


def test_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text("[]")
    result = parse_trakt([path], "u")
    assert result.events.is_empty() and result.quarantine.is_empty()
