"""Deterministic, offline query parser: "thriller movies like Inception under 2 hours" -> QueryIntent.

Pure python (regular expressions over the lexicons in :mod:`serving.nlu.vocabulary`), no network.
It reads the query in three passes over a working copy in which every recognised phrase is blanked
out, so a phrase is never read twice:

1. **Strong filters**, unambiguous wherever they appear: exclusions ("no horror", "not a musical"),
   services ("on Netflix", "Disney+"), explicit languages ("in Korean"), years and decades ("80s",
   "between 1990 and 1999", "from the last 5 years"), runtimes ("under two hours") and ratings
   ("rated 8+", "highly rated").
2. **Titles** after "like" / "similar to" / "in the style of": the title runs until a strong
   filter, a stop word ("but", "that", "please", "for tonight", ...) or punctuation, is split on
   "," / "or" / "and" (write "Pride and Prejudice" in double quotes to keep it whole) and keeps the
   user's spelling. Words inside titles are not read as genres or moods ("like The Dark Knight").
3. **Descriptors** (genres, moods, content type, language adjectives, "anime", "k-drama"), recency
   words ("new", "recent": the last :data:`RECENT_YEARS` years before ``today``), "short", bare years,
   and one-letter typos of long genre words ("thriler").

What is left (minus filler words at the edges of each leftover stretch) becomes ``text`` for semantic
similarity. If nothing is left, ``text`` keeps the descriptive words (genres, moods, content type:
only the hard filters removed; "80s sci-fi" -> "sci-fi"), and failing that the liked titles ("something
like breaking bad" -> "breaking bad"). So ``text`` is never empty when the query says anything about
the content itself; it is empty only for pure filter queries ("on Netflix after 2015"), where a
text vector would be noise, and for negated words only ("nothing scary"), which must not attract.

Decisions (documented here because the lexicons cannot show them):

* "highly rated" and friends mean TMDB vote average >= :data:`HIGHLY_RATED`; "above 7" means >= 7
  (averages are continuous; a 0.1 step is noise); "4 stars" is read on a 5-star scale (-> 8.0).
* "short" / "quick" mean at most :data:`SHORT_RUNTIME` minutes; a bare duration ("1.5 hours") is the
  time the user has, so it is the maximum runtime; "over 2 hours" names no field and stays in text.
* "from 2010" means released in 2010; "after 2015" means from 2016; "before 2000" up to 1999; "last
  5 years" means from ``today.year - 5`` (year granularity, erring wide). Decades and single years
  mentioned together are joined into one span; open bounds ("after", "before") then narrow it.
* An excluded mood with a genre ("nothing scary") excludes that genre; one without ("not too dark")
  is dropped rather than read as wanted. "no series" means movies (and vice versa).
* Conflicting content types ("movie or show") leave ``content_type`` unset; the first language wins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz import process
from rapidfuzz.distance import OSA

from models.ranking.intent import QueryIntent
from serving.nlu.vocabulary import (
    DECADE_WORDS,
    DESCRIPTORS,
    FILLER_WORDS,
    FUZZY_GENRE_WORDS,
    LANGUAGES,
    NUMBER_WORDS,
    SERVICE_AFTER_ON,
    SERVICE_ALIASES,
    Descriptor,
)

logger = logging.getLogger(__name__)

HIGHLY_RATED = 7.5
"""TMDB vote average meant by "highly rated", "top rated", "acclaimed"."""
SHORT_RUNTIME = 90
"""Minutes meant by "short" / "quick"."""
NOT_TOO_LONG_RUNTIME = 120
"""Minutes meant by "not too long"."""
RECENT_YEARS = 3
""""new" / "recent" / "latest" mean released in the last this-many years."""

_BLANK = "\x00"  # a consumed character in the working copy: neither a word character nor a space
_PROTECT = "\x01"  # a character no pattern may read that still belongs to the free text


# --------------------------------------------------------------------------- pattern building


def _key(text: str) -> str:
    """Lookup key of a phrase: lower case without spaces and hyphens ("Sci-Fi" -> "scifi")."""
    return re.sub(r"[\s\-]+", "", text.lower())


def _phrase_pattern(phrase: str) -> str:
    """Regex for ``phrase`` accepting any spacing/hyphenation between its words and a plural."""
    words = re.split(r"[\s\-]+", phrase)
    parts = [re.escape(w) for w in words[:-1]]
    last = words[-1]
    if last.endswith("+"):
        parts.append(re.escape(last) + r"(?!\w)")
    elif re.search(r"[^aeiou]y$", last):
        parts.append(re.escape(last[:-1]) + r"(?:y|ies)(?![\w+])")
    else:
        parts.append(re.escape(last) + r"(?:s|es)?(?![\w+])")
    return r"[\s\-]*".join(parts)


def _alternation(phrases: list[str]) -> str:
    """Longest phrase first, so "romantic comedy" wins over "romantic"."""
    return "|".join(_phrase_pattern(p) for p in sorted(phrases, key=len, reverse=True))


def _key_table(table: dict[str, Descriptor]) -> dict[str, Descriptor]:
    keyed: dict[str, Descriptor] = {}
    for phrase, descriptor in table.items():
        k = _key(phrase)
        if keyed.get(k, descriptor) != descriptor:
            raise ValueError(f"vocabulary: {phrase!r} collides with another phrase of key {k!r}")
        keyed[k] = descriptor
    return keyed


def _lookup(table: dict[str, Descriptor], text: str) -> Descriptor:
    """The descriptor of a matched phrase, singular or plural."""
    k = _key(text)
    candidates = [k]
    if k.endswith("ies"):
        candidates.append(k[:-3] + "y")
    if k.endswith("es"):
        candidates.append(k[:-2])
    if k.endswith("s"):
        candidates.append(k[:-1])
    for candidate in candidates:
        if candidate in table:
            return table[candidate]
    raise KeyError(f"no vocabulary entry for {text!r}")


_DESCRIPTOR_KEYS = _key_table(DESCRIPTORS)
_DESCRIPTOR_RE = _alternation(list(DESCRIPTORS))
_FUZZY_WORDS = list(FUZZY_GENRE_WORDS)
_LANG_RE = "|".join(sorted(LANGUAGES, key=len, reverse=True))
_SERVICE_KEYS = {_key(k): v for k, v in SERVICE_ALIASES.items()}
_SERVICE_AFTER_ON_KEYS = {_key(k): v for k, v in SERVICE_AFTER_ON.items()}
_NUMBER_RE = "|".join(
    re.escape(w).replace(r"\ ", r"\s+") for w in sorted(NUMBER_WORDS, key=len, reverse=True)
)
_NUM_BEFORE_UNIT = rf"(?:\d+(?:[.,]\d+)?\s*|(?:{_NUMBER_RE})\s+)"
"""A number followed by its unit: digits may touch the unit ("2h"), words may not ("a m")."""
_COUNT_WORDS = "|".join(
    re.escape(w).replace(r"\ ", r"\s+")
    for w in sorted(NUMBER_WORDS, key=len, reverse=True)
    if NUMBER_WORDS[w] >= 2 and float(NUMBER_WORDS[w]).is_integer()
)
_B = r"(?<![\w'])"  # start-of-word boundary (also after a blanked character)
_E = r"(?![\w+])"  # end-of-word boundary


def _number(text: str) -> float:
    text = re.sub(r"\s+", " ", text.strip())
    if text in NUMBER_WORDS:
        return float(NUMBER_WORDS[text])
    return float(text.replace(",", "."))


# --------------------------------------------------------------------------- working state


@dataclass
class _Query:
    """The query being read: original text, a working copy with consumed phrases blanked, results."""

    original: str
    today: date
    work: str = ""
    consumed: list[bool] = field(default_factory=list)
    hard: list[bool] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    exclude_genres: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)
    like_titles: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    excluded_content_types: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    year_lower: list[int] = field(default_factory=list)
    year_upper: list[int] = field(default_factory=list)
    max_runtime: int | None = None
    min_rating: float | None = None

    def __post_init__(self) -> None:
        chars = []
        for ch in self.original:
            low = ch.lower()
            ch = low if len(low) == 1 else ch
            ch = {"\u2019": "'", "\u2018": "'", "`": "'", "\u201c": '"', "\u201d": '"'}.get(ch, ch)
            ch = "-" if ch in "\u2010\u2011\u2012\u2013\u2014" else ch
            chars.append(ch)
        self.work = "".join(chars)
        self.consumed = [False] * len(self.original)
        self.hard = [False] * len(self.original)

    def take(self, start: int, end: int, *, hard: bool = False) -> None:
        """Mark ``[start, end)`` as read: no later pattern sees it and it leaves the free text."""
        self.work = self.work[:start] + _BLANK * (end - start) + self.work[end:]
        for i in range(start, end):
            self.consumed[i] = True
            self.hard[i] = self.hard[i] or hard

    def protect(self, start: int, end: int) -> None:
        """Hide ``[start, end)`` from patterns but keep it in the free text ("star wars", "show me")."""
        self.work = self.work[:start] + _PROTECT * (end - start) + self.work[end:]

    def matches(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        """Matches on the current working copy, re-searched after every take."""
        pos = 0
        while (m := pattern.search(self.work, pos)) is not None:
            yield m
            pos = max(m.end(), m.start() + 1)

    def add_descriptor(self, d: Descriptor) -> None:
        _extend_unique(self.genres, d.genres)
        _extend_unique(self.moods, d.moods)
        if d.language:
            _extend_unique(self.languages, [d.language])
        if d.content_type:
            _extend_unique(self.content_types, [d.content_type])


def _extend_unique(target: list[str], values: tuple[str, ...] | list[str]) -> None:
    for v in values:
        if v not in target:
            target.append(v)


# --------------------------------------------------------------------------- pass 1: strong filters

_NEGATOR = (
    r"(?:no|not|without|nothing|none|never|except|excluding|exclude|avoid|skip|minus|"
    r"anything\s+but|not\s+into|(?:do\s+not|don'?t|dont)\s+(?:want|like|need|show\s+me))"
)
_NEG_FILLER = r"(?:\s+(?:a|an|any|the|too|more|overly|really|very|so|super|that|of|with))*"
_EXCLUSION = re.compile(rf"{_B}{_NEGATOR}{_NEG_FILLER}\s+(?P<d>{_DESCRIPTOR_RE})")
_EXCLUSION_MORE = re.compile(
    rf"\s*(?:,|/|\bor\b|\bnor\b|\band\b)\s*(?:(?:no|not)\s+)?(?:(?:a|an|any)\s+)?(?P<d>{_DESCRIPTOR_RE})"
)


def _exclusions(q: _Query) -> None:
    for m in q.matches(_EXCLUSION):
        spans = [m.span("d")]
        end = m.end()
        while (more := _EXCLUSION_MORE.match(q.work, end)) is not None:
            spans.append(more.span("d"))
            end = more.end()
        for start, stop in spans:
            d = _lookup(_DESCRIPTOR_KEYS, q.work[start:stop])
            _extend_unique(q.exclude_genres, d.genres)
            if d.content_type:
                _extend_unique(q.excluded_content_types, [d.content_type])
            if not d.genres and not d.content_type:
                logger.debug("dropping an excluded descriptor without a genre", extra={"d": d})
        q.take(m.start(), end, hard=True)


_SERVICE_NAMES = _alternation(list(SERVICE_ALIASES))
_SERVICE_ON = re.compile(
    rf"{_B}(?:(?:streaming|available|watchable|only)\s+)?(?:on|via|over\s+on)\s+(?:the\s+)?"
    rf"(?P<s>{_alternation([*SERVICE_ALIASES, *SERVICE_AFTER_ON])})(?:\s+only)?"
)
_SERVICE_BARE = re.compile(rf"{_B}(?P<s>{_SERVICE_NAMES})")


def _services(q: _Query) -> None:
    for pattern in (_SERVICE_ON, _SERVICE_BARE):
        for m in q.matches(pattern):
            k = _key(m.group("s"))
            service = _SERVICE_KEYS.get(k) or _SERVICE_AFTER_ON_KEYS.get(k)
            if service is None:  # a plural form of a name ("netflixes"): not a service
                continue
            _extend_unique(q.services, [service])
            q.take(m.start(), m.end(), hard=True)


_LANG_EXPLICIT = re.compile(
    rf"{_B}(?:(?:in|spoken\s+in|dubbed\s+in|original\s+language)\s+(?:the\s+)?(?P<a>{_LANG_RE})"
    rf"(?:\s+language)?|(?P<b>{_LANG_RE})[\s\-]+(?:language|speaking|spoken)(?:\s+(?:films?|movies?))?)"
    rf"{_E}"
)
_SUBTITLES = re.compile(
    rf"{_B}(?:with\s+)?(?:(?:{_LANG_RE})\s+)?(?:subtitles|subtitled|subs|captions){_E}"
)


def _languages(q: _Query) -> None:
    for m in q.matches(_LANG_EXPLICIT):
        _extend_unique(q.languages, [LANGUAGES[m.group("a") or m.group("b")]])
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_SUBTITLES):  # subtitles say nothing about the original language
        q.take(m.start(), m.end(), hard=True)


_Y = r"(?:19|20)\d{2}"
_DECADE = (
    rf"(?:(?P<part>early|mid|late)[\s\-]*)?(?:(?P<d4>(?:19|20)\d0)\s*'?s|'?(?P<d2>\d0)\s*'?s"
    rf"|(?P<dw>{'|'.join(DECADE_WORDS)}))"
)
_YEARS_BETWEEN = re.compile(
    rf"{_B}(?:(?:between|from)\s+)?(?P<a>{_Y})\s*(?:and|to|until|till|through|-)\s*(?P<b>{_Y}){_E}"
)
_YEARS_AFTER = re.compile(
    rf"{_B}(?:(?P<after>after|post)[\s\-]+(?P<a>{_Y})|(?:since|from)\s+(?P<s>{_Y})\s+"
    rf"(?:on(?:wards?)?|or\s+later|and\s+later|or\s+newer)|(?:since|newer\s+than)\s+(?P<s2>{_Y})"
    rf"|(?P<s3>{_Y})\s+(?:or|and)\s+(?:later|newer|after)|(?P<s4>{_Y})\s*(?:\+|on(?:wards?)))"
    rf"(?!\w)"
)
_YEARS_BEFORE = re.compile(
    rf"{_B}(?:(?:before|pre|older\s+than|prior\s+to)[\s\-]+(?P<b>{_Y})"
    rf"|(?:until|up\s+to|through)\s+(?P<u>{_Y})|(?P<u2>{_Y})\s+(?:or|and)\s+(?:earlier|older|before))"
    rf"{_E}"
)
_DECADE_BOUND = re.compile(rf"{_B}(?P<op>before|after)\s+the\s+{_DECADE}{_E}")
_DECADE_SPAN = re.compile(rf"{_B}(?:(?:from|in|of|during)\s+)?(?:the\s+)?{_DECADE}{_E}")
_YEAR_EXACT = re.compile(rf"{_B}(?:from|in|of|released\s+in|made\s+in)\s+(?P<y>{_Y}){_E}")
_LAST_YEARS = re.compile(
    rf"{_B}(?:(?:from|in|of|over|during|within)\s+)?(?:the\s+)?(?:last|past)\s+"
    rf"(?:(?P<n>\d+|{_NUMBER_RE})\s+years?|(?P<decade>decade)|(?P<few>few|couple\s+of)\s+years)"
    rf"{_E}"
)
_THIS_YEAR = re.compile(rf"{_B}(?:from\s+|of\s+)?(?P<w>this|last)\s+year(?:'s)?{_E}")


def _decade_range(m: re.Match[str]) -> tuple[int, int]:
    if m.group("d4"):
        start = int(m.group("d4"))
    elif m.group("d2"):
        two = int(m.group("d2"))
        start = 2000 + two if two <= 20 else 1900 + two
    else:
        start = DECADE_WORDS[m.group("dw")]
    part = m.group("part")
    if part == "early":
        return start, start + 3
    if part == "mid":
        return start + 3, start + 7
    if part == "late":
        return start + 6, start + 9
    return start, start + 9


def _years(q: _Query) -> None:
    for m in q.matches(_YEARS_BETWEEN):
        a, b = sorted((int(m.group("a")), int(m.group("b"))))
        q.spans.append((a, b))
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_YEARS_AFTER):
        if m.group("after"):
            q.year_lower.append(int(m.group("a")) + 1)
        else:
            q.year_lower.append(
                int(m.group("s") or m.group("s2") or m.group("s3") or m.group("s4"))
            )
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_YEARS_BEFORE):
        if m.group("b"):
            q.year_upper.append(int(m.group("b")) - 1)
        else:
            q.year_upper.append(int(m.group("u") or m.group("u2")))
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_DECADE_BOUND):
        lo, hi = _decade_range(m)
        if m.group("op") == "before":
            q.year_upper.append(lo - 1)
        else:
            q.year_lower.append(hi + 1)
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_DECADE_SPAN):
        q.spans.append(_decade_range(m))
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_YEAR_EXACT):
        y = int(m.group("y"))
        q.spans.append((y, y))
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_LAST_YEARS):
        if m.group("decade"):
            n = 10
        elif m.group("few"):
            n = 3 if m.group("few") == "few" else 2
        else:
            n = int(_number(m.group("n")))
        q.year_lower.append(q.today.year - n)
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_THIS_YEAR):
        year = q.today.year if m.group("w") == "this" else q.today.year - 1
        q.spans.append((year, year))
        q.take(m.start(), m.end(), hard=True)


_HOURS = r"(?:hours?|hrs?|h)"
_MINUTES = r"(?:minutes?|mins?|m)"
_DURATION = (
    rf"(?:(?P<hh>(?:an?\s+)?hour\s+and\s+a\s+half)|(?P<half>half\s+an\s+hour)"
    rf"|(?P<h>{_NUM_BEFORE_UNIT})(?P<andhalf>and\s+a\s+half\s+)?{_HOURS}(?![a-z])"
    rf"(?P<andhalf2>\s+and\s+a\s+half)?"
    rf"(?:\s*(?:and\s+)?(?:(?P<hm>\d{{1,2}})(?!\d)\s*(?:{_MINUTES}(?!\w))?"
    rf"|(?P<hmw>{_COUNT_WORDS})\s+{_MINUTES}(?!\w)))?"
    rf"|(?P<m>{_NUM_BEFORE_UNIT}){_MINUTES}(?!\w))"
)
_RUNTIME = re.compile(
    rf"{_B}(?P<over>(?:over|more\s+than|longer\s+than|at\s+least|above|min(?:imum)?)\s+)?"
    rf"(?:(?:under|less\s+than|shorter\s+than|below|within|at\s+most|max(?:imum)?|up\s+to|"
    rf"no\s+(?:longer|more)\s+than|not\s+(?:longer|more)\s+than|in)\s+)?{_DURATION}"
    rf"(?:\s+(?:or\s+(?:less|shorter|under)|max(?:imum)?|tops|at\s+most|long))?"
)
_RUNTIME_WORDS = re.compile(
    rf"{_B}(?:(?P<nottoo>not\s+too\s+long|nothing\s+too\s+long)|(?P<short>short|quick|shortish))"
    rf"(?![\w+])(?!\s+(?:of|on)\b)"
)


def _duration_minutes(m: re.Match[str]) -> int:
    if m.group("hh"):
        return 90
    if m.group("half"):
        return 30
    if m.group("h"):
        half = 0.5 if m.group("andhalf") or m.group("andhalf2") else 0.0
        hours = _number(m.group("h")) + half
        minute_text = m.group("hm") or m.group("hmw")
        minutes = _number(minute_text) if minute_text else 0.0
        return round(hours * 60 + minutes)
    return round(_number(m.group("m")))


def _runtime(q: _Query) -> None:
    for m in q.matches(_RUNTIME):
        if m.group("over"):  # a minimum runtime: no field for it, so it stays in the free text
            q.protect(m.start(), m.end())
            continue
        minutes = _duration_minutes(m)
        if minutes <= 0:
            continue
        q.max_runtime = minutes if q.max_runtime is None else min(q.max_runtime, minutes)
        q.take(m.start(), m.end(), hard=True)


_RATING_CMP = r"(?:at\s+least|above|over|more\s+than|higher\s+than|better\s+than|>=?|min(?:imum)?)"
_RATING_TAIL = (
    r"(?:\s*(?:/|out\s+of)\s*(?P<scale>100|10|5))?(?:\s*\+|\s+(?:or|and)\s+(?:higher|more|better|"
    r"above|up))?(?P<stars>\s+stars?)?"
)
_RATING = re.compile(
    rf"{_B}(?:(?P<hi>(?:highly|high|top|well|best|highest)[\s\-]+(?:rated|reviewed)|rated\s+highly"
    rf"|critically[\s\-]+acclaimed|acclaimed|(?:good|great|high|strong)\s+(?:reviews|ratings?))"
    rf"|(?:rated|rating|ratings|score|scored|scoring|imdb|tmdb)(?:\s+(?:of|is))?\s+"
    rf"(?:{_RATING_CMP}\s+)?(?P<n1>\d+(?:\.\d+)?){_RATING_TAIL}"
    rf"|{_RATING_CMP}\s+(?P<n2>\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(?P<scale2>100|10|5))?"
    rf"(?!\s*(?:[\d.]|{_HOURS}\b|{_MINUTES}\b|years?\b|'?s\b))"
    rf"|(?P<n3>\d+(?:\.\d+)?)\s*(?:\+|(?:/|out\s+of)\s*(?P<scale3>10|5))"
    rf"(?:\s*(?:or|and)\s+(?:higher|more|better|above|up))?(?:\s+(?:rating|rated|stars?))?"
    rf"|(?P<n4>\d(?:\.\d)?)\s*\+?\s*stars?(?:\s+(?:or|and)\s+(?:higher|more|better|above|up))?)"
    rf"(?![\w+/])"
)


def _rating_value(m: re.Match[str]) -> float | None:
    if m.group("hi"):
        return HIGHLY_RATED
    if m.group("n1"):
        value = float(m.group("n1"))
        scale = m.group("scale") or ("5" if m.group("stars") else None)
    elif m.group("n2"):
        value, scale = float(m.group("n2")), m.group("scale2")
    elif m.group("n3"):
        value, scale = float(m.group("n3")), m.group("scale3")
    else:
        value, scale = float(m.group("n4")), "5"
    if scale is not None:
        value = value * 10.0 / float(scale)
    elif value > 10:  # "rated 18+" is an age rating, "over 15" is not a vote average
        return None
    return round(value, 2)


def _ratings(q: _Query) -> None:
    for m in q.matches(_RATING):
        value = _rating_value(m)
        if value is None or not 0 <= value <= 10:
            q.protect(m.start(), m.end())
            continue
        q.min_rating = value if q.min_rating is None else max(q.min_rating, value)
        q.take(m.start(), m.end(), hard=True)


# --------------------------------------------------------------------------- pass 2: titles

_TRIGGER = re.compile(
    rf"{_B}(?:(?P<neg>unlike|(?:not|nothing|never)\s+like)|(?:similar|comparable)\s+to"
    rf"|in\s+the\s+(?:style|vein|spirit)\s+of|reminiscent\s+of|along\s+the\s+lines\s+of"
    rf"|the\s+likes\s+of|such\s+as|like)(?=\s+\S)"
)
_LIKE_SUFFIX = re.compile(r"(?<![\w'\-])(?P<t>\w[\w'.]*)-like(?![\w+])")
"""A one-word title with a "-like" suffix ("Casablanca-like")."""
_NOT_A_TRIGGER_AFTER = frozenset(
    [
        "i",
        "i'd",
        "id",
        "we",
        "we'd",
        "you",
        "you'd",
        "they",
        "would",
        "'d",
        "really",
        "also",
        "feel",
        "feels",
        "felt",
        "do",
        "don't",
        "dont",
        "didn't",
        "might",
        "may",
        "i'll",
        "we'll",
    ]
)
_TITLE_STOP = frozenset(["but", "that", "which", "please", "tonight", "today", "except", "so"])
_FOR_STOP_NEXT = frozenset(
    [
        "tonight",
        "today",
        "me",
        "us",
        "my",
        "our",
        "the",
        "a",
        "kids",
        "family",
        "date",
        "movie",
        "night",
    ]
)
_WITH_STOP_NEXT = frozenset(
    [
        "subtitles",
        "subs",
        "a",
        "an",
        "more",
        "less",
        "some",
        "no",
        "my",
        "friends",
        "kids",
        "family",
    ]
)
_TOKEN = re.compile(r'"[^"\x00\x01]*"|[^\s\x00\x01]+|[\x00\x01]+')
_ABBREVIATION = re.compile(r"(?:^|[\s.])(?:\w|mr|mrs|ms|dr|st|vs|jr|sr)\.$")
_TITLE_PREFIX = re.compile(r"^(?:the\s+)(?:movie|film|show|series)\s+(?=\S)")


@dataclass
class _Part:
    start: int
    end: int


def _title_parts(q: _Query, pos: int) -> list[_Part]:
    """Title stretches after a trigger ending at ``pos``, split on "," / "or" / "and" / "&"."""
    parts: list[_Part] = []
    current: _Part | None = None
    tokens = list(_TOKEN.finditer(q.work, pos))
    for i, tok in enumerate(tokens):
        text = tok.group()
        if text[0] in (_BLANK, _PROTECT):
            break
        bare = text.rstrip(",;:!?.")
        nxt = tokens[i + 1].group().strip(",;:!?.") if i + 1 < len(tokens) else ""
        if (
            bare in _TITLE_STOP
            or (bare == "for" and nxt in _FOR_STOP_NEXT)
            or (bare == "with" and nxt in _WITH_STOP_NEXT)
            or (bare == "and" and nxt == "also")
        ):
            break
        if bare in {"or", "and", "&", "/"}:
            current = None
            continue
        end = tok.start() + len(bare)
        if not bare:  # a lone punctuation mark
            if text.startswith(","):
                current = None
                continue
            break
        if current is None:
            current = _Part(tok.start(), end)
            parts.append(current)
        else:
            current.end = end
        tail = text[len(bare) :]
        if tail.startswith(","):
            current = None
        elif tail.startswith((";", "!", "?")):
            break
        elif tail.startswith("."):
            if not _ABBREVIATION.search(q.work[current.start : tok.end()]):
                break
            current.end = tok.end()
    return parts


def _is_title(q: _Query, part: _Part) -> bool:
    """A part made only of filler and descriptive words ("a comedy", "something") is no title."""
    words = re.findall(r"[\w'+\-]+", q.work[part.start : part.end])
    if not words:
        return False
    if q.work[part.start] == '"':
        return True
    rest = " ".join(w for w in words if w not in FILLER_WORDS)
    return bool(rest) and re.fullmatch(rf"(?:(?:{_DESCRIPTOR_RE})\s*)+", rest) is None


def _titles(q: _Query) -> None:
    for m in q.matches(_TRIGGER):
        before = re.findall(r"[\w']+", q.work[: m.start()])
        negated = bool(m.group("neg"))
        if not negated and before and before[-1] in _NOT_A_TRIGGER_AFTER:
            q.protect(m.start(), m.end())
            continue
        titles = [p for p in _title_parts(q, m.end()) if _is_title(q, p)]
        if not titles:
            continue
        for part in titles:
            raw = q.original[part.start : part.end].strip()
            if len(raw) >= 2 and raw[0] in '"\u201c' and raw[-1] in '"\u201d':
                raw = raw[1:-1].strip()
            else:
                raw = raw.strip('"\u201c\u201d')
                prefix = _TITLE_PREFIX.match(raw.lower())
                raw = raw[prefix.end() :] if prefix else raw
            if raw and not negated:
                _extend_unique(q.like_titles, [raw])
            q.take(part.start, part.end, hard=True)
        q.take(m.start(), m.end(), hard=True)
        if negated:
            logger.debug("dropping titles the user does not want something like")
    for m in q.matches(_LIKE_SUFFIX):
        if _is_title(q, _Part(m.start("t"), m.end("t"))):
            _extend_unique(q.like_titles, [q.original[m.start("t") : m.end("t")]])
            q.take(m.start(), m.end(), hard=True)


# --------------------------------------------------------------------------- pass 3: descriptors

_PROTECTED = re.compile(
    r"(?<![\w'])(?:star[\s\-]*wars?|show\s+(?:me|us)|new\s+(?:york|zealand|jersey|orleans|mexico|"
    r"england|delhi|hampshire|wave))(?![\w+])"
)
_DESCRIPTOR = re.compile(rf"{_B}(?P<d>{_DESCRIPTOR_RE})")
_RECENT = re.compile(
    r"(?<![\w'])(?:brand[\s\-]*new|newest|newer|new|latest|recent(?:ly\s+released)?|fresh)(?![\w+])"
)
_BARE_YEAR = re.compile(rf"{_B}(?P<y>{_Y})(?![\w+])")
_WORD = re.compile(r"(?<![\w'])[a-z]{6,}(?![\w'])")


def _descriptors(q: _Query) -> None:
    for m in q.matches(_PROTECTED):
        q.protect(m.start(), m.end())
    for m in q.matches(_DESCRIPTOR):
        q.add_descriptor(_lookup(_DESCRIPTOR_KEYS, m.group("d")))
        q.take(m.start(), m.end())
    for m in q.matches(_RUNTIME_WORDS):
        minutes = NOT_TOO_LONG_RUNTIME if m.group("nottoo") else SHORT_RUNTIME
        q.max_runtime = minutes if q.max_runtime is None else min(q.max_runtime, minutes)
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_RECENT):
        q.year_lower.append(q.today.year - RECENT_YEARS)
        q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_BARE_YEAR):
        year = int(m.group("y"))
        if 1900 <= year <= q.today.year + 2:
            q.spans.append((year, year))
            q.take(m.start(), m.end(), hard=True)
    for m in q.matches(_WORD):
        canonical = _fuzzy_genre_word(m.group())
        if canonical is not None:
            q.add_descriptor(_lookup(_DESCRIPTOR_KEYS, canonical))
            q.take(m.start(), m.end())


def _fuzzy_genre_word(word: str) -> str | None:
    """The genre phrase a word of 6+ letters misspells by one edit (insertion, deletion,
    substitution or swap of neighbours: optimal string alignment distance <= 1), else ``None``.

    Ties go to the first word in the vocabulary's ``fuzzy_genre_words`` order.
    """
    found = process.extractOne(
        word, _FUZZY_WORDS, scorer=OSA.distance, score_cutoff=1, processor=None
    )
    return FUZZY_GENRE_WORDS[found[0]] if found is not None else None


# --------------------------------------------------------------------------- assembly

_TEXT_TOKEN = re.compile(r"[\w'+\-&:!?.]+")


def _segments(q: _Query, keep: list[bool]) -> list[list[tuple[str, str, int]]]:
    """Runs of kept characters as (original, lower case, offset) tokens."""
    segments: list[list[tuple[str, str, int]]] = []
    i = 0
    n = len(q.original)
    while i < n:
        if not keep[i]:
            i += 1
            continue
        j = i
        while j < n and keep[j]:
            j += 1
        segments.append(
            [
                (t.group(), t.group().lower(), i + t.start())
                for t in _TEXT_TOKEN.finditer(q.original[i:j])
            ]
        )
        i = j
    return segments


def _trim(q: _Query, tokens: list[tuple[str, str, int]]) -> list[str]:
    """Drop filler words at both ends (a word read as a descriptor is never filler)."""

    def is_filler(token: tuple[str, str, int]) -> bool:
        _, low, offset = token
        if q.consumed[offset]:
            return False
        return low.strip(".,;:!?-'&") in FILLER_WORDS or not re.search(r"\w", low)

    start, end = 0, len(tokens)
    while start < end and is_filler(tokens[start]):
        start += 1
    while end > start and is_filler(tokens[end - 1]):
        end -= 1
    return [orig.strip(".,;:!?") or orig for orig, _, _ in tokens[start:end]]


def _free_text(q: _Query) -> str:
    """Leftover words; else the descriptive words (hard filters removed); else the liked titles."""
    for keep in ([not c for c in q.consumed], [not h for h in q.hard]):
        words = [w for seg in _segments(q, keep) for w in _trim(q, seg)]
        if words:
            return " ".join(words)
    return ", ".join(q.like_titles)


def _year_bounds(q: _Query) -> tuple[int | None, int | None]:
    low = min((lo for lo, _ in q.spans), default=None)
    high = max((hi for _, hi in q.spans), default=None)
    if q.year_lower:
        low = max(q.year_lower) if low is None else max(low, max(q.year_lower))
    if q.year_upper:
        high = min(q.year_upper) if high is None else min(high, min(q.year_upper))
    if low is not None and high is not None and low > high:
        logger.debug("contradictory year bounds; keeping the span of the explicit years")
        low = min((lo for lo, _ in q.spans), default=low)
        high = max((hi for _, hi in q.spans), default=high)
    return low, high


def _content_type(q: _Query) -> str | None:
    if len(q.content_types) == 1:
        return q.content_types[0]
    if not q.content_types and len(q.excluded_content_types) == 1:
        return "series" if q.excluded_content_types[0] == "movie" else "movie"
    return None


def parse_local(text: str, *, today: date | None = None) -> QueryIntent:
    """Parse ``text`` into a :class:`QueryIntent` (``parser="local"``); ``today`` anchors "recent"."""
    q = _Query(original=text, today=today or date.today())
    _exclusions(q)
    _services(q)
    _languages(q)
    _years(q)
    _runtime(q)
    _ratings(q)
    _titles(q)
    _descriptors(q)
    year_min, year_max = _year_bounds(q)
    genres = [g for g in q.genres if g not in q.exclude_genres]
    return QueryIntent(
        text=_free_text(q),
        genres=genres,
        exclude_genres=q.exclude_genres,
        year_min=year_min,
        year_max=year_max,
        max_runtime=q.max_runtime,
        min_rating=q.min_rating,
        moods=q.moods,  # type: ignore[arg-type]  # vocabulary moods are Mood literals
        like_titles=q.like_titles,
        services=q.services,
        language=q.languages[0] if q.languages else None,
        content_type=_content_type(q),  # type: ignore[arg-type]
        parser="local",
    )
