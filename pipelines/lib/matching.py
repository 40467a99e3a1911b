"""Title normalisation and resolution of watch events to catalogue ``title_id`` values.

:func:`normalize_title` is the one normalisation used everywhere titles are compared (importers,
catalogue de-duplication, search). :class:`TitleResolver` maps events (ids, title, year, type) to
a ``title_id`` of a TITLES frame, or to a reason why it cannot.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import polars as pl

logger = logging.getLogger(__name__)

_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+?),\s*(?P<article>the|a|an)$", re.IGNORECASE)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+(?=\S)")
_APOSTROPHES = re.compile(r"['’‘`´]")
_NON_WORD = re.compile(r"[\W_]+")
_LIGATURES = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"}
)


def _is_latin_or_greek(ch: str) -> bool:
    code = ord(ch)
    return code < 0x0400 or 0x1E00 <= code <= 0x1FFF


def _strip_accents(text: str) -> str:
    """Drop diacritics from Latin and Greek letters only (Japanese dakuten, Cyrillic й are kept)."""
    out = []
    for ch in text:
        if ch.isascii() or not _is_latin_or_greek(ch):
            out.append(ch)
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        out.append("".join(c for c in decomposed if not unicodedata.combining(c)))
    return "".join(out)


def _normalize(s: str | None, *, keep_article: bool) -> str:
    if not s:
        return ""
    text = s.strip()
    flipped = _TRAILING_ARTICLE.match(text)
    if flipped:
        text = f"{flipped['article']} {flipped['body']}"
    text = _strip_accents(unicodedata.normalize("NFKC", text))
    text = text.casefold().translate(_LIGATURES).replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    text = _NON_WORD.sub(" ", text).strip()
    return text if keep_article else _LEADING_ARTICLE.sub("", text)


def normalize_title(s: str | None) -> str:
    """Comparable form of a title: ``"The Lord of the Rings: Return & Co."`` -> ``"lord of the rings
    return and co"``.

    Steps: NFKC (full-width forms -> ASCII); accents stripped from Latin and Greek letters (other
    scripts are kept as they are); casefold (``ß`` -> ``ss``; also ``æ`` -> ``ae``, ``ø`` -> ``o``);
    ``&`` -> ``and``; apostrophes removed (``don't`` -> ``dont``); every other run of punctuation or
    whitespace -> one space; a leading English article (the/a/an) dropped, also in the library form
    ``"Usual Suspects, The"``. A title that is only an article keeps it. ``None`` -> ``""``.
    """
    return _normalize(s, keep_article=False)


@functools.lru_cache(maxsize=65_536)
def title_key(s: str | None) -> str:
    """The key titles are *matched* on: :func:`normalize_title` but the leading English article is
    kept (``"The Five"`` -> ``"the five"``, ``"Five"`` -> ``"five"``: different works), and the
    library form ``"Usual Suspects, The"`` still equals ``"The Usual Suspects"``. Memoised."""
    return _normalize(s, keep_article=True)


class CatalogueError(ValueError):
    """The titles frame given to :class:`TitleResolver` lacks required columns."""


SOURCE_PRIORITY = {"tmdb": 0, "movielens": 1, "catalog": 2}
"""When records of different sources describe the same work, the lowest number wins."""
CATALOG_RANK = SOURCE_PRIORITY["catalog"]

RECENT_RELEASE_YEARS = 3
"""A bare title watched within this many years of the newest same-named release is that release
(new titles dominate what people stream); further apart the match stays ambiguous."""


def _source_rank(source: str | None, title_id: str) -> int:
    if not source:
        prefix = title_id.split(":", 1)[0]
        source = {"movie": "tmdb", "tv": "tmdb", "ml": "movielens", "ml100k": "movielens"}.get(
            prefix, prefix
        )
    return SOURCE_PRIORITY.get(source.split(":", 1)[0], len(SOURCE_PRIORITY))


@dataclass(frozen=True)
class _Candidate:
    title_id: str
    type: str
    year: int | None
    rank: int
    released: date | None = None

    def released_after(self, watched_on: date | None, watched_year: int) -> bool:
        """Released after the watch: by date when both are known, else by year."""
        if self.released is not None and watched_on is not None:
            return self.released > watched_on
        return self.year is not None and self.year > watched_year


@dataclass(frozen=True)
class Resolution:
    """Outcome for one event: a ``title_id`` and how it was found, or the ``reason`` it was not."""

    title_id: str | None
    match: str | None
    reason: str | None

    @staticmethod
    def found(title_id: str, match: str) -> Resolution:
        return Resolution(title_id, match, None)

    @staticmethod
    def failed(reason: str) -> Resolution:
        return Resolution(None, None, reason)


RESOLVE_INPUT = {
    "raw_title": pl.String,
    "original_title": pl.String,
    "year": pl.Int32,
    "title_type": pl.String,
    "tmdb_id": pl.Int64,
    "imdb_id": pl.String,
    "native_id": pl.String,
    "event_time": pl.Datetime("us", "UTC"),
}
"""Columns :meth:`TitleResolver.resolve` reads (all optional but ``raw_title``)."""


def alias_titles(value: object) -> list[str]:
    """Titles of one ``aliases`` cell: a list of ``{country, language, title}`` structs (the
    TITLES column) or of plain strings; null -> ``[]``."""
    out: list[str] = []
    for item in value or []:  # type: ignore[attr-defined]
        title = item.get("title") if isinstance(item, dict) else item
        if isinstance(title, str) and title.strip():
            out.append(title)
    return out


def _index(
    groups: dict[tuple[str, int | None, str], list[_Candidate]],
) -> dict[str, list[_Candidate]]:
    """Name -> candidates; records of one work (name, year, type) from several sources collapse
    to the best-ranked source."""
    by_name: dict[str, list[_Candidate]] = {}
    for (name, _, _), cands in groups.items():
        best = min(c.rank for c in cands)
        kept = {c.title_id: c for c in cands if c.rank == best}
        bucket = by_name.setdefault(name, [])
        bucket.extend(c for c in kept.values() if c not in bucket)
    return by_name


class TitleResolver:
    """Resolve watch events to catalogue ``title_id`` values.

    Order, first hit wins:

    1. ``tmdb_id`` with the event's type (``movie:``/``tv:`` ids overlap, so the type must agree);
    2. ``imdb_id`` (when it names exactly one title);
    3. ``native_id``: a title_id the source implies (MovieLens ``ml:<movieId>``), if catalogued;
    4. title or original title (:func:`title_key`: case, accents and punctuation do not matter, a
       leading English article does: "Five" is not "The Five"), else, only when no title matches,
       an **alias** (TMDB alternative titles and translations in the ``aliases`` column: "Mad Max:
       Estrada da Fúria", "Narcos: Meksyk"; the match is then called ``alias ...``); then
    5. with a year: exact year, then ±1 year, then catalogue entries without a year;
    6. without a year (a bare title with a watch date): a title released after the watch is never
       it (by release date when the catalogue has one, else by year; series of platform
       catalogues excepted: they are dated by their latest season);
       of the rest, an event of unknown type prefers films (a bare title without an episode part
       is a film when a film of that name exists); one candidate left is the match; several: the
       newest one wins when it came out at most :data:`RECENT_RELEASE_YEARS` before the watch
       (``title, latest before watch``), else ambiguous.

    Episodes arrive as their series (``title_type="series"``) and only match series; movies only
    match movies; an unknown type matches either, films first. Records of different sources
    describing the same work (same title key, year and type) collapse to the best source (tmdb,
    then movielens, then platform catalogues) instead of making the match ambiguous; two records of
    the same source stay ambiguous (:mod:`pipelines.lib.catalogs` merges one work's platform rows
    into one title before they get here). Failure reasons: ``"no title"``, ``"no title match"``,
    ``"no title match in year <y>±1"``, ``"no title match released by <watch year>"``,
    ``"ambiguous: <n> candidates"``, ``"episode without series title"``; when the event carried
    ids the catalogue does not know, ``" (ids not in catalogue)"`` is appended.
    """

    def __init__(self, titles: pl.DataFrame) -> None:
        missing = [c for c in ("title_id", "type", "title") if c not in titles.columns]
        if missing:
            raise CatalogueError(f"titles frame lacks column(s) {', '.join(missing)}")
        cols = {
            c: (pl.col(c) if c in titles.columns else pl.lit(None))
            for c in (
                "tmdb_id",
                "imdb_id",
                "original_title",
                "year",
                "release_date",
                "source",
                "aliases",
            )
        }
        frame = titles.select(
            "title_id",
            "type",
            "title",
            cols["original_title"].cast(pl.String).alias("original_title"),
            cols["tmdb_id"].cast(pl.Int64).alias("tmdb_id"),
            cols["imdb_id"].cast(pl.String).alias("imdb_id"),
            cols["year"].cast(pl.Int32).alias("year"),
            cols["release_date"].cast(pl.Date).alias("release_date"),
            cols["source"].cast(pl.String).alias("source"),
            cols["aliases"].alias("aliases"),
        ).unique("title_id", keep="first", maintain_order=True)
        self._ids: set[str] = set(frame["title_id"].to_list())
        self._tmdb: dict[tuple[int, str], tuple[int, str]] = {}
        imdb: dict[str, set[str]] = {}
        groups: dict[tuple[str, int | None, str], list[_Candidate]] = {}
        alias_groups: dict[tuple[str, int | None, str], list[_Candidate]] = {}
        for row in frame.iter_rows(named=True):
            tid, kind = row["title_id"], row["type"]
            rank = _source_rank(row["source"], tid)
            if row["tmdb_id"] is not None:
                key = (row["tmdb_id"], kind)
                if key not in self._tmdb or rank < self._tmdb[key][0]:
                    self._tmdb[key] = (rank, tid)
            if row["imdb_id"]:
                imdb.setdefault(row["imdb_id"], set()).add(tid)
            cand = _Candidate(tid, kind, row["year"], rank, row["release_date"])
            names = {title_key(row["title"]), title_key(row["original_title"])} - {""}
            for name in names:
                groups.setdefault((name, row["year"], kind), []).append(cand)
            for name in {title_key(a) for a in alias_titles(row["aliases"])} - names - {""}:
                alias_groups.setdefault((name, row["year"], kind), []).append(cand)
        self._imdb = {k: next(iter(v)) for k, v in imdb.items() if len(v) == 1}
        self._by_name = _index(groups)
        self._by_alias = _index(alias_groups)
        logger.debug(
            "title resolver: %d titles, %d names, %d aliases, %d tmdb ids, %d imdb ids",
            len(self._ids),
            len(self._by_name),
            len(self._by_alias),
            len(self._tmdb),
            len(self._imdb),
        )

    def __len__(self) -> int:
        return len(self._ids)

    def resolve_one(
        self,
        raw_title: str | None,
        *,
        year: int | None = None,
        title_type: str | None = None,
        tmdb_id: int | None = None,
        imdb_id: str | None = None,
        native_id: str | None = None,
        original_title: str | None = None,
        watched_year: int | None = None,
        watched_on: date | None = None,
    ) -> Resolution:
        """Resolve one event (see the class docstring for the order and the reasons)."""
        kind = {"movie": "movie", "series": "series"}.get(title_type or "")
        if watched_on is not None:
            watched_year = watched_on.year
        if tmdb_id is not None:
            kinds = [kind] if kind else ["movie", "series"]
            hits = {self._tmdb[(tmdb_id, k)][1] for k in kinds if (tmdb_id, k) in self._tmdb}
            if len(hits) == 1:
                return Resolution.found(hits.pop(), "tmdb")
        if imdb_id and imdb_id in self._imdb:
            return Resolution.found(self._imdb[imdb_id], "imdb")
        if native_id and native_id in self._ids:
            return Resolution.found(native_id, "native")
        had_ids = tmdb_id is not None or bool(imdb_id) or bool(native_id)
        suffix = " (ids not in catalogue)" if had_ids else ""
        if title_type == "episode":
            return Resolution.failed("episode without series title" + suffix)
        names = [n for n in dict.fromkeys([title_key(raw_title), title_key(original_title)]) if n]
        if not names:
            return Resolution.failed("no title" + suffix)
        prefix = ""
        cands = self._lookup(self._by_name, names, kind)
        if not cands:
            cands = self._lookup(self._by_alias, names, kind)
            prefix = "alias "
        result = self._pick(cands, year, watched_year, watched_on, kind is None)
        if result.reason is not None:
            return Resolution.failed(result.reason + suffix)
        return Resolution.found(result.title_id or "", prefix + (result.match or ""))

    @staticmethod
    def _lookup(
        index: dict[str, list[_Candidate]], names: list[str], kind: str | None
    ) -> list[_Candidate]:
        cands: dict[str, _Candidate] = {}
        for name in names:
            for c in index.get(name, ()):
                if kind is None or c.type == kind:
                    cands.setdefault(c.title_id, c)
        return list(cands.values())

    @staticmethod
    def _films_first(found: list[_Candidate], any_type: bool) -> list[_Candidate]:
        """An event of unknown type that could be a film or a series is the film."""
        if any_type and len(found) > 1:
            films = [c for c in found if c.type == "movie"]
            if films:
                return films
        return found

    @classmethod
    def _pick(
        cls,
        cands: list[_Candidate],
        year: int | None,
        watched_year: int | None,
        watched_on: date | None,
        any_type: bool,
    ) -> Resolution:
        if not cands:
            return Resolution.failed("no title match")
        if year is not None:
            stages = (
                ("title+year", [c for c in cands if c.year == year]),
                (
                    "title+year±1",
                    [c for c in cands if c.year is not None and abs(c.year - year) == 1],
                ),
                ("title", [c for c in cands if c.year is None]),
            )
            for match, found in stages:
                found = cls._films_first(found, any_type)
                if len(found) == 1:
                    return Resolution.found(found[0].title_id, match)
                if len(found) > 1:
                    return Resolution.failed(f"ambiguous: {len(found)} candidates")
            return Resolution.failed(f"no title match in year {year}±1")
        if watched_year is not None:
            cands = [
                c
                for c in cands
                if not c.released_after(watched_on, watched_year)
                or (c.type == "series" and c.rank >= CATALOG_RANK)
            ]
            if not cands:
                return Resolution.failed(f"no title match released by {watched_year}")
        cands = cls._films_first(cands, any_type)
        if len(cands) == 1:
            return Resolution.found(cands[0].title_id, "title")
        if watched_year is not None:
            dated = [
                c
                for c in cands
                if c.year is not None and not c.released_after(watched_on, watched_year)
            ]
            if dated:
                newest = max(c.year for c in dated if c.year is not None)
                top = [c for c in dated if c.year == newest]
                if len(top) == 1 and watched_year - newest <= RECENT_RELEASE_YEARS:
                    return Resolution.found(top[0].title_id, "title, latest before watch")
        return Resolution.failed(f"ambiguous: {len(cands)} candidates")

    def resolve(self, events: pl.DataFrame) -> pl.DataFrame:
        """Resolve every row of ``events`` (columns of :data:`RESOLVE_INPUT`, ``raw_title``
        required). Returns a frame of the same height and order with ``title_id``, ``match`` (how
        it was found) and ``reason`` (why not; null when resolved).

        Work is done once per distinct (title, ids, year, type, watch day) combination; the watch
        day (``event_time``) is only used for events without a year.
        """
        if "raw_title" not in events.columns:
            raise CatalogueError("events to resolve lack the raw_title column")
        keys = events.select(
            [
                (pl.col(c) if c in events.columns else pl.lit(None)).cast(t).alias(c)
                for c, t in RESOLVE_INPUT.items()
                if c != "event_time"
            ]
            + [
                (
                    pl.when(pl.col("year").is_null()).then(pl.col("event_time").dt.date())
                    if "event_time" in events.columns and "year" in events.columns
                    else (
                        pl.col("event_time").dt.date()
                        if "event_time" in events.columns
                        else pl.lit(None)
                    )
                )
                .cast(pl.Date)
                .alias("watched_on")
            ]
        )
        distinct = keys.unique(maintain_order=True)
        titles: list[str | None] = []
        matches: list[str | None] = []
        reasons: list[str | None] = []
        for row in distinct.iter_rows(named=True):
            res = self.resolve_one(row.pop("raw_title"), **row)
            titles.append(res.title_id)
            matches.append(res.match)
            reasons.append(res.reason)
        solved = distinct.with_columns(
            pl.Series("title_id", titles, dtype=pl.String),
            pl.Series("match", matches, dtype=pl.String),
            pl.Series("reason", reasons, dtype=pl.String),
        )
        out = keys.join(
            solved, on=list(keys.columns), how="left", nulls_equal=True, maintain_order="left"
        )
        return out.select("title_id", "match", "reason")
