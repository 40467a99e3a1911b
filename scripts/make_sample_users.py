"""Write SYNTHETIC sample users' watch histories in the real export formats.

Usage::

    .venv/bin/python scripts/make_sample_users.py [--seed-csv PATH] [--out DIR] [--seed N]

Ten invented users with distinct tastes (thriller fan, family with kids, anime fan, sitcom
lover, k-drama fan, documentary lover, classic-cinema buff, sci-fi fan, horror fan, romcom fan).
Nobody's real history is in here: every row is drawn from ``data/sample/catalog_seed.csv`` with a
seeded ``random.Random``, so the same seed CSV and seed always give byte-identical files.

Each user gets one or two files in the formats people actually export (Netflix
``NetflixViewingHistory.csv`` with episode lines - one user in a Spanish D/M/YY locale - Netflix
``ViewingActivity.csv`` with two profiles, a trailer, a hook and an autoplayed preview, a Letterboxd
ZIP, IMDb ``ratings.csv`` (saved as ``imdb_ratings.csv``), Trakt history JSON), 20-60 events each, under
``<out>/<user>/``. On purpose, three rows cannot be resolved against the catalogue (titles that
are not in it) and one line is malformed (an impossible date), so the pipeline shows unresolved and
quarantine counts. ``<out>/manifest.json`` lists ``{user, format, path}`` for every file (paths
relative to the manifest); the Dagster ``watch_events`` asset imports exactly those.

**The crowd** (``<out>/crowd/``): :data:`CROWD_USERS` more synthetic viewers, so the nightly has
enough users to learn tastes from (ten personas alone are too few to beat popularity on). Each
viewer mixes one or two latent taste clusters (:data:`TASTES`: weights over genres, original
language, era, acclaim and keywords of the sample catalogue) and adds two favourite people
(directors, creators or cast) and three favourite keywords; titles are drawn without replacement
with a weight mixing taste (``exp(sharpness x affinity)``), popularity skew (``popularity **
skew``) and a share of taste-free noise; history lengths are log-normal (median 22, 6-90 titles).
Two thirds of the crowd share Netflix accounts (five profiles per ``ViewingActivity.csv``); the
rest export Trakt, IMDb, Netflix or Letterboxd files of their own, ratings following affinity.

The output folder is built in a staging folder and swapped in at the end (atomic, removes stale
files).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import random
import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.atomic import staged_dir

logger = logging.getLogger("make_sample_users")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED_CSV = ROOT / "data" / "sample" / "catalog_seed.csv"
DEFAULT_OUT = ROOT / "data" / "sample" / "histories"
DEFAULT_SEED = 42
START = date(2023, 1, 1)
DAYS = 700
EPISODE_TITLES = (
    "Pilot", "The Return", "Homecoming", "Crossroads", "The Storm", "Lost and Found",
    "Night Shift", "Fresh Start", "The Visit", "Endgame", "Old Friends", "The Long Way Round",
)  # fmt: skip
NOT_IN_CATALOGUE = {
    "movie": ("Grandma's 80th Birthday: The Movie", 2024),
    "series": ("Zog and the Flying Doctors", 2020),
    "imdb": ("tt0000001", "Carmencita", 1894),
}
"""The deliberately unresolvable rows (titles that are not in the sample catalogue)."""


@dataclass(frozen=True)
class Title:
    tmdb_id: int
    kind: str  # "movie" | "tv"
    title: str
    original_title: str
    year: int
    release_date: str
    runtime: int
    genres: tuple[str, ...]
    language: str
    directors: str
    imdb_id: str
    vote_average: float
    vote_count: int
    keywords: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    """Directors (or a series' creators) and the billed cast."""
    popularity: float = 1.0

    def has(self, *genres: str) -> bool:
        return any(g in self.genres for g in genres)


def read_seed(path: Path) -> list[Title]:
    """The seed catalogue; a malformed row is an error naming its line."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        titles = []
        for row in reader:
            try:
                titles.append(
                    Title(
                        tmdb_id=int(row["tmdb_id"]),
                        kind=row["type"],
                        title=row["title"],
                        original_title=row["original_title"] or row["title"],
                        year=int(row["year"]),
                        release_date=row["release_date"],
                        runtime=int(row["runtime"] or 0),
                        genres=tuple(g for g in row["genres"].split("|") if g),
                        language=row["original_language"],
                        directors=row["directors"].replace("|", ", "),
                        imdb_id=row["imdb_id"],
                        vote_average=float(row["vote_average"] or 0),
                        vote_count=int(row["vote_count"] or 0),
                        keywords=tuple(k for k in row["keywords"].split("|") if k),
                        people=tuple(
                            x for x in (*row["directors"].split("|"), *row["cast"].split("|")) if x
                        ),
                        popularity=float(row["popularity"] or 1.0),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{reader.line_num}: bad catalogue row: {exc}") from exc
    return titles


class Picker:
    """Deterministic choices from the catalogue for one user."""

    def __init__(self, titles: list[Title], rng: random.Random) -> None:
        self.titles = titles
        self.rng = rng

    def pick(self, kind: str, predicate: Callable[[Title], bool], k: int) -> list[Title]:
        pool = [t for t in self.titles if t.kind == kind and predicate(t)]
        if len(pool) < k:
            raise ValueError(f"only {len(pool)} {kind} titles fit, {k} wanted")
        return self.rng.sample(pool, k)

    def moment(self, title: Title | None = None) -> datetime:
        """An evening in the sample's time span (after ``title``'s release when given)."""
        first = START
        if title is not None and title.release_date:
            first = max(START, date.fromisoformat(title.release_date) + timedelta(days=1))
        day = first + timedelta(days=self.rng.randrange(max(1, DAYS - (first - START).days)))
        return datetime(
            day.year,
            day.month,
            day.day,
            self.rng.randrange(17, 24),
            self.rng.randrange(60),
            self.rng.randrange(60),
            tzinfo=UTC,
        )

    def episodes(self, show: Title, n: int) -> list[tuple[int, int, str, datetime]]:
        """``n`` consecutive episodes (season, number, title, time) of a binge."""
        season = self.rng.randint(1, 3)
        first = self.rng.randint(1, 4)
        when = self.moment(show)
        names = iter(self.rng.sample(EPISODE_TITLES[1:], n))
        out = []
        for i in range(n):
            number = first + i
            name = "Pilot" if (season, number) == (1, 1) else next(names)
            out.append((season, number, name, when + timedelta(minutes=50 * i)))
        return out


def _csv_text(header: list[str], rows: list[list[Any]], quote_all: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(
        buf, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _us_date(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year % 100:02d}"


def _es_date(d: date) -> str:
    return f"{d.day}/{d.month}/{d.year % 100:02d}"


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _slug(t: Title) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{t.title} {t.year}".lower()).strip("-")


def netflix_history(
    p: Picker,
    movies: list[Title],
    shows: list[tuple[Title, int]],
    *,
    season_word: str = "Season",
    date_fmt: Callable[[date], str] = _us_date,
    extra: list[tuple[str, datetime]] = (),
) -> str:
    """``NetflixViewingHistory.csv``: newest first, every field quoted, dates in the locale."""
    lines: list[tuple[datetime, str]] = [(p.moment(m), m.title) for m in movies]
    for show, n in shows:
        for season, _number, name, when in p.episodes(show, n):
            lines.append((when, f"{show.title}: {season_word} {season}: {name}"))
    lines.extend((when, text) for text, when in extra)
    lines.sort(key=lambda x: x[0], reverse=True)
    return _csv_text(
        ["Title", "Date"], [[text, date_fmt(when.date())] for when, text in lines], True
    )


def imdb_ratings(
    p: Picker, rated: list[tuple[Title, int]], extra_rows: list[list[Any]] = ()
) -> str:
    """IMDb ``ratings.csv`` (newest export layout, with Original Title)."""
    header = [
        "Const", "Your Rating", "Date Rated", "Title", "URL", "Title Type", "IMDb Rating",
        "Runtime (mins)", "Year", "Genres", "Num Votes", "Release Date", "Directors", "Original Title",
    ]  # fmt: skip
    rows = []
    for t, rating in rated:
        rows.append(
            [
                t.imdb_id, rating, p.moment(t).date().isoformat(), t.title,
                f"https://www.imdb.com/title/{t.imdb_id}/", "Movie" if t.kind == "movie" else "TV Series",
                f"{t.vote_average:.1f}", t.runtime, t.year, ", ".join(t.genres), t.vote_count * 9,
                t.release_date, t.directors, t.original_title,
            ]
        )  # fmt: skip
    rows.extend(extra_rows)
    rows.sort(key=lambda r: r[2], reverse=True)
    return _csv_text(header, rows)


def trakt_history(p: Picker, movies: list[Title], shows: list[tuple[Title, int]]) -> str:
    """Trakt ``/sync/history`` items, newest first."""
    items: list[dict[str, Any]] = []
    for m in movies:
        items.append(
            {
                "watched_at": p.moment(m),
                "action": p.rng.choice(["scrobble", "checkin", "watch"]),
                "type": "movie",
                "movie": {
                    "title": m.title,
                    "year": m.year,
                    "ids": {"slug": _slug(m), "imdb": m.imdb_id, "tmdb": m.tmdb_id},
                },
            }
        )
    for show, n in shows:
        for season, number, name, when in p.episodes(show, n):
            items.append(
                {
                    "watched_at": when,
                    "action": "scrobble",
                    "type": "episode",
                    "episode": {"season": season, "number": number, "title": name},
                    "show": {
                        "title": show.title,
                        "year": show.year,
                        "ids": {"slug": _slug(show), "imdb": show.imdb_id, "tmdb": show.tmdb_id},
                    },
                }
            )
    items.sort(key=lambda x: x["watched_at"], reverse=True)
    for n, item in enumerate(items, start=1):
        item["id"] = 9_000_000 + n
        item["watched_at"] = item["watched_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ordered = [
        {
            k: item[k]
            for k in ("id", "watched_at", "action", "type", "movie", "episode", "show")
            if k in item
        }
        for item in items
    ]
    return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"


def letterboxd(p: Picker, films: list[Title], liked: Callable[[Title], bool]) -> dict[str, str]:
    """A Letterboxd export folder: a diary (some rewatches), ratings, and watched-only films."""
    diary, ratings, watched = [], [], []
    for i, film in enumerate(films):
        when = p.moment(film).date()
        rating = (
            p.rng.choice([4.0, 4.5, 5.0]) if liked(film) else p.rng.choice([1.5, 2.0, 2.5, 3.0])
        )
        uri = f"https://boxd.it/{film.tmdb_id:x}"
        watched.append([when.isoformat(), film.title, film.year, uri])
        if i % 3 == 2:  # watched and rated, never logged in the diary
            ratings.append([when.isoformat(), film.title, film.year, uri, rating])
            continue
        if i % 5 == 4:  # only marked as watched
            continue
        entry_uri = f"https://boxd.it/{film.tmdb_id * 7 + i:x}"
        diary.append(
            [when.isoformat(), film.title, film.year, entry_uri, rating, "", "", when.isoformat()]
        )
        ratings.append([when.isoformat(), film.title, film.year, uri, rating])
        if i % 4 == 0:
            again = when + timedelta(days=p.rng.randrange(30, 200))
            diary.append(
                [
                    again.isoformat(),
                    film.title,
                    film.year,
                    f"{entry_uri}r",
                    "",
                    "Yes",
                    "rewatch",
                    again.isoformat(),
                ]
            )
    return {
        "diary.csv": _csv_text(
            ["Date", "Name", "Year", "Letterboxd URI", "Rating", "Rewatch", "Tags", "Watched Date"],
            sorted(diary),
        ),
        "ratings.csv": _csv_text(
            ["Date", "Name", "Year", "Letterboxd URI", "Rating"], sorted(ratings)
        ),
        "watched.csv": _csv_text(["Date", "Name", "Year", "Letterboxd URI"], sorted(watched)),
    }


ACTIVITY_HEADER = [
    "Profile Name", "Start Time", "Duration", "Attributes", "Title", "Supplemental Video Type",
    "Device Type", "Bookmark", "Latest Bookmark", "Country",
]  # fmt: skip


def activity_rows(
    p: Picker, profiles: dict[str, tuple[list[Title], list[tuple[Title, int]]]]
) -> list[list[Any]]:
    """``ViewingActivity.csv`` rows (start times as datetimes) of the profiles' movies and episodes."""
    rows: list[list[Any]] = []
    for profile, (movies, shows) in profiles.items():
        device = "Smart TV" if profile != "Kids" else "iPad (Wi-Fi)"
        for m in movies:
            watched = int(m.runtime * 60 * p.rng.choice([1.0, 1.0, 0.95, 0.4]))
            when = p.moment(m)
            rows.append(
                [
                    profile,
                    when,
                    _hms(watched),
                    "",
                    m.title,
                    "",
                    device,
                    _hms(watched),
                    "",
                    "GB (United Kingdom)",
                ]
            )
        for show, n in shows:
            for season, number, name, when in p.episodes(show, n):
                seconds = show.runtime * 60 if show.runtime else 1500
                title = f"{show.title}: Season {season}: {name} (Episode {number})"
                rows.append(
                    [
                        profile,
                        when,
                        _hms(seconds),
                        "",
                        title,
                        "",
                        device,
                        _hms(seconds),
                        "",
                        "GB (United Kingdom)",
                    ]
                )
    return rows


