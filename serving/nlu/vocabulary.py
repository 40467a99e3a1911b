"""Lexicons the query parsers share: genres, moods, services, languages, content types, numbers.

Every phrase is written in lower case with single spaces or hyphens; the local parser compiles it
into a pattern that also accepts the other separators ("sci-fi", "sci fi", "scifi") and plurals, so
the tables list each idea once.

A :class:`Descriptor` is what a word or phrase says about the wanted title. "scary" is both the
genre Horror and the mood scary; "k-drama" is Korean + series + Drama; "anime" is Japanese +
Animation. Words that name nothing structured (e.g. "heist", "space") are deliberately absent: they
stay in the free text that drives semantic similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from models.ranking.intent import Mood

GenreName = Literal[
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "TV Movie",
    "Thriller",
    "War",
    "Western",
]
"""TMDB movie genre names (``GET /genre/movie/list``)."""

TMDB_MOVIE_GENRES: tuple[str, ...] = get_args(GenreName)
MOODS: tuple[str, ...] = get_args(Mood)

ServiceId = Literal[
    "netflix",
    "amazonprime",
    "disneyplus",
    "hulu",
    "max",
    "appletvplus",
    "paramountplus",
    "peacocktv",
]
"""Streaming services the parsers recognise, as JustWatch technical names."""

SERVICE_IDS: tuple[str, ...] = get_args(ServiceId)

SERVICE_ALIASES: dict[str, str] = {
    "netflix": "netflix",
    "prime video": "amazonprime",
    "amazon prime video": "amazonprime",
    "amazon prime": "amazonprime",
    "amazon video": "amazonprime",
    "amazon": "amazonprime",
    "prime": "amazonprime",
    "disney+": "disneyplus",
    "disney plus": "disneyplus",
    "disneyplus": "disneyplus",
    "hulu": "hulu",
    "hbo max": "max",
    "hbomax": "max",
    "hbo": "max",
    "apple tv+": "appletvplus",
    "apple tv plus": "appletvplus",
    "apple tv": "appletvplus",
    "appletv+": "appletvplus",
    "paramount+": "paramountplus",
    "paramount plus": "paramountplus",
    "peacock": "peacocktv",
}
"""Service names that are unambiguous on their own. Plain "max" only counts after "on"
("on Max"): on its own it is too often part of a title ("Mad Max")."""

SERVICE_AFTER_ON: dict[str, str] = {
    "max": "max",
    "paramount": "paramountplus",
    "disney": "disneyplus",
}
"""Names that mean a service only in "on <name>" / "streaming on <name>"."""

LANGUAGES: dict[str, str] = {
    "english": "en",
    "french": "fr",
    "spanish": "es",
    "german": "de",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "chinese": "zh",
    "mandarin": "zh",
    "cantonese": "cn",
    "hindi": "hi",
    "portuguese": "pt",
    "brazilian": "pt",
    "swedish": "sv",
    "danish": "da",
    "norwegian": "no",
    "finnish": "fi",
    "icelandic": "is",
    "dutch": "nl",
    "flemish": "nl",
    "russian": "ru",
    "polish": "pl",
    "czech": "cs",
    "hungarian": "hu",
    "romanian": "ro",
    "greek": "el",
    "turkish": "tr",
    "arabic": "ar",
    "hebrew": "he",
    "persian": "fa",
    "farsi": "fa",
    "thai": "th",
    "vietnamese": "vi",
    "indonesian": "id",
    "tagalog": "tl",
    "filipino": "tl",
    "tamil": "ta",
    "telugu": "te",
    "malayalam": "ml",
    "bengali": "bn",
    "ukrainian": "uk",
}
"""Language names and adjectives -> ISO 639-1 code (TMDB ``original_language``; TMDB writes
Cantonese as "cn")."""


@dataclass(frozen=True)
class Descriptor:
    """What a descriptive word says about the wanted title."""

    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    language: str | None = None
    content_type: Literal["movie", "series"] | None = None


def _g(*genres: str) -> Descriptor:
    return Descriptor(genres=genres)


def _m(*moods: str) -> Descriptor:
    return Descriptor(moods=moods)


GENRE_PHRASES: dict[str, Descriptor] = {
    "action": _g("Action"),
    "action movie": Descriptor(("Action",), content_type="movie"),
    "martial arts": _g("Action"),
    "kung fu": _g("Action"),
    "superhero": _g("Action"),
    "adventure": _g("Adventure"),
    "animation": _g("Animation"),
    "animated": _g("Animation"),
    "cartoon": _g("Animation"),
    "anime": Descriptor(("Animation",), language="ja"),
    "comedy": _g("Comedy"),
    "comedic": _g("Comedy"),
    "stand-up": _g("Comedy"),
    "standup comedy": _g("Comedy"),
    "sitcom": Descriptor(("Comedy",), content_type="series"),
    "rom-com": _g("Romance", "Comedy"),
    "romantic comedy": _g("Romance", "Comedy"),
    "dramedy": _g("Comedy", "Drama"),
    "dark comedy": Descriptor(("Comedy",), ("dark",)),
    "black comedy": Descriptor(("Comedy",), ("dark",)),
    "crime": _g("Crime"),
    "gangster": _g("Crime"),
    "mafia": _g("Crime"),
    "mob": _g("Crime"),
    "true crime": _g("Documentary", "Crime"),
    "film noir": Descriptor(("Crime",), ("dark",)),
    "documentary": _g("Documentary"),
    "doc": _g("Documentary"),
    "docu": _g("Documentary"),
    "docu-series": Descriptor(("Documentary",), content_type="series"),
    "drama": _g("Drama"),
    "period drama": _g("Drama", "History"),
    "costume drama": _g("Drama", "History"),
    "biopic": _g("Drama", "History"),
    "k-drama": Descriptor(("Drama",), language="ko", content_type="series"),
    "j-drama": Descriptor(("Drama",), language="ja", content_type="series"),
    "c-drama": Descriptor(("Drama",), language="zh", content_type="series"),
    "telenovela": Descriptor(("Drama",), language="es", content_type="series"),
    "family": _g("Family"),
    "kid": _g("Family"),
    "children": _g("Family"),
    "family-friendly": _g("Family"),
    "kid-friendly": _g("Family"),
    "fantasy": _g("Fantasy"),
    "fairy tale": _g("Fantasy"),
    "history": _g("History"),
    "historical": _g("History"),
    "period piece": _g("History"),
    "horror": _g("Horror"),
    "slasher": _g("Horror"),
    "zombie": _g("Horror"),
    "scary": Descriptor(("Horror",), ("scary",)),
    "terrifying": Descriptor(("Horror",), ("scary",)),
    "frightening": Descriptor(("Horror",), ("scary",)),
    "music": _g("Music"),
    "musical": _g("Music"),
    "concert film": _g("Music"),
    "mystery": _g("Mystery"),
    "whodunit": _g("Mystery"),
    "whodunnit": _g("Mystery"),
    "detective": _g("Mystery"),
    "romance": _g("Romance"),
    "love story": _g("Romance"),
    "sci-fi": _g("Science Fiction"),
    "science fiction": _g("Science Fiction"),
    "space opera": _g("Science Fiction"),
    "cyberpunk": _g("Science Fiction"),
    "tv movie": Descriptor(("TV Movie",), content_type="movie"),
    "made-for-tv movie": Descriptor(("TV Movie",), content_type="movie"),
    "thriller": _g("Thriller"),
    "suspense": _g("Thriller"),
    "war": _g("War"),
    "western": _g("Western"),
    "cowboy": _g("Western"),
    "spaghetti western": _g("Western"),
}
"""Genre words (movie genre names and their common synonyms)."""

MOOD_PHRASES: dict[str, Descriptor] = {
    "light": _m("light"),
    "lighthearted": _m("light"),
    "light-hearted": _m("light"),
    "breezy": _m("light"),
    "fun": _m("light"),
    "easy watching": _m("light"),
    "funny": _m("funny"),
    "hilarious": _m("funny"),
    "humorous": _m("funny"),
    "witty": _m("funny"),
    "goofy": _m("funny"),
    "silly": _m("funny"),
    "make me laugh": _m("funny"),
    "dark": _m("dark"),
    "darker": _m("dark"),
    "gritty": _m("dark"),
    "bleak": _m("dark"),
    "grim": _m("dark"),
    "disturbing": _m("dark"),
    "noir": _m("dark"),
    "tense": _m("tense"),
    "suspenseful": _m("tense"),
    "gripping": _m("tense"),
    "nail-biting": _m("tense"),
    "nail-biter": _m("tense"),
    "intense": _m("tense"),
    "edge of my seat": _m("tense"),
    "edge of your seat": _m("tense"),
    "spooky": _m("scary"),
    "creepy": _m("scary"),
    "eerie": _m("scary"),
    "romantic": _m("romantic"),
    "date night": _m("romantic"),
    "uplifting": _m("uplifting"),
    "feel-good": _m("uplifting"),
    "heartwarming": _m("uplifting"),
    "inspiring": _m("uplifting"),
    "inspirational": _m("uplifting"),
    "wholesome": _m("uplifting"),
    "hopeful": _m("uplifting"),
    "happy": _m("uplifting"),
    "cheerful": _m("uplifting"),
    "cheer me up": _m("uplifting"),
    "thoughtful": _m("thoughtful"),
    "thought-provoking": _m("thoughtful"),
    "cerebral": _m("thoughtful"),
    "philosophical": _m("thoughtful"),
    "smart": _m("thoughtful"),
    "intelligent": _m("thoughtful"),
    "meaningful": _m("thoughtful"),
    "makes you think": _m("thoughtful"),
    "exciting": _m("exciting"),
    "thrilling": _m("exciting"),
    "action-packed": _m("exciting"),
    "fast-paced": _m("exciting"),
    "adrenaline": _m("exciting"),
    "epic": _m("exciting"),
    "relaxing": _m("relaxing"),
    "cozy": _m("relaxing"),
    "cosy": _m("relaxing"),
    "chill": _m("relaxing"),
    "calm": _m("relaxing"),
    "comforting": _m("relaxing"),
    "soothing": _m("relaxing"),
    "laid-back": _m("relaxing"),
    "low-key": _m("relaxing"),
    "mellow": _m("relaxing"),
    "comfort watch": _m("relaxing"),
    "sad": _m("sad"),
    "tear-jerker": _m("sad"),
    "emotional": _m("sad"),
    "melancholic": _m("sad"),
    "melancholy": _m("sad"),
    "heartbreaking": _m("sad"),
    "make me cry": _m("sad"),
    "depressing": _m("sad"),
    "weird": _m("weird"),
    "strange": _m("weird"),
    "bizarre": _m("weird"),
    "surreal": _m("weird"),
    "quirky": _m("weird"),
    "offbeat": _m("weird"),
    "trippy": _m("weird"),
    "absurd": _m("weird"),
    "mind-bending": _m("weird", "thoughtful"),
    "mind-blowing": _m("weird", "thoughtful"),
    "mind-boggling": _m("weird", "thoughtful"),
}
"""Mood words. The mood list is fixed by ``models.ranking.intent.Mood``."""

CONTENT_TYPE_PHRASES: dict[str, Descriptor] = {
    "movie": Descriptor(content_type="movie"),
    "film": Descriptor(content_type="movie"),
    "flick": Descriptor(content_type="movie"),
    "feature film": Descriptor(content_type="movie"),
    "series": Descriptor(content_type="series"),
    "show": Descriptor(content_type="series"),
    "tv show": Descriptor(content_type="series"),
    "tv series": Descriptor(content_type="series"),
    "tv": Descriptor(content_type="series"),
    "miniseries": Descriptor(content_type="series"),
    "mini-series": Descriptor(content_type="series"),
    "limited series": Descriptor(content_type="series"),
    "season": Descriptor(content_type="series"),
    "episode": Descriptor(content_type="series"),
}

LANGUAGE_PHRASES: dict[str, Descriptor] = {
    **{name: Descriptor(language=code) for name, code in LANGUAGES.items()},
    "bollywood": Descriptor(language="hi"),
    "tollywood": Descriptor(language="te"),
    "kollywood": Descriptor(language="ta"),
    "korean drama": Descriptor(("Drama",), language="ko"),
}
"""Bare language adjectives and film-industry names (the parser reads "in Korean" separately)."""


def _merge(*tables: dict[str, Descriptor]) -> dict[str, Descriptor]:
    merged: dict[str, Descriptor] = {}
    for table in tables:
        for phrase, descriptor in table.items():
            if phrase in merged:
                raise ValueError(f"vocabulary: phrase {phrase!r} is defined twice")
            merged[phrase] = descriptor
    return merged


DESCRIPTORS: dict[str, Descriptor] = _merge(
    GENRE_PHRASES, MOOD_PHRASES, CONTENT_TYPE_PHRASES, LANGUAGE_PHRASES
)
"""Every descriptive phrase -> its meaning (phrases are unique across the tables)."""

FUZZY_GENRE_WORDS: dict[str, str] = {
    "thriller": "thriller",
    "documentary": "documentary",
    "documentaries": "documentary",
    "comedy": "comedy",
    "comedies": "comedy",
    "horror": "horror",
    "romance": "romance",
    "western": "western",
    "fantasy": "fantasy",
    "animation": "animation",
    "animated": "animated",
    "adventure": "adventure",
    "musical": "musical",
}
"""Long genre words whose one-letter typos ("thriler", "documentry") are still recognised."""

DECADE_WORDS: dict[str, int] = {
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
    "aughts": 2000,
}
"""Decade names. "twenties" and "tens" are left out: 1920s or 2020s is anyone's guess."""

