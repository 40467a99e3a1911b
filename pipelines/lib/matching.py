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


def normalize_title(s: str | None) -> str:
    """Comparable form of a title: ``"The Lord of the Rings: Return & Co."`` -> ``"lord of the rings
    return and co"``.

    Steps: NFKC (full-width forms -> ASCII); accents stripped from Latin and Greek letters (other
    scripts are kept as they are); casefold (``ß`` -> ``ss``; also ``æ`` -> ``ae``, ``ø`` -> ``o``);
    ``&`` -> ``and``; apostrophes removed (``don't`` -> ``dont``); every other run of punctuation or
    whitespace -> one space; a leading English article (the/a/an) dropped, also in the library form
    ``"Usual Suspects, The"``. A title that is only an article keeps it. ``None`` -> ``""``.
    """
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
    return _LEADING_ARTICLE.sub("", text)


@functools.lru_cache(maxsize=65_536)
def _normalized(s: str | None) -> str:
    """Memoised :func:`normalize_title` (histories repeat the same titles many times)."""
    return normalize_title(s)


class CatalogueError(ValueError):
    """The titles frame given to :class:`TitleResolver` lacks required columns."""


SOURCE_PRIORITY = {"tmdb": 0, "movielens": 1, "catalog": 2}
"""When records of different sources describe the same work, the lowest number wins."""


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


class TitleResolver:
    """Resolve watch events to catalogue ``title_id`` values.

    Order, first hit wins:

    1. ``tmdb_id`` with the event's type (``movie:``/``tv:`` ids overlap, so the type must agree);
    2. ``imdb_id`` (when it names exactly one title);
    3. ``native_id``: a title_id the source implies (MovieLens ``ml:<movieId>``), if catalogued;
    4. normalised title (or original title) + year: exact year, then ±1 year, then catalogue
       entries without a year;
    5. normalised title alone when unique - only for events without a year. When several titles
       share the name, the only one released by the year of the watch wins (a 2019 remake cannot
       be what was watched in 2015). This is a tie-breaker, not a filter: platform catalogues
       often date a series by its latest season.

    Episodes arrive as their series (``title_type="series"``) and only match series; movies only
    match movies; an unknown type matches either. Records of different sources describing the
    same work (same normalised title, year and type) collapse to the best source (tmdb, then
    movielens, then platform catalogues) instead of making the match ambiguous; two records of the
    same source stay ambiguous. Failure reasons: ``"no title"``, ``"no title match"``, ``"no title
    match in year <y>±1"``, ``"ambiguous: <n> candidates"``, ``"episode without series title"``;
    when the event carried ids the catalogue does not know, ``" (ids not in catalogue)"`` is
    appended.
    """

    def __init__(self, titles: pl.DataFrame) -> None:
        missing = [c for c in ("title_id", "type", "title") if c not in titles.columns]
        if missing:
            raise CatalogueError(f"titles frame lacks column(s) {', '.join(missing)}")
        cols = {
            c: (pl.col(c) if c in titles.columns else pl.lit(None))
            for c in ("tmdb_id", "imdb_id", "original_title", "year", "source")
        }
        frame = titles.select(
            "title_id",
            "type",
            "title",
            cols["original_title"].cast(pl.String).alias("original_title"),
            cols["tmdb_id"].cast(pl.Int64).alias("tmdb_id"),
            cols["imdb_id"].cast(pl.String).alias("imdb_id"),
            cols["year"].cast(pl.Int32).alias("year"),
            cols["source"].cast(pl.String).alias("source"),
        ).unique("title_id", keep="first", maintain_order=True)
        self._ids: set[str] = set(frame["title_id"].to_list())
        self._tmdb: dict[tuple[int, str], tuple[int, str]] = {}
        imdb: dict[str, set[str]] = {}
        groups: dict[tuple[str, int | None, str], list[_Candidate]] = {}
        for row in frame.iter_rows(named=True):
            tid, kind = row["title_id"], row["type"]
            rank = _source_rank(row["source"], tid)
            if row["tmdb_id"] is not None:
                key = (row["tmdb_id"], kind)
                if key not in self._tmdb or rank < self._tmdb[key][0]:
                    self._tmdb[key] = (rank, tid)
            if row["imdb_id"]:
                imdb.setdefault(row["imdb_id"], set()).add(tid)
            cand = _Candidate(tid, kind, row["year"], rank)
            names = {normalize_title(row["title"]), normalize_title(row["original_title"])}
            for name in names - {""}:
                groups.setdefault((name, row["year"], kind), []).append(cand)
        self._imdb = {k: next(iter(v)) for k, v in imdb.items() if len(v) == 1}
        self._by_name: dict[str, list[_Candidate]] = {}
        for (name, _, _), cands in groups.items():
            best = min(c.rank for c in cands)
            kept = {c.title_id: c for c in cands if c.rank == best}
            bucket = self._by_name.setdefault(name, [])
            bucket.extend(c for c in kept.values() if c not in bucket)
        logger.debug(
            "title resolver: %d titles, %d names, %d tmdb ids, %d imdb ids",
            len(self._ids),
            len(self._by_name),
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
    ) -> Resolution:
        """Resolve one event (see the class docstring for the order and the reasons)."""
        kind = {"movie": "movie", "series": "series"}.get(title_type or "")
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
        names = [
            n for n in dict.fromkeys([_normalized(raw_title), _normalized(original_title)]) if n
        ]
        if not names:
            return Resolution.failed("no title" + suffix)
        cands: dict[str, _Candidate] = {}
        for name in names:
            for c in self._by_name.get(name, ()):
                if kind is None or c.type == kind:
                    cands.setdefault(c.title_id, c)
        result = self._pick(list(cands.values()), year, watched_year)
        if result.reason is not None:
            return Resolution.failed(result.reason + suffix)
        return result

    @staticmethod
    def _pick(cands: list[_Candidate], year: int | None, watched_year: int | None) -> Resolution:
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
                if len(found) == 1:
                    return Resolution.found(found[0].title_id, match)
                if len(found) > 1:
                    return Resolution.failed(f"ambiguous: {len(found)} candidates")
            return Resolution.failed(f"no title match in year {year}±1")
        if len(cands) == 1:
            return Resolution.found(cands[0].title_id, "title")
        if watched_year is not None:
            earlier = [c for c in cands if c.year is None or c.year <= watched_year]
            if len(earlier) == 1:
                return Resolution.found(earlier[0].title_id, "title, released before watch")
            if earlier:
                cands = earlier
        return Resolution.failed(f"ambiguous: {len(cands)} candidates")

    def resolve(self, events: pl.DataFrame) -> pl.DataFrame:
        """Resolve every row of ``events`` (columns of :data:`RESOLVE_INPUT`, ``raw_title``
        required). Returns a frame of the same height and order with ``title_id``, ``match`` (how
        it was found) and ``reason`` (why not; null when resolved).

        Work is done once per distinct (title, ids, year, type) combination.
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
                    pl.when(pl.col("year").is_null()).then(pl.col("event_time").dt.year())
                    if "event_time" in events.columns and "year" in events.columns
                    else (
                        pl.col("event_time").dt.year()
                        if "event_time" in events.columns
                        else pl.lit(None)
                    )
                )
                .cast(pl.Int32)
                .alias("watched_year")
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