def activity_csv(rows: list[list[Any]]) -> str:
    """The ``ViewingActivity.csv`` text of ``rows``: newest first."""
    rows.sort(key=lambda r: r[1], reverse=True)
    for r in rows:
        r[1] = r[1].strftime("%Y-%m-%d %H:%M:%S")
    return _csv_text(ACTIVITY_HEADER, rows)


def viewing_activity(
    p: Picker, profiles: dict[str, tuple[list[Title], list[tuple[Title, int]]]]
) -> str:
    """``ViewingActivity.csv`` for an account with several profiles, including non-views: a
    trailer, a hook and an autoplayed preview (all dropped by the importer)."""
    rows = activity_rows(p, profiles)
    first_movie = next(iter(profiles.values()))[0][0]
    first_show = next(iter(profiles.values()))[1][0][0]
    when = p.moment()
    rows.append(
        [
            "Parents",
            when,
            "00:02:14",
            "",
            f"{first_movie.title}: Trailer",
            "TRAILER",
            "Smart TV",
            "00:02:14",
            "Not latest view",
            "GB (United Kingdom)",
        ]
    )
    rows.append(
        [
            "Parents",
            when + timedelta(minutes=3),
            "00:00:31",
            "",
            f"{first_show.title}: Season 1: Hook",
            "HOOK",
            "Smart TV",
            "00:00:31",
            "Not latest view",
            "GB (United Kingdom)",
        ]
    )
    rows.append(
        [
            "Parents",
            when + timedelta(minutes=5),
            "00:00:48",
            "Autoplayed: user action: None; ",
            first_movie.title,
            "",
            "Smart TV",
            "00:00:48",
            "Not latest view",
            "GB (United Kingdom)",
        ]
    )
    series_title, _ = NOT_IN_CATALOGUE["series"]
    rows.append(
        [
            "Kids",
            p.moment(),
            "00:22:00",
            "",
            f"{series_title}: Season 1: Pilot (Episode 1)",
            "",
            "iPad (Wi-Fi)",
            "00:22:00",
            "",
            "GB (United Kingdom)",
        ]
    )
    return activity_csv(rows)


