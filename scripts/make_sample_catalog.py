"""Turn ``data/sample/catalog_seed.csv`` into recorded, real-shaped TMDB and JustWatch responses.

Usage::

    .venv/bin/python scripts/make_sample_catalog.py [--seed-csv PATH] [--out DIR] [--seed N]

The output folder (default ``data/sample/recorded``, layout in :mod:`pipelines.lib.recorded`) is
rebuilt in a staging folder and swapped in at the end, so a rerun is atomic and removes stale
files. Everything is deterministic: each title draws from its own ``random.Random`` keyed on
``(seed, kind, tmdb id)``, JSON is written compactly in a fixed key order and gzip headers carry
``mtime=0``; the same seed CSV always gives byte-identical files.

Titles, people, genres, keywords and overviews come from the hand-made seed. Everything else is
synthetic but plausible: poster paths, budgets, season counts, person/keyword ids, JustWatch node
ids and every offer (which services carry a title in which country, prices, deep links). TMDB's
watch-provider lists are derived from the same synthetic offers (TMDB's data comes from JustWatch).
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import logging
import math
import random
import re
import string
import sys
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.atomic import atomic_write_bytes, staged_dir
from pipelines.lib.matching import normalize_title
from pipelines.lib.recorded import (
    EXPORT_PREFIX,
    RECORDED_COUNTRIES,
    RecordedLayout,
    dump_json,
    query_key,
)

logger = logging.getLogger("make_sample_catalog")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED_CSV = ROOT / "data" / "sample" / "catalog_seed.csv"
DEFAULT_ALIASES_CSV = ROOT / "data" / "sample" / "title_aliases.csv"
"""Hand-made other names (TMDB alternative titles and translations) of some titles."""
DEFAULT_SEARCH_ONLY_CSV = ROOT / "data" / "sample" / "search_only_seed.csv"
"""Titles TMDB knows but discover does not list (found only by /search and /find: late
resolution of what the sample catalogue lacks); same columns as the seed."""
ALIAS_COLUMNS = ["type", "tmdb_id", "source", "iso_3166_1", "iso_639_1", "title"]
SEARCH_QUERIES = (("movie", "Mad Max"), ("movie", "Dark"), ("tv", "Dark"))
"""Recorded /search queries besides every name of the search-only titles."""
DEFAULT_OUT = ROOT / "data" / "sample" / "recorded"
DEFAULT_SEED = 20261128
RECORDED_ON = date(2026, 11, 28)
"""Date in the names of the recorded daily-export files."""

PAGE_SIZE = 20
SEARCH_FIRST = 5
"""Results kept in a recorded GetSearchTitles response."""

COLUMNS = [
    "tmdb_id", "type", "title", "original_title", "year", "release_date", "runtime", "genres",
    "original_language", "directors", "cast", "keywords", "overview", "popularity",
    "vote_average", "vote_count", "imdb_id",
]  # fmt: skip

DEFAULT_TABLES = ROOT / "data" / "sample" / "catalog_tables.yaml"
"""The generator's hand tables (genres, languages, providers, prices, ownership)."""

Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Price = Annotated[float, Field(gt=0)]


class ProviderEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jw_clear: str
    short: Annotated[str, Field(pattern=r"^[a-z]{3}$")]
    package_id: int
    tmdb_name: str
    display_priority: int


class CurrencyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    format: str


class CatalogTables(BaseModel):
    """Schema of ``data/sample/catalog_tables.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    movie_genres: dict[int, str]
    tv_genres: dict[int, str]
    jw_genres: dict[str, Annotated[str, Field(pattern=r"^[a-z]{3}$")]]
    languages: dict[str, tuple[str, str, Country]]
    country_names: dict[Country, str]
    origin_overrides: dict[Country, list[str]]
    providers: dict[str, ProviderEntry]
    subscription_pool: dict[str, Annotated[int, Field(gt=0)]]
    currency: dict[Country, CurrencyEntry]
    prices: dict[Country, dict[str, tuple[Price, Price] | Price]]
    disney: dict[Literal["movie", "tv"], list[int]]
    originals_tv: dict[str, list[int]]
    miniseries: list[int]

    @model_validator(mode="after")
    def _consistent(self) -> CatalogTables:
        problems = [
            f"jw_genres has no entry for genre {g!r}"
            for g in [*self.movie_genres.values(), *self.tv_genres.values()]
            if g not in self.jw_genres
        ]
        problems += [
            f"languages.{code}: country {c!r} is not in country_names"
            for code, (_, _, c) in self.languages.items()
            if c not in self.country_names
        ]
        problems += [
            f"origin_overrides: country {c!r} is not in country_names"
            for c in self.origin_overrides
            if c not in self.country_names
        ]
        problems += [
            f"{section}: unknown provider {p!r}"
            for section, names in (
                ("subscription_pool", self.subscription_pool),
                ("originals_tv", self.originals_tv),
            )
            for p in names
            if p not in self.providers
        ]
        problems += [
            f"prices.{c}: needs old, HD, _4K (rent, buy) and season"
            for c, tiers in self.prices.items()
            if set(tiers) != {"old", "HD", "_4K", "season"}
            or not isinstance(tiers["season"], float)
            or any(not isinstance(tiers[t], tuple) for t in ("old", "HD", "_4K"))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TablesError(ValueError):
    """The tables file is malformed (the message names the file and the entry)."""


def load_tables(path: Path = DEFAULT_TABLES) -> CatalogTables:
    """Read and validate the generator's hand tables."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CatalogTables.model_validate(raw)
    except yaml.YAMLError as exc:
        raise TablesError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        entry = ".".join(str(p) for p in first["loc"]) or "<file>"
        raise TablesError(f"{path}: entry {entry}: {first['msg']}") from exc


