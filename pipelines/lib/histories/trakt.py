"""Trakt JSON, as export tools save the API's answers: ``GET /sync/history`` and
``GET /sync/watched/{movies,shows}``.

* History: a list of ``{id, watched_at, action, type: movie|episode, movie|show: {title, year,
  ids: {trakt, slug, imdb, tmdb, tvdb}}, episode: {season, number, title}}``; every item is one
  view at ``watched_at`` (UTC).
* Watched: a list of ``{plays, last_watched_at, last_updated_at, movie: {...}}`` or ``{plays,
  last_watched_at, last_updated_at, reset_at, show: {...}, seasons: [{number, episodes: [{number,
  plays, last_watched_at}]}]}``. Trakt keeps only the last time of each watched thing, so a
  watched movie is one view at its ``last_watched_at`` and a watched show one view per episode at
  the episode's ``last_watched_at`` (a show without ``seasons``, as ``extended=noseasons`` gives
  it, is one view of the series); ``plays`` above 1 marks a rewatch. The event ids equal those of
  the same last views imported from a history file, so importing both adds nothing twice.

A movie resolves by its TMDB movie id, then IMDb id, then title and year; an episode resolves to
its show (TMDB tv id, IMDb id, title and year) and keeps season, number and episode title.
Quarantine lines are the 1-based line where the item's JSON object starts (a watched show is
quarantined whole). A file that is not valid JSON, or not a list, cannot be imported at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from core.schemas import UTC_US
from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    conform_events,
    empty_quarantine,
)
from pipelines.lib.histories.files import MAX_EXPORT_ROWS, read_export

SOURCE = "trakt"
_MAX_RAW = 2000


def json_array_items(text: str, file: str) -> list[tuple[int, Any, str]]:
    """``(line, value, raw text)`` for every element of the top-level JSON array in ``text``."""
    decoder = json.JSONDecoder()
    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\n\r":
            i += 1
        return i

    def fail(i: int, message: str) -> HistoryImportError:
        return HistoryImportError(file, message, line=text.count("\n", 0, i) + 1)

    i = skip(0)
    if i == n or text[i] != "[":
        raise fail(i, "expected a JSON list of history items")
    i = skip(i + 1)
    items: list[tuple[int, Any, str]] = []
    line, counted = 1, 0
    if i < n and text[i] == "]":
        i = skip(i + 1)
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                raise fail(exc.pos, f"invalid JSON: {exc.msg}") from exc
            line += text.count("\n", counted, i)
            counted = i
            items.append((line, value, text[i:end]))
            if len(items) > MAX_EXPORT_ROWS:
                raise fail(i, f"more than {MAX_EXPORT_ROWS:,} items: not a personal export")
            i = skip(end)
            if i < n and text[i] == ",":
                i = skip(i + 1)
                continue
            if i < n and text[i] == "]":
                i = skip(i + 1)
                break
            raise fail(i, "expected ',' or ']' after a list item")
    if i != n:
        raise fail(i, "unexpected content after the JSON list")
    return items


class _BadItem(ValueError):
    pass


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        raise _BadItem(f"missing {where}{key}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _BadItem(f"{where}{key} has the wrong type")
    return value


def _opt_int(ids: dict, key: str) -> int | None:
    value = ids.get(key)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _BadItem(f"ids.{key} is not an integer")


def _parse_time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadItem(f"watched_at {value!r} is not an ISO date-time") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _work(work: Any, where: str, kind: str) -> dict[str, Any]:
    """Title, year and ids of a ``movie`` or ``show`` object."""
    if not isinstance(work, dict):
        raise _BadItem(f"{where[:-1]} is not an object")
    title = _need(work, "title", str, where).strip()
    if not title:
        raise _BadItem(f"empty {where}title")
    year = work.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        raise _BadItem(f"{where}year is not an integer")
    ids = work.get("ids") or {}
    if not isinstance(ids, dict):
        raise _BadItem(f"{where}ids is not an object")
    imdb = ids.get("imdb")
    if imdb is not None and not isinstance(imdb, str):
        raise _BadItem(f"{where}ids.imdb is not a string")
    trakt_id = _opt_int(ids, "trakt")
    ident = f"{kind}:{trakt_id}" if trakt_id is not None else f"{kind}:{ids.get('slug') or title}"
    return {
        "raw_title": title,
        "raw_identity": ident,
        "year": year,
        "title_type": "movie" if kind == "movie" else "series",
        "tmdb_id": _opt_int(ids, "tmdb"),
        "imdb_id": imdb or None,
        "season": None,
        "episode": None,
        "episode_title": None,
        "rewatch": None,
    }


def _history_event(item: dict) -> dict[str, Any]:
    kind = _need(item, "type", str, "")
    when = _parse_time(_need(item, "watched_at", str, ""))
    if kind == "movie":
        event = _work(_need(item, "movie", dict, ""), "movie.", kind)
    elif kind == "episode":
        event = _work(_need(item, "show", dict, ""), "show.", kind)
        ep = _need(item, "episode", dict, "")
        event["season"] = _need(ep, "season", int, "episode.")
        event["episode"] = _need(ep, "number", int, "episode.")
        ep_title = ep.get("title")
        event["episode_title"] = (
            ep_title.strip() if isinstance(ep_title, str) and ep_title.strip() else None
        )
    else:
        raise _BadItem(f"unknown type {kind!r} (expected movie or episode)")
    return {**event, "event_time": when}


def _plays(obj: dict, where: str) -> bool | None:
    plays = obj.get("plays")
    if plays is None:
        return None
    if not isinstance(plays, int) or isinstance(plays, bool) or plays < 0:
        raise _BadItem(f"{where}plays is not a count")
    return plays > 1


def _watched_events(item: dict) -> list[dict[str, Any]]:
    if "movie" in item:
        event = _work(item["movie"], "movie.", "movie")
        when = _parse_time(_need(item, "last_watched_at", str, ""))
        return [{**event, "event_time": when, "rewatch": _plays(item, "")}]
    show = _work(item["show"], "show.", "episode")
    seasons = item.get("seasons")
    if seasons is None:
        when = _parse_time(_need(item, "last_watched_at", str, ""))
        return [{**show, "event_time": when, "rewatch": _plays(item, "")}]
    if not isinstance(seasons, list):
        raise _BadItem("seasons is not a list")
    events = []
    for season in seasons:
        number = _need(season, "number", int, "seasons[].")
        episodes = _need(season, "episodes", list, "seasons[].")
        for ep in episodes:
            where = "seasons[].episodes[]."
            events.append(
                {
                    **show,
                    "season": number,
                    "episode": _need(ep, "number", int, where),
                    "event_time": _parse_time(_need(ep, "last_watched_at", str, where)),
                    "rewatch": _plays(ep, where),
                }
            )
    return events


def _events(item: Any) -> list[dict[str, Any]]:
    """The events of one history item (one) or watched item (one per movie or episode)."""
    if not isinstance(item, dict):
        raise _BadItem("item is not a JSON object")
    if "type" in item or "watched_at" in item:
        return [_history_event(item)]
    if "last_watched_at" in item or "plays" in item:
        if "movie" not in item and "show" not in item:
            raise _BadItem("watched item without movie or show")
        return _watched_events(item)
    raise _BadItem("neither a history item (type, watched_at) nor a watched item (plays)")


def parse_trakt(paths: list[Path], user_id: str) -> ParseResult:
    """Trakt history JSON files -> raw events."""
    results = []
    for path in paths:
        file = str(path)
        events: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        for line, item, raw in json_array_items(read_export(path, max_rows=None).text, file):
            try:
                events.extend({**event, "line": line} for event in _events(item))
            except _BadItem as exc:
                bad.append(
                    {
                        "file": file,
                        "line": line,
                        "source": SOURCE,
                        "raw": raw[:_MAX_RAW],
                        "reason": str(exc),
                    }
                )
        frame = pl.DataFrame(
            events,
            schema={
                "raw_title": pl.String,
                "raw_identity": pl.String,
                "year": pl.Int32,
                "title_type": pl.String,
                "tmdb_id": pl.Int64,
                "imdb_id": pl.String,
                "event_time": UTC_US,
                "season": pl.Int32,
                "episode": pl.Int32,
                "episode_title": pl.String,
                "rewatch": pl.Boolean,
                "line": pl.Int64,
            },
        ).with_columns(user_id=pl.lit(user_id), source=pl.lit(SOURCE), file=pl.lit(file))
        quarantine = (
            pl.DataFrame(bad, schema=empty_quarantine().schema) if bad else empty_quarantine()
        )
        results.append(ParseResult(conform_events(frame), quarantine))
    return ParseResult.combine(results)