def thriller(t: Title) -> bool:
    return t.has("Thriller", "Crime", "Mystery")


def anime(t: Title) -> bool:
    return t.language == "ja" and t.has("Animation")


def korean(t: Title) -> bool:
    return t.language == "ko"


def scifi(t: Title) -> bool:
    return t.has("Science Fiction", "Sci-Fi & Fantasy")


# ---- the crowd: synthetic viewers with latent tastes -------------------------------------------
CROWD_USERS = 240
"""Crowd viewers next to the ten personas (enough that the nightly can learn tastes; see below)."""
HOUSEHOLD_SHARE, HOUSEHOLD_SIZE = 2 / 3, 5
"""Two thirds of the crowd share Netflix accounts, five profiles each (one ``ViewingActivity.csv``
per household: fewer files to import, as a real account export has them)."""
PROFILE_NAMES = ("Alex", "Sam", "Robin", "Kim", "Jo", "Charlie", "Maya", "Leo", "Noor", "Ines",
                 "Tomás", "Yuki", "Priya", "Ola", "Zoe")  # fmt: skip
CROWD_FORMATS = ("trakt", "imdb", "netflix", "letterboxd")
"""The other viewers export on their own, viewer ``i`` in format ``i % 4``."""
TASTE_SHARPNESS = 2.5
"""``exp(sharpness x affinity)``: how strongly a viewer's taste drives their choices."""
POPULARITY_SKEW = 1.3
"""Choices are weighted by ``popularity ** skew`` (blockbusters are watched more by everyone)."""
NOISE = 0.1
"""Share of a viewer's choice weight that ignores taste (what is trending, what a friend showed)."""
HISTORY_MEDIAN, HISTORY_SIGMA, HISTORY_MIN, HISTORY_MAX = 22, 0.7, 6, 90
"""History length: log-normal around 22 titles, a long tail of heavy viewers, clipped."""