TABLES = load_tables()
MOVIE_GENRES = TABLES.movie_genres
TV_GENRES = TABLES.tv_genres
JW_GENRE = TABLES.jw_genres
LANGUAGES = TABLES.languages
"""original_language -> (English name, native name, usual origin country)."""
COUNTRY_NAMES = TABLES.country_names


@dataclass(frozen=True)
class Provider:
    technical: str
    jw_clear: str
    short: str
    package_id: int
    tmdb_name: str
    display_priority: int


PROVIDERS = {name: Provider(name, **entry.model_dump()) for name, entry in TABLES.providers.items()}
SUBSCRIPTION_POOL = list(TABLES.subscription_pool.items())
CURRENCY = {c: (e.code, e.format) for c, e in TABLES.currency.items()}
PRICES = TABLES.prices
"""(rent, buy) per country and tier, and a season's price."""
DISNEY = {(kind, i) for kind, ids in TABLES.disney.items() for i in ids}
ORIGINALS = {("tv", i): provider for provider, ids in TABLES.originals_tv.items() for i in ids}
"""(kind, id) -> provider in every recorded country."""
MINISERIES = set(TABLES.miniseries)
ORIGIN_OVERRIDES = {title: c for c, titles in TABLES.origin_overrides.items() for title in titles}
"""Titles whose origin country is not their language's usual one."""


class SeedError(ValueError):
    """The seed CSV is malformed (the message names file and line)."""


@dataclass(frozen=True)
class Seed:
    tmdb_id: int
    kind: str  # "movie" | "tv"
    title: str
    original_title: str
    year: int
    release_date: str
    runtime: int
    genres: list[str]
    language: str
    directors: list[str]
    cast: list[str]
    keywords: list[str]
    overview: str
    popularity: float
    vote_average: float
    vote_count: int
    imdb_id: str | None


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split("|") if v.strip()]


def read_seed(path: Path) -> list[Seed]:
    """Parse and validate the seed CSV; any bad row raises :class:`SeedError` with file:line."""
    seeds: list[Seed] = []
    seen: set[tuple[str, int]] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != COLUMNS:
            raise SeedError(f"{path}:1: header must be {','.join(COLUMNS)}")
        line = 1
        for row in reader:
            start, line = line + 1, reader.line_num
            where = f"{path}:{start}"
            if len(row) != len(COLUMNS):
                raise SeedError(f"{where}: expected {len(COLUMNS)} fields, found {len(row)}")
            rec = dict(zip(COLUMNS, row, strict=True))
            try:
                seed = Seed(
                    tmdb_id=int(rec["tmdb_id"]),
                    kind=rec["type"],
                    title=rec["title"].strip(),
                    original_title=rec["original_title"].strip(),
                    year=int(rec["year"]),
                    release_date=rec["release_date"],
                    runtime=int(rec["runtime"]),
                    genres=_split(rec["genres"]),
                    language=rec["original_language"],
                    directors=_split(rec["directors"]),
                    cast=_split(rec["cast"]),
                    keywords=_split(rec["keywords"]),
                    overview=rec["overview"].strip(),
                    popularity=float(rec["popularity"]),
                    vote_average=float(rec["vote_average"]),
                    vote_count=int(rec["vote_count"]),
                    imdb_id=rec["imdb_id"] or None,
                )
            except ValueError as exc:
                raise SeedError(f"{where}: {exc}") from exc
            problems = []
            if seed.kind not in ("movie", "tv"):
                problems.append(f"type {seed.kind!r} is not movie|tv")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", seed.release_date):
                problems.append(f"release_date {seed.release_date!r} is not YYYY-MM-DD")
            elif int(seed.release_date[:4]) != seed.year:
                problems.append("year does not match release_date")
            allowed = MOVIE_GENRES if seed.kind == "movie" else TV_GENRES
            unknown = [g for g in seed.genres if g not in allowed.values()]
            if unknown:
                problems.append(f"unknown {seed.kind} genres {unknown}")
            if seed.language not in LANGUAGES:
                problems.append(f"original_language {seed.language!r} has no entry in LANGUAGES")
            if not seed.title or not seed.overview:
                problems.append("title and overview are required")
            if seed.imdb_id and not re.fullmatch(r"tt\d{7,8}", seed.imdb_id):
                problems.append(f"imdb_id {seed.imdb_id!r} is not tt + 7-8 digits")
            if (seed.kind, seed.tmdb_id) in seen:
                problems.append(f"duplicate {seed.kind} id {seed.tmdb_id}")
            if problems:
                raise SeedError(f"{where}: " + "; ".join(problems))
            seen.add((seed.kind, seed.tmdb_id))
            seeds.append(seed)
    if not seeds:
        raise SeedError(f"{path}: no titles")
    return seeds