NUMBER_WORDS: dict[str, float] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "forty-five": 45,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "seventy-five": 75,
    "eighty": 80,
    "ninety": 90,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "one and a half": 1.5,
    "two and a half": 2.5,
    "a half": 0.5,
    "half an": 0.5,
    "half a": 0.5,
}
"""Spelled-out numbers accepted in durations and year spans."""

FILLER_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "the",
        "some",
        "any",
        "something",
        "anything",
        "stuff",
        "one",
        "ones",
        "i",
        "me",
        "my",
        "we",
        "us",
        "our",
        "you",
        "your",
        "to",
        "for",
        "of",
        "about",
        "and",
        "or",
        "but",
        "with",
        "that",
        "this",
        "these",
        "those",
        "which",
        "who",
        "is",
        "are",
        "be",
        "was",
        "it",
        "its",
        "want",
        "wanna",
        "would",
        "like",
        "looking",
        "look",
        "find",
        "show",
        "give",
        "recommend",
        "suggest",
        "need",
        "watch",
        "watching",
        "see",
        "good",
        "great",
        "nice",
        "please",
        "tonight",
        "today",
        "now",
        "can",
        "could",
        "should",
        "what",
        "maybe",
        "really",
        "just",
        "kind",
        "sort",
        "type",
        "in",
        "on",
        "at",
        "from",
        "by",
        "into",
        "mood",
        "feel",
        "feeling",
        "there",
        "here",
        "am",
        "im",
        "i'm",
        "i'd",
        "id",
        "get",
        "got",
        "let",
        "lets",
        "let's",
        "tell",
        "more",
        "else",
    ]
)
"""Words that carry no meaning for similarity on their own (trimmed from the free text)."""