@dataclass(frozen=True)
class Taste:
    """A latent taste cluster: weights over a title's genres, language, era and keywords."""

    name: str
    genres: dict[str, float]
    languages: dict[str, float] = field(default_factory=dict)
    keywords: frozenset[str] = frozenset()
    before: int | None = None
    """Classic taste: a bonus for titles released before this year."""
    acclaim: float = 0.0
    """A bonus per point of vote average above 7."""

    def affinity(self, t: Title) -> float:
        genre = sum(self.genres.get(g, 0.0) for g in t.genres) / max(1, len(t.genres)) ** 0.5
        score = genre + self.languages.get(t.language, 0.0)
        score += 0.7 * len(self.keywords.intersection(t.keywords))
        if self.before is not None and t.year < self.before:
            score += 2.0
        return score + self.acclaim * max(0.0, t.vote_average - 7.0)


TASTES = (
    Taste("crime", {"Crime": 1.2, "Thriller": 1.0, "Mystery": 0.8, "Comedy": -0.5},
          keywords=frozenset({"detective", "serial killer", "heist", "mafia", "gangster", "hitman",
                              "drug cartel", "revenge", "con artist", "kidnapping"})),
    Taste("family", {"Family": 1.5, "Animation": 1.2, "Kids": 1.5, "Fantasy": 0.4,
                     "Horror": -2.0, "Crime": -1.0, "War": -1.0}, {"en": 0.5}),
    Taste("anime", {"Animation": 1.0, "Fantasy": 0.3}, {"ja": 2.5},
          keywords=frozenset({"anime", "tokyo"})),
    Taste("comedy", {"Comedy": 1.8, "Romance": 0.3, "Horror": -1.0, "War": -1.0},
          keywords=frozenset({"satire", "dark comedy", "friendship", "high school"})),
    Taste("world", {"Drama": 0.5, "Romance": 0.3},
          {"ko": 2.0, "fr": 2.0, "it": 2.0, "es": 2.0, "de": 2.0, "hi": 2.0, "te": 2.0, "zh": 2.0,
           "cn": 2.0, "sv": 2.0, "pt": 2.0, "ru": 2.0, "en": -0.5}),
    Taste("documentary", {"Documentary": 2.0, "History": 1.5, "War": 1.0, "Music": 1.2,
                          "War & Politics": 1.5}, keywords=frozenset({"based on true story",
                                                                      "world war ii", "nature"})),
    Taste("classic", {"Drama": 0.4, "Western": 1.2, "Romance": 0.3}, before=1980, acclaim=0.8),
    Taste("scifi", {"Science Fiction": 1.8, "Sci-Fi & Fantasy": 1.8, "Adventure": 0.3},
          keywords=frozenset({"dystopia", "time travel", "cyborg", "space travel", "multiverse",
                              "post-apocalypse", "artificial intelligence", "alien"})),
    Taste("horror", {"Horror": 2.5, "Mystery": 0.5, "Thriller": 0.5, "Family": -1.0},
          keywords=frozenset({"zombie", "curse", "haunted house", "serial killer"})),
    Taste("romance", {"Romance": 2.0, "Comedy": 0.6, "Drama": 0.3, "Horror": -1.0},
          keywords=frozenset({"romantic comedy", "forbidden love", "wedding", "love"})),
    Taste("blockbuster", {"Action": 1.2, "Adventure": 1.2, "Action & Adventure": 1.2,
                          "Fantasy": 0.6, "Science Fiction": 0.3},
          keywords=frozenset({"superhero", "martial arts", "wizard", "bounty hunter"})),
    Taste("prestige", {"Drama": 1.0, "History": 0.5, "War": 0.4, "Animation": -0.5},
          acclaim=1.5),
)  # fmt: skip
"""The crowd's taste clusters. Every viewer mixes one or two of them."""