# ---- small deterministic helpers ----------------------------------------------------------------
def stable_int(text: str, lo: int, hi: int) -> int:
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return lo + digest % (hi - lo + 1)


def stable_hex(text: str, n: int = 24) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def slugify(text: str) -> str:
    return query_key(text)


def image_path(rng: random.Random) -> str:
    return "/" + "".join(rng.choices(string.ascii_letters + string.digits, k=27)) + ".jpg"


def genre_ids(kind: str, names: list[str]) -> list[int]:
    table = {v: k for k, v in (MOVIE_GENRES if kind == "movie" else TV_GENRES).items()}
    return [table[n] for n in names]


def origin_country(seed: Seed) -> str:
    return ORIGIN_OVERRIDES.get(seed.title) or LANGUAGES[seed.language][2]


def person(name: str, department: str) -> dict[str, Any]:
    pid = stable_int("person:" + name, 1, 4_999_999)
    return {
        "adult": False,
        "gender": stable_int("gender:" + name, 0, 2),
        "id": pid,
        "known_for_department": department,
        "name": name,
        "original_name": name,
        "popularity": round(stable_int("ppop:" + name, 50, 9000) / 100, 3),
        "profile_path": "/" + stable_hex("profile:" + name, 27) + ".jpg",
    }


def credits(seed: Seed) -> dict[str, Any]:
    cast = []
    for order, name in enumerate(seed.cast):
        entry = person(name, "Acting")
        entry.update(
            cast_id=order + 1,
            character="",
            credit_id=stable_hex(f"credit:{seed.kind}:{seed.tmdb_id}:{name}"),
            order=order,
        )
        cast.append(entry)
    crew = []
    if seed.kind == "movie":
        for name in seed.directors:
            entry = person(name, "Directing")
            entry.update(
                credit_id=stable_hex(f"crew:{seed.tmdb_id}:{name}"),
                department="Directing",
                job="Director",
            )
            crew.append(entry)
    out: dict[str, Any] = {"cast": cast, "crew": crew}
    if seed.kind == "movie":
        out["id"] = seed.tmdb_id
    return out


def keyword_list(seed: Seed) -> list[dict[str, Any]]:
    return [{"id": stable_int("kw:" + k, 1000, 330000), "name": k} for k in seed.keywords]


def spoken(seed: Seed) -> list[dict[str, str]]:
    english, native, _ = LANGUAGES[seed.language]
    return [{"english_name": english, "iso_639_1": seed.language, "name": native}]


# ---- TMDB details ----------------------------------------------------------------------------------
def movie_details(seed: Seed, rng: random.Random) -> dict[str, Any]:
    country = origin_country(seed)
    scale = seed.vote_count / 10000
    budget = 0 if rng.random() < 0.15 else int(round(rng.uniform(3, 40) * 1e6 * (0.3 + scale), -5))
    revenue = 0 if budget == 0 else int(round(budget * rng.uniform(0.8, 6.0), -4))
    return {
        "adult": False,
        "backdrop_path": image_path(rng),
        "belongs_to_collection": None,
        "budget": budget,
        "genres": [
            {"id": i, "name": n}
            for i, n in zip(genre_ids("movie", seed.genres), seed.genres, strict=True)
        ],
        "homepage": "",
        "id": seed.tmdb_id,
        "imdb_id": seed.imdb_id,
        "origin_country": [country],
        "original_language": seed.language,
        "original_title": seed.original_title,
        "overview": seed.overview,
        "popularity": seed.popularity,
        "poster_path": image_path(rng),
        "production_companies": [],
        "production_countries": [{"iso_3166_1": country, "name": COUNTRY_NAMES[country]}],
        "release_date": seed.release_date,
        "revenue": revenue,
        "runtime": seed.runtime,
        "spoken_languages": spoken(seed),
        "status": "Released",
        "tagline": "",
        "title": seed.title,
        "video": False,
        "vote_average": seed.vote_average,
        "vote_count": seed.vote_count,
        "credits": credits(seed),
        "keywords": {"keywords": keyword_list(seed)},
        "external_ids": {
            "id": seed.tmdb_id,
            "imdb_id": seed.imdb_id,
            "wikidata_id": None,
            "facebook_id": None,
            "instagram_id": None,
            "twitter_id": None,
        },
    }


def tv_seasons(seed: Seed, rng: random.Random) -> tuple[int, int]:
    if seed.tmdb_id in MINISERIES:
        return 1, rng.randint(5, 10)
    span = max(1, RECORDED_ON.year - seed.year)
    seasons = 36 if seed.title == "The Simpsons" else max(1, min(span, rng.randint(1, 9)))
    return seasons, seasons * rng.randint(6, 22)


