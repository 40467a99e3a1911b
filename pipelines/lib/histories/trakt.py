"""Trakt watch history JSON (the ``GET /sync/history`` items, as export tools save them): a list of
``{id, watched_at, action, type: movie|episode, movie|show: {title, year, ids: {trakt, slug, imdb,
tmdb, tvdb}}, episode: {season, number, title}}``.

Every item is one view at ``watched_at`` (UTC). A movie resolves by its TMDB movie id, then IMDb id,
then title and year; an episode resolves to its show (TMDB tv id, IMDb id, title and year) and
keeps season, number and episode title. Quarantine lines are the 1-based line where the item's
JSON object starts. A file that is not valid JSON, or not a list, cannot be imported at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    conform_events,
    empty_quarantine,
    read_text,
)
from pipelines.lib.schemas import UTC_US

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


def _event(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _BadItem("item is not a JSON object")
    kind = _need(item, "type", str, "")
    when = _parse_time(_need(item, "watched_at", str, ""))
    if kind == "movie":
        work = _need(item, "movie", dict, "")
        where, title_type = "movie.", "movie"
    elif kind == "episode":
        work = _need(item, "show", dict, "")
        where, title_type = "show.", "series"
    else:
        raise _BadItem(f"unknown type {kind!r} (expected movie or episode)")
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
    event = {
        "raw_title": title,
        "raw_identity": ident,
        "year": year,
        "title_type": title_type,
        "tmdb_id": _opt_int(ids, "tmdb"),
        "imdb_id": imdb or None,
        "event_time": when,
        "season": None,
        "episode": None,
        "episode_title": None,
    }
    if kind == "episode":
        ep = _need(item, "episode", dict, "")
        event["season"] = _need(ep, "season", int, "episode.")
        event["episode"] = _need(ep, "number", int, "episode.")
        ep_title = ep.get("title")
        event["episode_title"] = (
            ep_title.strip() if isinstance(ep_title, str) and ep_title.strip() else None
        )
    return event


def parse_trakt(paths: list[Path], user_id: str) -> ParseResult:
    """Trakt history JSON files -> raw events."""
    results = []
    for path in paths:
        file = str(path)
        events: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        for line, item, raw in json_array_items(read_text(path), file):
            try:
                events.append({**_event(item), "line": line})
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
                "line": pl.Int64,
            },
        ).with_columns(user_id=pl.lit(user_id), source=pl.lit(SOURCE), file=pl.lit(file))
        quarantine = (
            pl.DataFrame(bad, schema=empty_quarantine().schema) if bad else empty_quarantine()
        )
        results.append(ParseResult(conform_events(frame), quarantine))
    return ParseResult.combine(results)