def _weighted_sample(
    rng: random.Random, items: list[Title], weights: list[float], k: int
) -> list[Title]:
    """``k`` items without replacement, item ``i`` drawn with weight ``weights[i]``
    (Efraimidis-Spirakis keys ``u ** (1 / w)``)."""
    keys = [(rng.random() ** (1.0 / w), i) for i, w in enumerate(weights)]
    keys.sort(reverse=True)
    return [items[i] for _, i in keys[:k]]


def crowd_viewer(titles: list[Title], rng: random.Random) -> tuple[list[Title], dict[Title, float]]:
    """One viewer's watched titles (most liked first is NOT implied) and their affinity per title.

    The viewer mixes one taste cluster (60%) or two (70/30), adds two favourite people and three
    favourite keywords taken from the titles that fit those tastes best, and draws a log-normal
    number of titles, each with weight ``(1 - NOISE) x taste share + NOISE x popularity share``,
    the taste share ``exp(sharpness x affinity) x popularity ** skew``.
    """
    if rng.random() < 0.6:
        mix = [(rng.choice(TASTES), 1.0)]
    else:
        first, second = rng.sample(TASTES, 2)
        mix = [(first, 0.7), (second, 0.3)]
    base = {t: sum(w * taste.affinity(t) for taste, w in mix) for t in titles}
    best = sorted(titles, key=lambda t: (-base[t], t.tmdb_id, t.kind))[:25]
    people = set(rng.sample(sorted({x for t in best for x in t.people}), 2))
    keywords = set(rng.sample(sorted({x for t in best for x in t.keywords}), 3))
    affinity = {
        t: base[t] + 1.0 * len(people.intersection(t.people))
        + 0.5 * len(keywords.intersection(t.keywords))
        for t in titles
    }  # fmt: skip
    pop = [t.popularity**POPULARITY_SKEW for t in titles]
    taste = [math.exp(TASTE_SHARPNESS * affinity[t]) * w for t, w in zip(titles, pop, strict=True)]
    total_taste, total_pop = sum(taste), sum(pop)
    weights = [
        (1 - NOISE) * a / total_taste + NOISE * b / total_pop
        for a, b in zip(taste, pop, strict=True)
    ]
    n = round(rng.lognormvariate(math.log(HISTORY_MEDIAN), HISTORY_SIGMA))
    n = min(HISTORY_MAX, max(HISTORY_MIN, n))
    return _weighted_sample(rng, titles, weights, n), affinity