def tv_details(seed: Seed, rng: random.Random) -> dict[str, Any]:
    country = origin_country(seed)
    seasons, episodes = tv_seasons(seed, rng)
    ended = seed.tmdb_id in MINISERIES or rng.random() < 0.5
    last_year = min(RECORDED_ON.year, seed.year + seasons + rng.randint(0, 2))
    kind = (
        "Miniseries"
        if seed.tmdb_id in MINISERIES
        else ("Documentary" if "Documentary" in seed.genres else "Scripted")
    )
    return {
        "adult": False,
        "backdrop_path": image_path(rng),
        "created_by": [
            {
                "id": stable_int("person:" + n, 1, 4_999_999),
                "credit_id": stable_hex(f"creator:{seed.tmdb_id}:{n}"),
                "name": n,
                "original_name": n,
                "gender": stable_int("gender:" + n, 0, 2),
                "profile_path": "/" + stable_hex("profile:" + n, 27) + ".jpg",
            }
            for n in seed.directors
        ],
        "episode_run_time": [seed.runtime],
        "first_air_date": seed.release_date,
        "genres": [
            {"id": i, "name": n}
            for i, n in zip(genre_ids("tv", seed.genres), seed.genres, strict=True)
        ],
        "homepage": "",
        "id": seed.tmdb_id,
        "in_production": not ended,
        "languages": [seed.language],
        "last_air_date": f"{last_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "name": seed.title,
        "networks": [],
        "number_of_episodes": episodes,
        "number_of_seasons": seasons,
        "origin_country": [country],
        "original_language": seed.language,
        "original_name": seed.original_title,
        "overview": seed.overview,
        "popularity": seed.popularity,
        "poster_path": image_path(rng),
        "production_companies": [],
        "production_countries": [{"iso_3166_1": country, "name": COUNTRY_NAMES[country]}],
        "spoken_languages": spoken(seed),
        "status": "Ended" if ended else "Returning Series",
        "tagline": "",
        "type": kind,
        "vote_average": seed.vote_average,
        "vote_count": seed.vote_count,
        "credits": credits(seed),
        "keywords": {"results": keyword_list(seed)},
        "external_ids": {
            "imdb_id": seed.imdb_id,
            "tvdb_id": None,
            "wikidata_id": None,
            "facebook_id": None,
            "instagram_id": None,
            "twitter_id": None,
        },
    }


@dataclass(frozen=True)
class Alias:
    kind: str
    tmdb_id: int
    source: str  # alternative | translation
    country: str
    language: str | None
    title: str


