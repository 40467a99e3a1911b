"""Netflix exports: the per-profile ``NetflixViewingHistory.csv`` and the account-wide
``ViewingActivity.csv``.

Episode titles look like ``Show: Season 2: Episode title``. Show names may contain colons
(``Code Geass: Lelouch of the Rebellion: Season 2: ...``), so a title is split at its first
*season marker* segment, not at its first colon (:func:`split_netflix_title`). Markers:

* ``Season N`` and its translations (Temporada, Saison, Staffel, Stagione, Seizoen, Sezon, Säsong,
  Sæson, Sesong, Kausi, Сезон, シーズン, 시즌, 第N季...), number-first forms (``1. Sezon``,
  ``2. évad``), UK ``Series N``, and ``Season 1 (Episode 3)``;
* ``Limited Series`` / ``Miniseries`` and translations (no season number);
* ``Part N``, ``Volume N``, ``Book N`` (and translations): only when an episode title follows, so
  the movies ``Kill Bill: Vol. 2`` or ``Harry Potter ...: Part 2`` stay movies. Their number is
  kept as the season (Money Heist's "Part 3" is TMDB's season 3);
* ``Chapter N`` followed by a title starts the *episode* (``Stranger Things: Chapter Two: The
  Weirdo on Maple Street``; chapters number episodes, not seasons), while ``John Wick: Chapter 2``
  stays a movie;
* the show name repeated with a number (``Stranger Things: Stranger Things 2: ...``) is season N.

An episode event resolves to its series (``title_type="series"``); season number, episode number
(from ``(Episode 3)`` or an ``Episode 3`` title) and episode title are kept.

``NetflixViewingHistory.csv`` dates are in the account's locale; the day/month order is detected
from the whole file or given as ``date_format`` (:mod:`pipelines.lib.histories.dates`). The export
has dates only: the event time is midnight UTC of that date.

``ViewingActivity.csv`` rows are views with a UTC start time. Not views, so dropped and counted
(not quarantined): supplemental videos (any ``Supplemental Video Type`` such as TRAILER,
TEASER_TRAILER, HOOK, RECAP, PROMOTIONAL), autoplayed views shorter than
:data:`AUTOPLAY_MIN_SECONDS` (previews that played while browsing), views the user hid from their
history (``View was hidden = Yes``: importing them would undo the user's choice) and rows of other
profiles when ``profile`` is given. Without ``profile``, every profile becomes the user
``"<user_id>-<profile slug>"``; with it, only that profile is imported, as ``user_id``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.lib.histories.common import (
    HistoryImportError,
    ParseResult,
    blank,
    clean,
    conform_events,
    hms_seconds,
    parse_delimited,
    split_bad,
)
from pipelines.lib.histories.dates import (
    DateFormatError,
    DateOrder,
    detect_date_order,
    parse_date_format,
    parse_dates,
)
from pipelines.lib.histories.files import encoding_warning, read_export
from pipelines.lib.matching import normalize_title

SOURCE_HISTORY = "netflix"
SOURCE_ACTIVITY = "netflix-activity"

AUTOPLAY_MIN_SECONDS = 120
"""An autoplayed view shorter than this (2 minutes) is a preview, not a view."""

_NUMBER_WORDS = dict(
    zip(
        (
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen", "twenty",
        ),
        range(1, 21),
        strict=True,
    )
)  # fmt: skip
_NUM = r"(?P<n>\d+|" + "|".join(_NUMBER_WORDS) + r")"
_EP_WORDS = (
    r"(?:episode|episodio|épisode|episódio|folge|aflevering|odcinek|afsnit|avsnitt|jakso|ep\.?)"
)
_SEASON_WORDS = (
    r"(?:season|series|temporada|saison|staffel|stagione|seizoen|sezon|sezonul|sezona|sezóna|"
    r"säsong|sæson|sesong|kausi|évad|évadok|сезон|σεζόν|עונה|الموسم|시즌|シーズン)"
)
_SEASON = re.compile(
    rf"^{_SEASON_WORDS}\s*{_NUM}(?:\.\d+|[a-z])?(?:\s*\(\s*{_EP_WORDS}\s*(?P<ep>\d+)\s*\))?$",
    re.IGNORECASE,
)
_SEASON_NUMBER_FIRST = re.compile(
    rf"^(?P<n>\d+)\s*(?:\.|ª|º|\.ª)?\s*{_SEASON_WORDS}$|^第\s*(?P<n2>\d+)\s*(?:季|シーズン|시즌|期)$",
    re.IGNORECASE,
)
_LIMITED = re.compile(
    r"^(?:limited series|miniseries|mini-series|miniserie|minisérie|mini-série|minissérie|"
    r"minisserie|miniserial|miniseriál|série limitée|série limitada|serie limitada|"
    r"serie limitata|miniserien|miniseria|リミテッドシリーズ)$",
    re.IGNORECASE,
)
_PART = re.compile(
    rf"^(?:part|parte|partie|teil|deel|część|del|osa|volume|vol\.?|volumen|"
    rf"book|libro|livre|buch|boek|collection|colección)\s*{_NUM}$",
    re.IGNORECASE,
)
_CHAPTER = re.compile(
    rf"^(?:chapter|capítulo|capitolo|chapitre|kapitel|hoofdstuk)\s*{_NUM}$", re.IGNORECASE
)
_EPISODE_SUFFIX = re.compile(
    rf"^(?P<title>.*?)\s*\(\s*{_EP_WORDS}\s*(?P<ep>\d+)\s*\)$", re.IGNORECASE
)
_EPISODE_ONLY = re.compile(rf"^{_EP_WORDS}\s*(?P<ep>\d+)$|^第\s*(?P<ep2>\d+)\s*話$", re.IGNORECASE)
_CHAPTER_EPISODE = re.compile(
    r"^(?:chapter|capítulo|capitulo|capitolo|chapitre|kapitel|hoofdstuk|rozdział)\s*(?P<ep>\d+)$",
    re.IGNORECASE,
)
_SHOW_NUMBER = re.compile(r"^(?P<show>.+?)\s+(?P<n>\d+)$")
_SEGMENTS = re.compile(r"\s*：\s*|:\s+")


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBER_WORDS[text.casefold()]


@dataclass(frozen=True)
class NetflixTitle:
    """A Netflix title split into show and episode parts (``is_episode`` False for movies)."""

    title: str
    is_episode: bool = False
    season: int | None = None
    episode: int | None = None
    episode_title: str | None = None


def _episode_parts(rest: list[str]) -> tuple[int | None, str | None]:
    if not rest:
        return None, None
    text = ": ".join(rest).strip()
    only = _EPISODE_ONLY.match(text) or _CHAPTER_EPISODE.match(text)
    if only:
        return int(only["ep"] or only.groupdict().get("ep2")), text
    suffix = _EPISODE_SUFFIX.match(text)
    if suffix:
        return int(suffix["ep"]), suffix["title"].strip() or None
    return None, text or None


@dataclass(frozen=True)
class KnownTitles:
    """Normalised titles of the catalogue (:func:`~pipelines.lib.matching.normalize_title`):
    ``series`` names series, ``names`` every title. Used to split named seasons."""

    series: frozenset[str]
    names: frozenset[str]

    @staticmethod
    def from_catalogue(titles: pl.DataFrame | None) -> KnownTitles | None:
        """From a TITLES frame: ``title``, ``original_title`` and, when the catalogue has them,
        ``alternative_titles`` (a list column) count; ``None`` for an empty catalogue."""
        if titles is None or titles.is_empty() or "title" not in titles.columns:
            return None
        name_cols = [pl.col("title")]
        if "original_title" in titles.columns:
            name_cols.append(pl.col("original_title"))
        frame = titles.select(
            pl.col("type").cast(pl.String) if "type" in titles.columns else pl.lit(None),
            pl.concat_list([c.cast(pl.String) for c in name_cols]).alias("names"),
        )
        if "alternative_titles" in titles.columns:
            alt = titles["alternative_titles"]
            if alt.dtype == pl.List(pl.String):
                frame = frame.with_columns(pl.col("names").list.concat(alt))
        frame = frame.explode("names").drop_nulls("names").unique()
        norm = {n: normalize_title(n) for n in frame["names"].unique().to_list()}
        names = frame.with_columns(
            norm=pl.col("names").replace_strict(norm, return_dtype=pl.String)
        ).filter(pl.col("norm") != "")
        series = names.filter(pl.col("type") == "series")["norm"]
        return KnownTitles(frozenset(series.to_list()), frozenset(names["norm"].to_list()))


def _named_season(segments: list[str], known: KnownTitles) -> NetflixTitle | None:
    """``Total Drama: Island: Up the Creek`` -> series ``Total Drama`` when that is a known series
    and the whole title is not a known title (the longest known series prefix wins)."""
    if normalize_title(": ".join(segments)) in known.names:
        return None
    for i in range(len(segments) - 1, 0, -1):
        show = ": ".join(segments[:i]).strip()
        if normalize_title(show) in known.series:
            episode, episode_title = _episode_parts(segments[i:])
            return NetflixTitle(show, True, None, episode, episode_title)
    return None


def split_netflix_title(raw: str, known: KnownTitles | None = None) -> NetflixTitle:
    """Split a Netflix title at its season marker (see the module docstring); with ``known``
    catalogue titles, a title without a marker that starts with a known series name is an
    episode of it (a named season such as ``Total Drama: Island: ...``)."""
    text = raw.strip()
    segments = [s for s in _SEGMENTS.split(text)]
    for i in range(1, len(segments)):
        seg = segments[i].strip()
        show = ": ".join(segments[:i]).strip()
        rest = segments[i + 1 :]
        season: int | None = None
        marker_episode: int | None = None
        if m := _SEASON.match(seg):
            season = _number(m["n"])
            marker_episode = int(m["ep"]) if m["ep"] else None
        elif m := _SEASON_NUMBER_FIRST.match(seg):
            season = int(m["n"] or m["n2"])
        elif _LIMITED.match(seg):
            season = None
        elif (m := _PART.match(seg)) and rest:
            season = _number(m["n"])
        elif (m := _CHAPTER.match(seg)) and rest:
            rest = segments[i:]  # "Chapter Two: The Weirdo..." is the episode, not a season
        elif (m := _SHOW_NUMBER.match(seg)) and rest and m["show"].casefold() == show.casefold():
            season = int(m["n"])
        elif _EPISODE_ONLY.match(seg):
            rest = segments[i:]  # a bare "Episode 8": an episode of a show without seasons
        else:
            continue
        episode, episode_title = _episode_parts(rest)
        return NetflixTitle(
            title=show,
            is_episode=True,
            season=season,
            episode=marker_episode if marker_episode is not None else episode,
            episode_title=episode_title,
        )
    if known is not None and len(segments) > 1:
        named = _named_season(segments, known)
        if named is not None:
            return named
    return NetflixTitle(title=text)


def _split_titles(titles: pl.Series, known: KnownTitles | None = None) -> pl.DataFrame:
    """Vector form of :func:`split_netflix_title` (computed once per distinct title)."""
    distinct = titles.unique()
    parts = [split_netflix_title(t, known) for t in distinct.to_list()]
    table = pl.DataFrame(
        {
            "Title": distinct,
            "raw_title": [p.title for p in parts],
            "title_type": ["series" if p.is_episode else None for p in parts],
            "season": [p.season for p in parts],
            "episode": [p.episode for p in parts],
            "episode_title": [p.episode_title for p in parts],
        },
        schema={
            "Title": pl.String,
            "raw_title": pl.String,
            "title_type": pl.String,
            "season": pl.Int32,
            "episode": pl.Int32,
            "episode_title": pl.String,
        },
    )
    return pl.DataFrame({"Title": titles}).join(
        table, on="Title", how="left", maintain_order="left"
    )


def _to_utc(date: pl.Expr) -> pl.Expr:
    return date.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def parse_netflix_history(
    paths: list[Path],
    user_id: str,
    date_format: str | None = None,
    known: KnownTitles | None = None,
) -> ParseResult:
    """``NetflixViewingHistory.csv`` files (Title,Date) of one profile -> raw events.

    ``known``: catalogue titles for splitting named seasons (:func:`split_netflix_title`)."""
    results = []
    try:
        given = parse_date_format(date_format) if date_format else None
    except DateFormatError as exc:
        raise HistoryImportError("--date-format", str(exc)) from exc
    for path in paths:
        file = str(path)
        text = read_export(path)
        table, width_bad = parse_delimited(
            text.text, file, required=("Title", "Date"), source=SOURCE_HISTORY
        )
        rows = table.rows
        order = DateOrder(given) if given else detect_date_order(rows["Date"], file, rows["line"])
        rows = rows.with_columns(date=parse_dates(pl.col("Date"), order.order))
        good, bad = split_bad(
            rows,
            [
                (blank("Title"), "empty Title"),
                (blank("Date"), "empty Date"),
                (pl.col("date").is_null(), f"Date is not a {order.name} date"),
            ],
        )
        split = _split_titles(good["Title"].str.strip_chars(), known)
        events = pl.concat([good, split.drop("Title")], how="horizontal").select(
            user_id=pl.lit(user_id),
            source=pl.lit(SOURCE_HISTORY),
            raw_title="raw_title",
            raw_identity=pl.col("Title").str.strip_chars(),
            title_type="title_type",
            event_time=_to_utc(pl.col("date")),
            season="season",
            episode="episode",
            episode_title="episode_title",
            file=pl.lit(file),
            line="line",
        )
        results.append(
            ParseResult(
                conform_events(events),
                pl.concat([width_bad, table.quarantine(bad, SOURCE_HISTORY)]),
                warnings=[w for w in (order.warning, encoding_warning(text, file)) if w],
            )
        )
    return ParseResult.combine(results)


_ACTIVITY_OPTIONAL = (
    "Start Time",
    "Start Time UTC",
    "Attributes",
    "Autoplayed",
    "Supplemental Video Type",
    "Bookmark",
    "View was hidden",
    "Device Type",
    "Latest Bookmark",
    "Country",
)
_NOT_SET = ("", "NA", "N/A", "NONE_SET")


def profile_slug(profile: str) -> str:
    """``"Profile 1"`` -> ``"profile-1"`` (lower case, runs of other characters -> ``-``); a name
    without letters or digits (say, only an emoji) -> ``"profile-<8 hex of its sha256>"``."""
    slug = re.sub(r"[^\w]+", "-", profile.strip().casefold()).strip("-_")
    if slug:
        return slug
    return "profile-" + hashlib.sha256(profile.encode("utf-8")).hexdigest()[:8]


def parse_netflix_activity(
    paths: list[Path],
    user_id: str,
    profile: str | None = None,
    known: KnownTitles | None = None,
) -> ParseResult:
    """``ViewingActivity.csv`` files -> raw events; non-views dropped and counted (module docstring)."""
    results = []
    for path in paths:
        file = str(path)
        text = read_export(path)
        table, width_bad = parse_delimited(
            text.text,
            file,
            required=("Profile Name", "Duration", "Title"),
            optional=_ACTIVITY_OPTIONAL,
            source=SOURCE_ACTIVITY,
        )
        rows = table.rows
        start_col = next((c for c in ("Start Time", "Start Time UTC") if c in rows.columns), None)
        if start_col is None:
            raise HistoryImportError(file, "missing column Start Time (or Start Time UTC)", line=1)
        optional = (
            "Attributes",
            "Autoplayed",
            "Supplemental Video Type",
            "Bookmark",
            "View was hidden",
        )
        rows = rows.with_columns(
            [pl.lit(None, dtype=pl.String).alias(c) for c in optional if c not in rows.columns]
        )
        profiles = rows["Profile Name"].str.strip_chars().unique().drop_nulls().to_list()
        if profile is not None and profile not in profiles:
            raise HistoryImportError(
                file, f"profile {profile!r} not in file; profiles: {', '.join(sorted(profiles))}"
            )
        rows = rows.with_columns(
            start=pl.col(start_col)
            .str.strip_chars()
            .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
            .dt.replace_time_zone("UTC"),
            duration_s=hms_seconds("Duration"),
            bookmark_s=hms_seconds("Bookmark"),
        )
        good, bad = split_bad(
            rows,
            [
                (blank("Profile Name"), "empty Profile Name"),
                (blank("Title"), "empty Title"),
                (pl.col("start").is_null(), f"{start_col} is not 'YYYY-MM-DD HH:MM:SS'"),
                (pl.col("duration_s").is_null(), "Duration is not HH:MM:SS"),
            ],
        )
        supplemental = clean("Supplemental Video Type")
        autoplay_col = clean("Autoplayed")
        autoplayed = pl.col("Attributes").str.contains("(?i)autoplayed").fill_null(False) | (
            autoplay_col.is_not_null()
            & ~autoplay_col.str.to_uppercase().is_in(["NA", "N/A", "NO", "FALSE"]).fill_null(False)
        )
        drop_reason = (
            pl.when(
                pl.lit(profile is not None)
                & (pl.col("Profile Name").str.strip_chars() != (profile or ""))
            )
            .then(pl.lit("other profile"))
            .when(supplemental.is_not_null() & ~supplemental.is_in(list(_NOT_SET)))
            .then(pl.lit("supplemental video (") + supplemental + pl.lit(")"))
            .when(autoplayed & (pl.col("duration_s") < AUTOPLAY_MIN_SECONDS))
            .then(pl.lit(f"autoplayed under {AUTOPLAY_MIN_SECONDS} s"))
            .when(
                clean("View was hidden").str.to_lowercase().is_in(["yes", "true"]).fill_null(False)
            )
            .then(pl.lit("hidden by user"))
        )
        good = good.with_columns(drop_reason=drop_reason)
        dropped = Counter(
            dict(
                good.filter(pl.col("drop_reason").is_not_null())["drop_reason"]
                .value_counts()
                .iter_rows()
            )
        )
        views = good.filter(pl.col("drop_reason").is_null())
        split = _split_titles(views["Title"].str.strip_chars(), known)
        owner = (
            pl.lit(user_id)
            if profile is not None
            else pl.lit(f"{user_id}-")
            + pl.col("Profile Name")
            .str.strip_chars()
            .map_elements(profile_slug, return_dtype=pl.String)
        )
        events = pl.concat([views, split.drop("Title")], how="horizontal").select(
            user_id=owner,
            source=pl.lit(SOURCE_ACTIVITY),
            raw_title="raw_title",
            raw_identity=pl.col("Title").str.strip_chars(),
            title_type="title_type",
            event_time="start",
            bookmark_seconds="bookmark_s",
            season="season",
            episode="episode",
            episode_title="episode_title",
            file=pl.lit(file),
            line="line",
        )
        results.append(
            ParseResult(
                conform_events(events),
                pl.concat([width_bad, table.quarantine(bad, SOURCE_ACTIVITY)]),
                dropped,
                warnings=[w for w in (encoding_warning(text, file),) if w],
            )
        )
    return ParseResult.combine(results)