def crowd_files(
    user: str, fmt: str, p: Picker, watched: list[Title], affinity: dict[Title, float]
) -> tuple[str, str | dict[str, str]]:
    """(file name, content) of one crowd viewer's export in ``fmt``.

    Ratings follow affinity: a viewer rates the titles that fit their taste best highest (a
    title's rank among the viewer's own picks, plus noise). Series are watched as binges of
    2-8 episodes; Letterboxd holds films only, so a Letterboxd viewer's series are left out.
    """
    order = sorted(watched, key=lambda t: affinity[t])
    share = {t: (i + 0.5) / len(order) for i, t in enumerate(order)}

    def rating10(t: Title) -> int:
        return min(10, max(1, round(4 + 6 * share[t] + p.rng.gauss(0, 1))))

    movies = [t for t in watched if t.kind == "movie"]
    shows = [(t, p.rng.randint(2, 8)) for t in watched if t.kind == "tv"]
    if fmt == "trakt":
        return "history.json", trakt_history(p, movies, shows)
    if fmt == "imdb":
        return "imdb_ratings.csv", imdb_ratings(p, [(t, rating10(t)) for t in watched])
    if fmt == "netflix":
        return "NetflixViewingHistory.csv", netflix_history(p, movies, shows)
    if fmt == "letterboxd":
        return f"letterboxd-{user}.zip", letterboxd(p, movies, lambda t: share[t] >= 0.4)
    raise ValueError(f"no crowd writer for format {fmt!r}")