def read_aliases(path: Path, known: set[tuple[str, int]]) -> dict[tuple[str, int], list[Alias]]:
    """Parse the aliases CSV; a bad row (or one naming an unknown title) raises SeedError."""
    out: dict[tuple[str, int], list[Alias]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != ALIAS_COLUMNS:
            raise SeedError(f"{path}:1: header must be {','.join(ALIAS_COLUMNS)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if len(row) != len(ALIAS_COLUMNS):
                raise SeedError(f"{where}: expected {len(ALIAS_COLUMNS)} fields, found {len(row)}")
            rec = dict(zip(ALIAS_COLUMNS, row, strict=True))
            key = (rec["type"], int(rec["tmdb_id"]))
            if key not in known:
                raise SeedError(f"{where}: no seed title {key}")
            if rec["source"] not in ("alternative", "translation"):
                raise SeedError(f"{where}: source must be alternative|translation")
            if rec["source"] == "translation" and rec["iso_639_1"] not in LANGUAGES:
                raise SeedError(f"{where}: translation language must be one of LANGUAGES")
            if not re.fullmatch(r"[A-Z]{2}", rec["iso_3166_1"]) or not rec["title"].strip():
                raise SeedError(f"{where}: a country code and a title are required")
            out.setdefault(key, []).append(
                Alias(key[0], key[1], rec["source"], rec["iso_3166_1"],
                      rec["iso_639_1"] or None, rec["title"].strip())
            )  # fmt: skip
    return out


def _translation(seed: Seed, country: str, language: str, title: str, overview: str) -> dict:
    english, native, _ = LANGUAGES[language]
    data: dict[str, Any] = {"homepage": "", "overview": overview, "tagline": ""}
    if seed.kind == "movie":
        data.update(runtime=0, title=title)
    else:
        data["name"] = title
    return {"iso_3166_1": country, "iso_639_1": language, "name": native,
            "english_name": english, "data": data}  # fmt: skip


def add_aliases(seed: Seed, details: dict[str, Any], aliases: list[Alias]) -> None:
    """Append TMDB's ``alternative_titles`` (movie ``titles``, TV ``results``) and
    ``translations`` (the original language, English, then the seeded ones) to ``details``."""
    alternatives = [
        {"iso_3166_1": a.country, "title": a.title, "type": ""}
        for a in aliases
        if a.source == "alternative"
    ]
    details["alternative_titles"] = {
        ("titles" if seed.kind == "movie" else "results"): alternatives
    }
    own = origin_country(seed)
    translations = [
        _translation(seed, own, seed.language, seed.original_title,
                     seed.overview if seed.language == "en" else "")
    ]  # fmt: skip
    if seed.language != "en":
        translations.append(_translation(seed, "US", "en", seed.title, seed.overview))
    translations += [
        _translation(seed, a.country, a.language or "en", a.title, "")
        for a in aliases
        if a.source == "translation"
    ]
    details["translations"] = {"translations": translations}


def discover_item(seed: Seed, details: dict[str, Any]) -> dict[str, Any]:
    common = {
        "adult": False,
        "backdrop_path": details["backdrop_path"],
        "genre_ids": genre_ids(seed.kind, seed.genres),
        "id": seed.tmdb_id,
        "original_language": seed.language,
        "overview": seed.overview,
        "popularity": seed.popularity,
        "poster_path": details["poster_path"],
        "vote_average": seed.vote_average,
        "vote_count": seed.vote_count,
    }
    if seed.kind == "movie":
        return {
            **common,
            "original_title": seed.original_title,
            "release_date": seed.release_date,
            "title": seed.title,
            "video": False,
        }
    return {
        **common,
        "origin_country": details["origin_country"],
        "original_name": seed.original_title,
        "first_air_date": seed.release_date,
        "name": seed.title,
    }


# ---- synthetic offers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Offer:
    provider: str
    monetization: str  # FLATRATE | FREE | ADS | RENT | BUY
    presentation: str  # SD | HD | _4K
    price: float | None
    url: str
    element_count: int


def _alnum(
    rng: random.Random, n: int, alphabet: str = string.ascii_uppercase + string.digits
) -> str:
    return "".join(rng.choices(alphabet, k=n))


def deep_links(seed: Seed, rng: random.Random) -> dict[str, dict[str, str]]:
    """Per provider, per country deep link (same catalogue id across countries, as services do)."""
    slug = slugify(seed.title)
    movie = seed.kind == "movie"
    nf = f"https://www.netflix.com/title/{rng.choice('78')}{rng.randint(0, 1)}{rng.randint(0, 999999):06d}"
    amz = f"https://www.primevideo.com/detail/0{_alnum(rng, 25)}/"
    dnp = (
        f"https://www.disneyplus.com/{'movies' if movie else 'series'}/{slug}/"
        f"{_alnum(rng, 12, string.ascii_letters + string.digits)}"
    )
    hulu_id = uuid.UUID(int=rng.getrandbits(128))
    hulu = f"https://www.hulu.com/{'movie' if movie else 'series'}/{slug}-{hulu_id}"
    mx = (
        f"https://play.max.com/{'movie' if movie else 'show'}/{uuid.UUID(int=rng.getrandbits(128))}"
    )
    umc = "umc.cmc." + _alnum(rng, 25, string.ascii_lowercase + string.digits)
    gp_id = _alnum(rng, 11, string.ascii_letters + string.digits + "_-")
    tubi = (
        f"https://tubitv.com/{'movies' if movie else 'series'}/{rng.randint(100000, 999999)}/{slug}"
    )
    pluto_id = stable_hex(slug + str(seed.tmdb_id))
    pluto = f"https://pluto.tv/on-demand/{'movies' if movie else 'series'}/{pluto_id}"
    links: dict[str, dict[str, str]] = {}
    for c in RECORDED_COUNTRIES:
        lc = c.lower()
        links[c] = {
            "netflix": nf,
            "amazonprime": amz,
            "disneyplus": dnp,
            "hulu": hulu,
            "max": mx,
            "appletvplus": f"https://tv.apple.com/{lc}/{'movie' if movie else 'show'}/{slug}/{umc}",
            "itunes": f"https://tv.apple.com/{lc}/{'movie' if movie else 'show'}/{slug}/{umc}",
            "googleplay": (
                f"https://play.google.com/store/{'movies' if movie else 'tv'}/details"
                f"?id={gp_id}&gl={c}"
            ),
            "tubi": tubi,
            "pluto": pluto,
        }  # fmt: skip
    return links


def _subscription_homes(seed: Seed, rng: random.Random) -> dict[str, list[str]]:
    key = (seed.kind, seed.tmdb_id)
    if key in ORIGINALS:
        home = ORIGINALS[key]
        return {
            c: [home if (home != "hulu" or c == "US") else "disneyplus"] for c in RECORDED_COUNTRIES
        }
    if key in DISNEY:
        return {c: ["disneyplus"] for c in RECORDED_COUNTRIES}
    names = [n for n, _ in SUBSCRIPTION_POOL]
    weights = [w for _, w in SUBSCRIPTION_POOL]
    k = rng.choices([0, 1, 2, 3], weights=[30, 45, 20, 5])[0]
    us: list[str] = []
    while len(us) < k:
        pick = rng.choices(names, weights=weights)[0]
        if pick not in us:
            us.append(pick)
    homes = {"US": us}
    for c in RECORDED_COUNTRIES[1:]:
        kept = [p for p in us if p != "hulu" and rng.random() < 0.6]
        if rng.random() < 0.3:
            extra = rng.choices(
                [n for n in names if n != "hulu"], weights=weights[:3] + weights[4:]
            )[0]
            if extra not in kept:
                kept.append(extra)
        homes[c] = kept
    return homes


def make_offers(seed: Seed, rng: random.Random, seasons: int) -> dict[str, list[Offer]]:
    """Synthetic offers per recorded country (see module docstring)."""
    links = deep_links(seed, rng)
    homes = _subscription_homes(seed, rng)
    exclusive = (seed.kind, seed.tmdb_id) in ORIGINALS and ORIGINALS[
        (seed.kind, seed.tmdb_id)
    ] != "hulu"
    offers: dict[str, list[Offer]] = {}
    for c in RECORDED_COUNTRIES:
        out: list[Offer] = []
        count = seasons if seed.kind == "tv" else 1
        for p in homes[c]:
            pres = (
                "_4K"
                if seed.year >= 2015 and p in ("netflix", "disneyplus", "appletvplus", "max")
                else "HD"
            )
            out.append(Offer(p, "FLATRATE", pres, None, links[c][p], count))
        prices = PRICES[c]
        if seed.kind == "movie" and not exclusive and rng.random() < 0.88:
            rent, buy = prices["old" if seed.year < 2000 else "HD"]
            for store in ("itunes", "googleplay"):
                if store == "googleplay" and rng.random() < 0.15:
                    continue
                out.append(Offer(store, "RENT", "HD", rent, links[c][store], 1))
                out.append(Offer(store, "BUY", "HD", buy, links[c][store], 1))
            if seed.year >= 2012:
                out.append(Offer("itunes", "BUY", "_4K", prices["_4K"][1], links[c]["itunes"], 1))
        elif seed.kind == "tv" and not exclusive and rng.random() < 0.6:
            for store in ("itunes", "googleplay"):
                out.append(Offer(store, "BUY", "HD", prices["season"], links[c][store], seasons))
        if seed.year < 2005 and not exclusive:
            if c in ("US", "GB") and rng.random() < 0.15:
                out.append(Offer("tubi", "FREE", "HD", None, links[c]["tubi"], 1))
            if rng.random() < 0.1:
                out.append(Offer("pluto", "ADS", "SD", None, links[c]["pluto"], 1))
        offers[c] = out
    return offers


def jw_offer(seed: Seed, country: str, offer: Offer) -> dict[str, Any]:
    p = PROVIDERS[offer.provider]
    currency, fmt = CURRENCY[country]
    ident = "of|" + stable_hex(
        f"{seed.kind}|{seed.tmdb_id}|{country}|{p.technical}|{offer.monetization}|{offer.presentation}",
        16,
    )
    price_text = None
    if offer.price is not None:
        price_text = fmt.format(offer.price)
        if country == "DE":
            price_text = price_text.replace(".", ",")
    return {
        "id": base64.b64encode(ident.encode()).decode(),
        "monetizationType": offer.monetization,
        "presentationType": offer.presentation,
        "retailPrice": price_text,
        "retailPriceValue": offer.price,
        "currency": currency,
        "availableTo": None,
        "elementCount": offer.element_count,
        "package": {
            "id": base64.b64encode(f"pa|{p.package_id}".encode()).decode(),
            "packageId": p.package_id,
            "clearName": p.jw_clear,
            "technicalName": p.technical,
            "shortName": p.short,
        },
        "standardWebURL": offer.url,
    }


def tmdb_providers(seed: Seed, offers: dict[str, list[Offer]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    slug = slugify(seed.title)
    logos = {t: "/" + stable_hex("logo:" + t, 27) + ".jpg" for t in PROVIDERS}
    for c, items in offers.items():
        if not items:
            continue
        entry: dict[str, Any] = {
            "link": f"https://www.themoviedb.org/{seed.kind}/{seed.tmdb_id}-{slug}/watch?locale={c}"
        }
        for o in items:
            cat = o.monetization.lower()
            p = PROVIDERS[o.provider]
            listed = entry.setdefault(cat, [])
            if any(e["provider_id"] == p.package_id for e in listed):
                continue
            listed.append(
                {
                    "logo_path": logos[p.technical],
                    "provider_id": p.package_id,
                    "provider_name": p.tmdb_name,
                    "display_priority": p.display_priority,
                }
            )
        results[c] = entry
    return {"id": seed.tmdb_id, "results": results}


def jw_node(seed: Seed, node_id: str, object_id: int, country: str) -> dict[str, Any]:
    genres: list[str] = []
    for g in seed.genres:
        short = JW_GENRE[g]
        if short not in genres:
            genres.append(short)
    kind = "movie" if seed.kind == "movie" else "tv-show"
    return {
        "id": node_id,
        "objectId": object_id,
        "objectType": "MOVIE" if seed.kind == "movie" else "SHOW",
        "content": {
            "title": seed.title,
            "fullPath": f"/{country.lower()}/{kind}/{slugify(seed.title)}",
            "originalReleaseYear": seed.year,
            "originalReleaseDate": seed.release_date,
            "runtime": seed.runtime,
            "shortDescription": seed.overview,
            "genres": [{"shortName": g, "__typename": "Genre"} for g in genres],
            "externalIds": {
                "imdbId": seed.imdb_id,
                "tmdbId": str(seed.tmdb_id),
                "__typename": "ExternalIds",
            },
            "scoring": {
                "imdbScore": round(min(10.0, seed.vote_average + 0.1), 1),
                "imdbVotes": seed.vote_count * 40,
                "tmdbScore": seed.vote_average,
                "tmdbPopularity": seed.popularity,
                "__typename": "Scoring",
            },
            "__typename": "MovieContent" if seed.kind == "movie" else "ShowContent",
        },
        "__typename": "Movie" if seed.kind == "movie" else "Show",
    }


# ---- the build -------------------------------------------------------------------------------------
def build(
    seeds: list[Seed],
    out: Path,
    seed: int,
    aliases: dict[tuple[str, int], list[Alias]] | None = None,
    search_only: list[Seed] | None = None,
) -> dict[str, int]:
    """Write every recording for ``seeds`` into the (empty) folder ``out``; returns file counts.

    ``search_only`` titles get details, /search and /find answers, but are in no discover page,
    export, provider list or JustWatch answer."""
    aliases = aliases or {}
    search_only = search_only or []
    layout = RecordedLayout(out)
    counts: dict[str, int] = {}

    def write(path: Path, obj: Any) -> None:
        atomic_write_bytes(path, dump_json(obj).encode("utf-8"))
        counts[path.relative_to(out).parts[0]] = counts.get(path.relative_to(out).parts[0], 0) + 1

    used_object_ids: set[int] = set()
    nodes: dict[tuple[str, int], tuple[str, int]] = {}
    details_by: dict[tuple[str, int], dict[str, Any]] = {}
    offers_by: dict[tuple[str, int], dict[str, list[Offer]]] = {}
    for s in seeds:
        rng = random.Random(f"{seed}:{s.kind}:{s.tmdb_id}")
        details = movie_details(s, rng) if s.kind == "movie" else tv_details(s, rng)
        add_aliases(s, details, aliases.get((s.kind, s.tmdb_id), []))
        details_by[(s.kind, s.tmdb_id)] = details
        write(layout.tmdb_details(s.kind, s.tmdb_id), details)
        seasons = details.get("number_of_seasons", 1)
        offers = make_offers(s, rng, seasons)
        offers_by[(s.kind, s.tmdb_id)] = offers
        write(layout.tmdb_providers(s.kind, s.tmdb_id), tmdb_providers(s, offers))
        object_id = stable_int(f"jw:{s.kind}:{s.tmdb_id}", 10_000, 1_999_999)
        while object_id in used_object_ids:
            object_id += 1
        used_object_ids.add(object_id)
        nodes[(s.kind, s.tmdb_id)] = (
            ("tm" if s.kind == "movie" else "ts") + str(object_id),
            object_id,
        )

    for kind, genres in (("movie", MOVIE_GENRES), ("tv", TV_GENRES)):
        write(
            layout.tmdb_genres(kind), {"genres": [{"id": i, "name": n} for i, n in genres.items()]}
        )
        ranked = sorted(
            (s for s in seeds if s.kind == kind), key=lambda s: (-s.popularity, s.tmdb_id)
        )
        total_pages = math.ceil(len(ranked) / PAGE_SIZE)
        for page in range(1, total_pages + 1):
            chunk = ranked[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            write(
                layout.tmdb_discover(kind, page),
                {
                    "page": page,
                    "results": [discover_item(s, details_by[(kind, s.tmdb_id)]) for s in chunk],
                    "total_pages": total_pages,
                    "total_results": len(ranked),
                },
            )
        lines = []
        for s in sorted((s for s in seeds if s.kind == kind), key=lambda s: s.tmdb_id):
            if kind == "movie":
                rec = {"adult": False, "id": s.tmdb_id, "original_title": s.original_title,
                       "popularity": s.popularity, "video": False}  # fmt: skip
            else:
                rec = {
                    "id": s.tmdb_id,
                    "original_name": s.original_title,
                    "popularity": s.popularity,
                }
            lines.append(dump_json(rec))
        name = f"{EXPORT_PREFIX[kind]}_{RECORDED_ON:%m_%d_%Y}.json.gz"
        data = gzip.compress("".join(lines).encode("utf-8"), mtime=0)
        atomic_write_bytes(layout.tmdb_exports / name, data)
        counts["tmdb"] = counts.get("tmdb", 0) + 1

    # JustWatch: one GetTitleOffers response per node, GetSearchTitles per (country, title query).
    for s in seeds:
        node_id, object_id = nodes[(s.kind, s.tmdb_id)]
        node = {
            "id": node_id,
            "objectId": object_id,
            "objectType": "MOVIE" if s.kind == "movie" else "SHOW",
        }
        node["content"] = jw_node(s, node_id, object_id, "US")["content"]
        for c in RECORDED_COUNTRIES:
            node[c] = [jw_offer(s, c, o) for o in offers_by[(s.kind, s.tmdb_id)][c]]
        node["__typename"] = "Movie" if s.kind == "movie" else "Show"
        write(layout.jw_offers(node_id), {"data": {"node": node}})
    normalised = {(s.kind, s.tmdb_id): normalize_title(s.title) for s in seeds}
    queries = {query_key(s.title): s.title for s in seeds}
    for c in RECORDED_COUNTRIES:
        for key, query in sorted(queries.items()):
            wanted = normalize_title(query)
            hits = sorted(
                (s for s in seeds if wanted and wanted in normalised[(s.kind, s.tmdb_id)]),
                key=lambda s: (normalised[(s.kind, s.tmdb_id)] != wanted, -s.popularity),
            )[:SEARCH_FIRST]
            edges = []
            for s in hits:
                node_id, object_id = nodes[(s.kind, s.tmdb_id)]
                node = jw_node(s, node_id, object_id, c)
                edges.append({"node": node, "__typename": "PopularTitlesEdge"})
            write(
                layout.jw_search(c, key),
                {"data": {"popularTitles": {"totalCount": len(hits), "edges": edges,
                                            "__typename": "PopularTitlesConnection"}}},
            )  # fmt: skip
    write_search_and_find(seeds, search_only, aliases, details_by, seed, write, layout)
    return counts


def write_search_and_find(
    seeds: list[Seed],
    search_only: list[Seed],
    aliases: dict[tuple[str, int], list[Alias]],
    details_by: dict[tuple[str, int], dict[str, Any]],
    seed: int,
    write: Any,
    layout: RecordedLayout,
) -> None:
    """TMDB /search answers (every name of the search-only titles and :data:`SEARCH_QUERIES`;
    like TMDB, a query matches titles, original titles and translated/alternative titles) and
    /find answers for every title with an IMDb id."""
    for s in search_only:
        rng = random.Random(f"{seed}:{s.kind}:{s.tmdb_id}")
        details = movie_details(s, rng) if s.kind == "movie" else tv_details(s, rng)
        add_aliases(s, details, aliases.get((s.kind, s.tmdb_id), []))
        details_by[(s.kind, s.tmdb_id)] = details
        write(layout.tmdb_details(s.kind, s.tmdb_id), details)
    everyone = [*seeds, *search_only]
    names = {
        (s.kind, s.tmdb_id): {normalize_title(s.title), normalize_title(s.original_title)}
        | {normalize_title(a.title) for a in aliases.get((s.kind, s.tmdb_id), [])}
        for s in everyone
    }
    queries = dict.fromkeys(SEARCH_QUERIES)
    for s in search_only:
        for name in [
            s.title,
            s.original_title,
            *(a.title for a in aliases.get((s.kind, s.tmdb_id), [])),
        ]:
            queries.setdefault((s.kind, name))
    for kind, query in queries:
        wanted = normalize_title(query)
        hits = sorted(
            (
                s
                for s in everyone
                if s.kind == kind and any(wanted in n for n in names[(s.kind, s.tmdb_id)])
            ),
            key=lambda s: (wanted not in names[(s.kind, s.tmdb_id)], -s.popularity, s.tmdb_id),
        )[:PAGE_SIZE]
        results = [discover_item(s, details_by[(s.kind, s.tmdb_id)]) for s in hits]
        write(layout.tmdb_search(kind, query),
              {"page": 1, "results": results, "total_pages": 1, "total_results": len(results)})  # fmt: skip
    for s in sorted(everyone, key=lambda s: (s.kind, s.tmdb_id)):
        if not s.imdb_id:
            continue
        item = {**discover_item(s, details_by[(s.kind, s.tmdb_id)]), "media_type": s.kind}
        write(
            layout.tmdb_find(s.imdb_id),
            {
                "movie_results": [item] if s.kind == "movie" else [],
                "person_results": [],
                "tv_results": [item] if s.kind == "tv" else [],
                "tv_episode_results": [],
                "tv_season_results": [],
            },
        )


def rebuild(
    seed_csv: Path,
    out: Path,
    seed: int,
    aliases_csv: Path = DEFAULT_ALIASES_CSV,
    search_only_csv: Path = DEFAULT_SEARCH_ONLY_CSV,
) -> dict[str, int]:
    """Build into a staging sibling of ``out`` and swap it in (atomic, idempotent)."""
    seeds = read_seed(seed_csv)
    search_only = read_seed(search_only_csv)
    clash = {(s.kind, s.tmdb_id) for s in seeds} & {(s.kind, s.tmdb_id) for s in search_only}
    if clash:
        raise SeedError(f"{search_only_csv}: titles already in the seed: {sorted(clash)}")
    known = {(s.kind, s.tmdb_id) for s in [*seeds, *search_only]}
    aliases = read_aliases(aliases_csv, known)
    with staged_dir(out) as staging:
        counts = build(seeds, staging, seed, aliases, search_only)
    logger.info("wrote %d titles to %s (%s)", len(seeds), out, counts)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-csv", type=Path, default=DEFAULT_SEED_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--aliases-csv", type=Path, default=DEFAULT_ALIASES_CSV)
    parser.add_argument("--search-only-csv", type=Path, default=DEFAULT_SEARCH_ONLY_CSV)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        rebuild(args.seed_csv, args.out, args.seed, args.aliases_csv, args.search_only_csv)
    except SeedError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
