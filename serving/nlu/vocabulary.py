"""Lexicons the query parsers share: genres, moods, services, languages, content types, numbers.

The phrases live in ``serving/nlu/data/vocabulary.yaml`` (data, not code; its header says how to
write an entry) and are validated with pydantic when this module is imported: an unknown genre,
mood, service or language code, a phrase defined twice (in one section or across the descriptor
sections), or a malformed entry raises :class:`VocabularyError` naming the file and the entry. The
closed sets the phrases map onto (TMDB genre names, moods, service ids) stay here as types, because
the Gemini response schema is built from them.

A :class:`Descriptor` is what a word or phrase says about the wanted title. "scary" is both the
genre Horror and the mood scary; "k-drama" is Korean + series + Drama; "anime" is Japanese +
Animation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from models.ranking.intent import Mood

VOCABULARY_FILE = Path(__file__).parent / "data" / "vocabulary.yaml"

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


class VocabularyError(ValueError):
    """The vocabulary file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Descriptor:
    """What a descriptive word says about the wanted title."""

    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    language: str | None = None
    content_type: Literal["movie", "series"] | None = None


LanguageCode = Annotated[StrictStr, Field(pattern=r"^[a-z]{2}$")]
Phrase = Annotated[StrictStr, Field(pattern=r"^[a-z0-9'+][a-z0-9'+ \-]*$")]


class _DescriptorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    genres: tuple[GenreName, ...] = ()
    moods: tuple[Mood, ...] = ()
    language: LanguageCode | None = None
    content_type: Literal["movie", "series"] | None = None

    def descriptor(self) -> Descriptor:
        return Descriptor(self.genres, self.moods, self.language, self.content_type)


class _VocabularyFile(BaseModel):
    """Schema of ``vocabulary.yaml`` (a list value is shorthand for the section's main field)."""

    model_config = ConfigDict(extra="forbid")

    genres: dict[Phrase, list[GenreName] | _DescriptorEntry]
    moods: dict[Phrase, list[Mood] | _DescriptorEntry]
    content_types: dict[Phrase, Literal["movie", "series"]]
    languages: dict[Phrase, LanguageCode]
    language_phrases: dict[Phrase, _DescriptorEntry]
    services: dict[Phrase, ServiceId]
    services_after_on: dict[Phrase, ServiceId]
    fuzzy_genre_words: dict[Annotated[StrictStr, Field(pattern=r"^[a-z]{6,}$")], Phrase]
    decades: dict[Phrase, Annotated[int, Field(ge=1900, le=2090, multiple_of=10)]]
    numbers: dict[Phrase, Annotated[float, Field(gt=0)]]
    filler: list[StrictStr]


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe YAML loader that rejects a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _entry(error: dict[str, Any]) -> str:
    loc = error["loc"]
    # drop pydantic's union-branch labels ("list[...]", "_DescriptorEntry") from the location
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p[:1] in "_A-Z"))]
    return ".".join(parts) or "<file>"


def load_vocabulary(path: Path = VOCABULARY_FILE) -> _VocabularyFile:
    """Read and validate a vocabulary file (raises :class:`VocabularyError`)."""
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise VocabularyError(f"{path}: not valid YAML: {exc}") from exc
    try:
        vocab = _VocabularyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise VocabularyError(
            f"{path}: entry {_entry(first)}: {first['msg']} (got {first.get('input')!r})"
            + (f"; {exc.error_count() - 1} more error(s)" if exc.error_count() > 1 else "")
        ) from exc
    seen: dict[str, str] = {}
    for section in ("genres", "moods", "content_types", "languages", "language_phrases"):
        for phrase in getattr(vocab, section):
            if phrase in seen:
                raise VocabularyError(
                    f"{path}: phrase {phrase!r} is in both {seen[phrase]!r} and {section!r}"
                )
            seen[phrase] = section
    for word, target in vocab.fuzzy_genre_words.items():
        if target not in vocab.genres:
            raise VocabularyError(
                f"{path}: entry fuzzy_genre_words.{word}: {target!r} is not a phrase of 'genres'"
            )
    return vocab


def _descriptors(table: dict[str, Any], main: str) -> dict[str, Descriptor]:
    return {
        phrase: value.descriptor()
        if isinstance(value, _DescriptorEntry)
        else Descriptor(**{main: tuple(value)})
        for phrase, value in table.items()
    }


_VOCAB = load_vocabulary()

LANGUAGES: dict[str, str] = dict(_VOCAB.languages)
"""Language names and adjectives -> ISO 639-1 code (TMDB ``original_language``; TMDB writes
Cantonese as "cn")."""
SERVICE_ALIASES: dict[str, str] = dict(_VOCAB.services)
"""Service names that are unambiguous on their own. Plain "max" only counts after "on"
("on Max"): on its own it is too often part of a title ("Mad Max")."""
SERVICE_AFTER_ON: dict[str, str] = dict(_VOCAB.services_after_on)
"""Names that mean a service only in "on <name>" / "streaming on <name>"."""
GENRE_PHRASES: dict[str, Descriptor] = _descriptors(_VOCAB.genres, "genres")
"""Genre words (movie genre names and their common synonyms)."""
MOOD_PHRASES: dict[str, Descriptor] = _descriptors(_VOCAB.moods, "moods")
"""Mood words. The mood list is fixed by ``models.ranking.intent.Mood``."""
CONTENT_TYPE_PHRASES: dict[str, Descriptor] = {
    phrase: Descriptor(content_type=kind) for phrase, kind in _VOCAB.content_types.items()
}
LANGUAGE_PHRASES: dict[str, Descriptor] = {
    **{name: Descriptor(language=code) for name, code in LANGUAGES.items()},
    **_descriptors(_VOCAB.language_phrases, "genres"),
}
"""Bare language adjectives and film-industry names (the parser reads "in Korean" separately)."""
DESCRIPTORS: dict[str, Descriptor] = {
    **GENRE_PHRASES,
    **MOOD_PHRASES,
    **CONTENT_TYPE_PHRASES,
    **LANGUAGE_PHRASES,
}
"""Every descriptive phrase -> its meaning (phrases are unique across the tables)."""
FUZZY_GENRE_WORDS: dict[str, str] = dict(_VOCAB.fuzzy_genre_words)
"""Long genre words whose one-edit typos ("thriler", "documentry") are still recognised."""
DECADE_WORDS: dict[str, int] = dict(_VOCAB.decades)
"""Decade names. "twenties" and "tens" are left out: 1920s or 2020s is anyone's guess."""
NUMBER_WORDS: dict[str, float] = {w: float(n) for w, n in _VOCAB.numbers.items()}
"""Spelled-out numbers accepted in durations and year spans."""
FILLER_WORDS: frozenset[str] = frozenset(_VOCAB.filler)
"""Words that carry no meaning for similarity on their own (trimmed from the free text)."""