def build(
    titles: list[Title], seed: int, crowd_users: int = CROWD_USERS
) -> tuple[dict[str, str | bytes], list[dict[str, str]]]:
    """All files (relative path -> text, or bytes for ZIPs) and the manifest entries."""
    files: dict[str, str | bytes] = {}
    manifest: list[dict[str, str]] = []

    def add(user: str, fmt: str, name: str, text: str | dict[str, str], folder: str = "") -> None:
        path = f"{folder}{user}/{name}"
        if isinstance(text, dict):  # a multi-file export ships as the ZIP the service gives you
            files[path] = deterministic_zip(text)
        else:
            files[path] = text
        manifest.append({"user": user, "format": fmt, "path": path})

    def picker(user: str) -> Picker:
        return Picker(titles, random.Random(f"{seed}:{user}"))

    p = picker("thriller-fan")
    liked = p.pick("movie", thriller, 24)
    disliked = p.pick("movie", lambda t: t.has("Family", "Animation") and not thriller(t), 4)
    shows = p.pick("tv", lambda t: t.has("Crime", "Mystery"), 2)
    unknown_id, unknown_title, unknown_year = NOT_IN_CATALOGUE["imdb"]
    carmencita = [
        unknown_id, 6, "2024-03-03", unknown_title, f"https://www.imdb.com/title/{unknown_id}/",
        "Short", "5.7", 1, unknown_year, "Documentary, Short", 2100, "1894-03-10",
        "William K.L. Dickson", unknown_title,
    ]  # fmt: skip
    rated = (
        [(t, p.rng.randint(8, 10)) for t in liked]
        + [(t, p.rng.randint(2, 5)) for t in disliked]
        + [(s, 9) for s in shows]
    )
    add("thriller-fan", "imdb", "imdb_ratings.csv", imdb_ratings(p, rated, [carmencita]))

    p = picker("family")
    kids_movies = p.pick("movie", lambda t: t.has("Family", "Animation") and t.language == "en", 10)
    kids_shows = p.pick("tv", lambda t: t.has("Family", "Kids"), 2)
    parent_movies = p.pick(
        "movie", lambda t: t.has("Drama", "Comedy") and not t.has("Horror", "War"), 14
    )
    parent_shows = p.pick("tv", lambda t: t.has("Drama") and not t.has("Crime"), 1)
    add(
        "family",
        "netflix-activity",
        "ViewingActivity.csv",
        viewing_activity(
            p,
            {
                "Parents": (parent_movies, [(s, 8) for s in parent_shows]),
                "Kids": (kids_movies, [(s, 8) for s in kids_shows]),
            },
        ),
    )

    p = picker("anime-fan")
    add(
        "anime-fan",
        "trakt",
        "history.json",
        trakt_history(
            p,
            p.pick("movie", anime, 12),
            [(s, n) for s, n in zip(p.pick("tv", anime, 4), (8, 6, 5, 4), strict=True)],
        ),
    )

    p = picker("sitcom-lover")
    sitcoms = p.pick(
        "tv",
        lambda t: t.has("Comedy") and not t.has("Animation", "Drama"),
        4,
    )
    comedies = p.pick("movie", lambda t: t.has("Comedy") and not t.has("Animation"), 8)
    text = netflix_history(
        p, comedies, [(s, n) for s, n in zip(sitcoms, (9, 7, 6, 5), strict=True)]
    )
    header, first, rest = text.split("\n", 2)
    malformed = f'"{sitcoms[0].title}: Season 1: The One Nobody Dated","13/45/23"'
    add(
        "sitcom-lover",
        "netflix",
        "NetflixViewingHistory.csv",
        "\n".join([header, first, malformed, rest]),
    )

    p = picker("kdrama-fan")
    add(
        "kdrama-fan",
        "netflix",
        "NetflixViewingHistory.csv",
        netflix_history(
            p,
            p.pick("movie", korean, 5),
            [(s, n) for s, n in zip(p.pick("tv", korean, 3), (10, 8, 6), strict=True)],
            season_word="Temporada",
            date_fmt=_es_date,
        ),
    )

    p = picker("doc-lover")
    docs = p.pick("movie", lambda t: t.has("Documentary", "History", "Music"), 14)
    add("doc-lover", "letterboxd", "letterboxd-doc-lover.zip", letterboxd(p, docs, lambda t: True))
    doc_shows = p.pick("tv", lambda t: t.has("Documentary", "War & Politics"), 3)
    add("doc-lover", "trakt", "history.json", trakt_history(p, [], [(s, 4) for s in doc_shows]))

    p = picker("classic-cinephile")
    classics = p.pick("movie", lambda t: t.year < 1980, 30)
    add(
        "classic-cinephile",
        "letterboxd",
        "letterboxd-classic-cinephile.zip",
        letterboxd(p, classics, lambda t: t.vote_average >= 8.2),
    )

    p = picker("scifi-fan")
    add(
        "scifi-fan",
        "trakt",
        "history.json",
        trakt_history(
            p,
            p.pick("movie", scifi, 16),
            [(s, n) for s, n in zip(p.pick("tv", scifi, 3), (7, 6, 5), strict=True)],
        ),
    )

    p = picker("horror-fan")
    horror = p.pick("movie", lambda t: t.has("Horror"), 18)
    other = p.pick("movie", lambda t: t.has("Romance") and not t.has("Horror"), 3)
    add(
        "horror-fan",
        "imdb",
        "imdb_ratings.csv",
        imdb_ratings(
            p,
            [(t, p.rng.randint(7, 10)) for t in horror] + [(t, p.rng.randint(1, 4)) for t in other],
        ),
    )

    p = picker("romcom-fan")
    romcoms = p.pick("movie", lambda t: t.has("Romance"), 20)
    unknown_movie, _ = NOT_IN_CATALOGUE["movie"]
    add(
        "romcom-fan",
        "netflix",
        "NetflixViewingHistory.csv",
        netflix_history(
            p,
            romcoms,
            [(s, 6) for s in p.pick("tv", lambda t: t.has("Comedy") and t.has("Drama"), 1)],
            extra=[(unknown_movie, p.moment())],
        ),
    )

    households = round(crowd_users * HOUSEHOLD_SHARE) // HOUSEHOLD_SIZE
    for h in range(1, households + 1):
        account = f"household-{h:02d}"
        p = picker(account)
        profiles = {}
        for name in p.rng.sample(PROFILE_NAMES, HOUSEHOLD_SIZE):
            watched, _ = crowd_viewer(titles, p.rng)
            profiles[name] = (
                [t for t in watched if t.kind == "movie"],
                [(t, p.rng.randint(2, 8)) for t in watched if t.kind == "tv"],
            )
        text = activity_csv(activity_rows(p, profiles))
        add(account, "netflix-activity", "ViewingActivity.csv", text, folder="crowd/")
    for i in range(households * HOUSEHOLD_SIZE + 1, crowd_users + 1):
        user = f"viewer-{i:03d}"
        p = picker(user)
        watched, affinity = crowd_viewer(titles, p.rng)
        fmt = CROWD_FORMATS[i % len(CROWD_FORMATS)]
        name, content = crowd_files(user, fmt, p, watched, affinity)
        add(user, fmt, name, content, folder="crowd/")
    return files, manifest


