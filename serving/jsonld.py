"""schema.org JSON-LD views of titles (``Movie`` / ``TVSeries``) with where-to-watch actions.

Availability follows Google's media-actions shape: one ``WatchAction`` per offer with an
``EntryPoint`` deep link and an ``ActionAccessSpecification``. Categories: FLATRATE ->
``subscription`` (with ``requiresSubscription``), FREE and ADS -> ``free``, RENT -> ``rent`` and
BUY -> ``buy`` (both with ``expectsAcceptanceOf`` an ``Offer`` carrying price and currency).
CINEMA offers and offers without a deep link cannot be acted on at home and only appear in the
``x-arw.watch_providers`` extension. Metadata shown comes from TMDB and offers from JustWatch, so
``creditText`` and ``x-arw.attribution`` carry both attributions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from core import JUSTWATCH_ATTRIBUTION, TMDB_ATTRIBUTION

JSONLD_MEDIA_TYPE = "application/ld+json"
TMDB_IMAGE_BASE = "https://image.tmdb.org/t/p/w500"
ACTION_PLATFORMS = [
    "http://schema.org/DesktopWebPlatform",
    "http://schema.org/MobileWebPlatform",
]
CATEGORY = {
    "FLATRATE": "subscription",
    "FREE": "free",
    "ADS": "free",
    "RENT": "rent",
    "BUY": "buy",
}


def iso_duration(minutes: int | None) -> str | None:
    """ISO-8601 duration of a runtime in minutes (136 -> ``PT2H16M``); None when unknown."""
    if minutes is None or minutes <= 0:
        return None
    hours, mins = divmod(int(minutes), 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins else "")


def watch_action(offer: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``WatchAction`` for one availability row, or None if it is not actionable."""
    category = CATEGORY.get(str(offer.get("monetization")))
    link = offer.get("deep_link")
    if category is None or not link:
        return None
    access: dict[str, Any] = {
        "@type": "ActionAccessSpecification",
        "category": category,
        "eligibleRegion": [{"@type": "Country", "name": offer["country"]}],
    }
    if category == "subscription":
        access["requiresSubscription"] = {
            "@type": "MediaSubscription",
            "name": offer.get("provider_name") or offer.get("provider_id"),
        }
    if category in ("rent", "buy") and offer.get("price") is not None:
        access["expectsAcceptanceOf"] = {
            "@type": "Offer",
            "price": float(offer["price"]),
            "priceCurrency": offer.get("currency"),
            "eligibleRegion": {"@type": "Country", "name": offer["country"]},
        }
    return {
        "@type": "WatchAction",
        "target": {
            "@type": "EntryPoint",
            "urlTemplate": link,
            "actionPlatform": ACTION_PLATFORMS,
        },
        "actionAccessibilityRequirement": access,
        "provider": {"@type": "Organization", "name": offer.get("provider_name")},
    }


def _people(names: Sequence[str] | None) -> list[dict[str, str]]:
    return [{"@type": "Person", "name": n} for n in (names or []) if n]


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (None, [], {}, "")}


def content_view(
    title: Mapping[str, Any], offers: Sequence[Mapping[str, Any]], base_url: str
) -> dict[str, Any]:
    """JSON-LD for one ``TITLES`` row and its ``AVAILABILITY`` rows."""
    url = f"{base_url.rstrip('/')}/content/{title['title_id']}"
    is_series = title.get("type") == "series"
    released = title.get("release_date")
    released_iso = released.isoformat() if isinstance(released, date) else released
    rating = None
    if title.get("vote_count") and title.get("vote_average") is not None:
        rating = {
            "@type": "AggregateRating",
            "ratingValue": float(title["vote_average"]),
            "bestRating": 10,
            "worstRating": 0,
            "ratingCount": int(title["vote_count"]),
        }
    actions = [a for a in (watch_action(o) for o in offers) if a is not None]
    credits = [TMDB_ATTRIBUTION] + ([JUSTWATCH_ATTRIBUTION] if offers else [])
    view: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "TVSeries" if is_series else "Movie",
        "@id": url,
        "identifier": title["title_id"],
        "url": url,
        "name": title.get("title"),
        "alternateName": (
            title.get("original_title")
            if title.get("original_title") != title.get("title")
            else None
        ),
        "description": title.get("overview"),
        "image": f"{TMDB_IMAGE_BASE}{title['poster_path']}" if title.get("poster_path") else None,
        "genre": list(title.get("genres") or []),
        "keywords": ", ".join(title.get("keywords") or []) or None,
        "inLanguage": title.get("language"),
        "actor": _people(title.get("cast")),
        ("creator" if is_series else "director"): _people(title.get("directors")),
        "aggregateRating": rating,
        "sameAs": (
            f"https://www.imdb.com/title/{title['imdb_id']}/" if title.get("imdb_id") else None
        ),
        "creditText": " ".join(credits),
        "potentialAction": actions,
    }
    if is_series:
        view["startDate"] = released_iso
        view["timeRequired"] = iso_duration(title.get("runtime"))
    else:
        view["datePublished"] = released_iso
        view["duration"] = iso_duration(title.get("runtime"))
    view = _drop_empty(view)
    view["x-arw"] = {
        "content_id": title["title_id"],
        "machine_view": url,
        "availability": f"{url}/availability",
        "watch_providers": [offer_summary(o) for o in offers],
        "attribution": {"metadata": TMDB_ATTRIBUTION, "availability": JUSTWATCH_ATTRIBUTION},
    }
    return view


def offer_summary(offer: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-JSON form of an availability row used in API responses."""
    return {
        "country": offer.get("country"),
        "provider_id": offer.get("provider_id"),
        "provider_name": offer.get("provider_name"),
        "monetization": offer.get("monetization"),
        "presentation_type": offer.get("presentation_type"),
        "price": offer.get("price"),
        "currency": offer.get("currency"),
        "deep_link": offer.get("deep_link"),
    }
