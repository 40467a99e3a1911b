"""Pure converters from TMDB JSON to lake rows: details -> TITLES (with ALIAS rows), watch
providers -> AVAILABILITY.

Wire shapes of the appended objects: movie ``alternative_titles{titles[{iso_3166_1, title,
type}]}``, TV ``alternative_titles{results[...]}``; ``translations{translations[{iso_3166_1,
iso_639_1, name, english_name, data{title (movie) | name (TV), overview, ...}}]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from core.content import content_hash, content_text
from core.schemas import AVAILABILITY, TITLES, conform
from pipelines.lib.tmdb.errors import TMDBPayloadError
from pipelines.lib.tmdb.kinds import Kind, check_kind

CAST_LIMIT = 10

MONETIZATION = {
    "flatrate": "FLATRATE",
    "rent": "RENT",
    "buy": "BUY",
    "ads": "ADS",
    "free": "FREE",
}
"""TMDB watch-provider category -> AVAILABILITY monetization."""

PROVIDER_TECHNICAL_NAMES = {
    8: "netflix",
    9: "amazonprime",
    10: "amazonvideo",
    337: "disneyplus",
    15: "hulu",
    1899: "max",
    384: "hbomax",
    350: "appletvplus",
    2: "itunes",
    3: "googleplay",
    73: "tubi",
    300: "pluto",
    531: "paramountplus",
    386: "peacocktv",
    283: "crunchyroll",
    192: "youtube",
    7: "vudu",
    39: "nowtv",
    30: "wowtv",
}
"""TMDB provider id (shared with JustWatch's package id) -> JustWatch technical name, so that
TMDB and JustWatch rows use the same ``provider_id``. Unknown ids become ``"tmdb:<id>"``."""


def title_id(kind: Kind, tmdb_id: int) -> str:
    """``movie:<id>`` or ``tv:<id>``."""
    return f"{check_kind(kind)}:{int(tmdb_id)}"


def _date(value: Any, where: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise TMDBPayloadError(None, None, f"bad date {value!r}", where) from exc


def _names(items: Any) -> list[str]:
    return [str(i["name"]) for i in items or [] if isinstance(i, dict) and i.get("name")]


def aliases_of(kind: Kind, details: Mapping[str, Any], names: Iterable[str] = ()) -> list[dict]:
    """ALIAS rows ``{country, language, title}`` from appended ``alternative_titles`` (language
    null) and ``translations`` (country and language), without empty titles, the title's own
    ``names`` and repeats, in TMDB's order."""
    alt = details.get("alternative_titles") or {}
    alternatives = alt.get("titles" if kind == "movie" else "results") or []
    translations = (details.get("translations") or {}).get("translations") or []
    seen = {n.strip().casefold() for n in names if n}
    out: list[dict[str, Any]] = []

    def add(country: Any, language: Any, title: Any) -> None:
        text = str(title or "").strip()
        key = (text.casefold(), country, language)
        if not text or text.casefold() in seen or key in seen_keys:
            return
        seen_keys.add(key)
        out.append({"country": country or None, "language": language or None, "title": text})

    seen_keys: set[tuple[str, Any, Any]] = set()
    for a in alternatives:
        if isinstance(a, dict):
            add(a.get("iso_3166_1"), None, a.get("title"))
    for t in translations:
        if isinstance(t, dict):
            data = t.get("data") or {}
            add(
                t.get("iso_3166_1"),
                t.get("iso_639_1"),
                data.get("title" if kind == "movie" else "name"),
            )
    return out


def details_to_title(kind: Kind, details: Mapping[str, Any]) -> dict[str, Any]:
    """One TITLES row from a details response (with appended credits, keywords, external_ids,
    alternative_titles and translations; any of them may be absent).

    Series: ``directors`` are the creators, ``runtime`` the first ``episode_run_time``. A runtime
    of 0 (TMDB's "unknown") becomes null. ``content_hash`` hashes :func:`content_text` of the row.
    """
    check_kind(kind)
    if "id" not in details:
        raise TMDBPayloadError(None, None, "details without an id", kind)
    tmdb_id = int(details["id"])
    where = f"/{kind}/{tmdb_id}"
    credits = details.get("credits") or {}
    cast = sorted(
        (c for c in credits.get("cast") or [] if c.get("name")),
        key=lambda c: (c.get("order") is None, c.get("order") or 0),
    )
    external = details.get("external_ids") or {}
    if kind == "movie":
        name, original = details.get("title"), details.get("original_title")
        released = _date(details.get("release_date"), where)
        directors = list(
            dict.fromkeys(
                c["name"]
                for c in credits.get("crew") or []
                if c.get("job") == "Director" and c.get("name")
            )
        )
        runtime = details.get("runtime")
        keywords = _names((details.get("keywords") or {}).get("keywords"))
        imdb = details.get("imdb_id") or external.get("imdb_id")
    else:
        name, original = details.get("name"), details.get("original_name")
        released = _date(details.get("first_air_date"), where)
        directors = _names(details.get("created_by"))
        runtimes = details.get("episode_run_time") or []
        runtime = runtimes[0] if runtimes else None
        keywords = _names((details.get("keywords") or {}).get("results"))
        imdb = external.get("imdb_id")
    row: dict[str, Any] = {
        "title_id": title_id(kind, tmdb_id),
        "tmdb_id": tmdb_id,
        "imdb_id": imdb or None,
        "type": "movie" if kind == "movie" else "series",
        "title": name or original,
        "original_title": original or name,
        "year": released.year if released else None,
        "release_date": released,
        "overview": (details.get("overview") or "").strip() or None,
        "genres": _names(details.get("genres")),
        "keywords": keywords,
        "cast": [str(c["name"]) for c in cast[:CAST_LIMIT]],
        "directors": directors,
        "runtime": int(runtime) if runtime else None,
        "language": details.get("original_language") or None,
        "popularity": details.get("popularity"),
        "vote_average": details.get("vote_average"),
        "vote_count": details.get("vote_count"),
        "poster_path": details.get("poster_path"),
        "source": "tmdb",
        "aliases": aliases_of(kind, details, [name or "", original or ""]),
    }
    if not row["title"]:
        raise TMDBPayloadError(None, None, "details without a title or name", where)
    row["content_hash"] = content_hash(content_text(row))
    return row


def titles_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """TITLES-conformed frame from :func:`details_to_title` rows."""
    return conform(pl.DataFrame(list(rows), schema=TITLES), "titles")


def provider_technical_name(provider_id: int) -> str:
    """JustWatch technical name of a TMDB provider id (``"tmdb:<id>"`` when not mapped)."""
    return PROVIDER_TECHNICAL_NAMES.get(int(provider_id), f"tmdb:{int(provider_id)}")


def providers_to_availability(
    kind: Kind,
    payload: Mapping[str, Any],
    countries: Iterable[str] | None = None,
    last_seen: datetime | None = None,
) -> list[dict[str, Any]]:
    """AVAILABILITY rows from a watch-providers response (source ``"tmdb"``).

    ``countries`` limits the result (all countries when None); ``deep_link`` is the country's TMDB
    ``link`` (TMDB gives no per-service links); price and presentation are unknown (null).
    """
    check_kind(kind)
    if "id" not in payload:
        raise TMDBPayloadError(None, None, "watch providers without an id", kind)
    tid = title_id(kind, payload["id"])
    keep = set(countries) if countries is not None else None
    seen_at = last_seen or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for country, entry in sorted((payload.get("results") or {}).items()):
        if keep is not None and country not in keep:
            continue
        for category, monetization in MONETIZATION.items():
            for provider in entry.get(category) or []:
                rows.append(
                    {
                        "title_id": tid,
                        "country": country,
                        "provider_id": provider_technical_name(provider["provider_id"]),
                        "provider_name": provider.get("provider_name"),
                        "monetization": monetization,
                        "presentation_type": None,
                        "price": None,
                        "currency": None,
                        "deep_link": entry.get("link"),
                        "source": "tmdb",
                        "last_seen": seen_at,
                    }
                )
    return rows


def availability_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """AVAILABILITY-conformed frame from row dicts."""
    return conform(pl.DataFrame(list(rows), schema=AVAILABILITY), "availability")