def deterministic_zip(members: dict[str, str]) -> bytes:
    """A ZIP of text members with fixed timestamps, so regenerating gives identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 28, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name].encode("utf-8"))
    return buffer.getvalue()


def write_atomic(out: Path, files: dict[str, str | bytes], manifest: list[dict[str, str]]) -> None:
    """Build ``out`` in a staging sibling and swap it in (:func:`core.atomic.staged_dir`)."""
    with staged_dir(out) as staging:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(text, bytes):
                path.write_bytes(text)
            else:
                path.write_text(text, encoding="utf-8", newline="")
        (staging / "manifest.json").write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        (staging / "README.md").write_text(README, encoding="utf-8")


README = """# Sample watch histories (synthetic)

Invented users, generated by `scripts/make_sample_users.py` from `data/sample/catalog_seed.csv`
with a fixed seed. No real person's history is in this folder. Each user's files are in the real
export formats (Netflix, Letterboxd, IMDb, Trakt); `manifest.json` lists what the pipeline imports.
Three rows are deliberately unresolvable and one line is malformed. `crowd/` holds 240 more
synthetic viewers with latent tastes (32 Netflix households of five profiles, 80 own exports) so
the nightly has enough users to learn from. Regenerate, do not edit.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-csv", type=Path, default=DEFAULT_SEED_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    files, manifest = build(read_seed(args.seed_csv), args.seed)
    write_atomic(args.out, files, manifest)
    logger.info(
        "wrote %d files for %d users to %s",
        len(files),
        len({m["user"] for m in manifest}),
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
