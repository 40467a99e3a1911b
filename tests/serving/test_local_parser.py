"""The local query parser: hand-written queries with their full expected intent."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import pytest

from models.ranking.intent import QueryIntent
from serving.nlu.local_parser import HIGHLY_RATED, RECENT_YEARS, SHORT_RUNTIME, parse_local
from serving.nlu.vocabulary import (
    DESCRIPTORS,
    LANGUAGES,
    MOODS,
    SERVICE_ALIASES,
    SERVICE_IDS,
    TMDB_MOVIE_GENRES,
)

TODAY = date(2026, 11, 15)

CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "thriller movies like Inception",
        dict(
            text="thriller movies",
            genres=["Thriller"],
            content_type="movie",
            like_titles=["Inception"],
        ),
    ),
    (
        "something funny under 90 minutes on netflix",
        dict(text="funny", moods=["funny"], max_runtime=90, services=["netflix"]),
    ),
    ("80s sci-fi", dict(text="sci-fi", genres=["Science Fiction"], year_min=1980, year_max=1989)),
    (
        "korean thriller series",
        dict(
            text="korean thriller series",
            genres=["Thriller"],
            language="ko",
            content_type="series",
        ),
    ),
    (
        "feel-good family movie for tonight, no horror",
        dict(
            text="feel-good family movie",
            genres=["Family"],
            exclude_genres=["Horror"],
            moods=["uplifting"],
            content_type="movie",
        ),
    ),
    (
        "documentaries about space from the last 5 years",
        dict(text="space", genres=["Documentary"], year_min=2021),
    ),
    (
        "a mind-bending movie like Inception or Interstellar",
        dict(
            text="mind-bending movie",
            moods=["weird", "thoughtful"],
            content_type="movie",
            like_titles=["Inception", "Interstellar"],
        ),
    ),
    (
        "romantic comedy on disney+ in english",
        dict(
            text="romantic comedy",
            genres=["Romance", "Comedy"],
            services=["disneyplus"],
            language="en",
        ),
    ),
    (
        "highly rated crime drama from the 90s",
        dict(
            text="crime drama",
            genres=["Crime", "Drama"],
            year_min=1990,
            year_max=1999,
            min_rating=HIGHLY_RATED,
        ),
    ),
    ("something like breaking bad", dict(text="breaking bad", like_titles=["breaking bad"])),
    (
        "scifi from the nineties on Prime Video",
        dict(
            text="scifi",
            genres=["Science Fiction"],
            year_min=1990,
            year_max=1999,
            services=["amazonprime"],
        ),
    ),
    (
        "rom-coms from 2010 on amazon",
        dict(
            text="rom-coms",
            genres=["Romance", "Comedy"],
            year_min=2010,
            year_max=2010,
            services=["amazonprime"],
        ),
    ),
    (
        "animated films after 2015 on Disney Plus",
        dict(
            text="animated films",
            genres=["Animation"],
            year_min=2016,
            content_type="movie",
            services=["disneyplus"],
        ),
    ),
    (
        "westerns before 2000, rated 8+",
        dict(text="westerns", genres=["Western"], year_max=1999, min_rating=8.0),
    ),
    (
        "war movies between 1990 and 1999 above 7",
        dict(
            text="war movies",
            genres=["War"],
            year_min=1990,
            year_max=1999,
            min_rating=7.0,
            content_type="movie",
        ),
    ),
    (
        "new horror, not a musical",
        dict(
            text="horror",
            genres=["Horror"],
            exclude_genres=["Music"],
            year_min=TODAY.year - RECENT_YEARS,
        ),
    ),
    (
        "a short cozy cartoon for the kids",
        dict(
            text="cozy cartoon for the kids",
            genres=["Animation", "Family"],
            moods=["relaxing"],
            max_runtime=SHORT_RUNTIME,
        ),
    ),
    (
        "something scary under two hours on HBO Max",
        dict(
            text="scary",
            genres=["Horror"],
            moods=["scary"],
            max_runtime=120,
            services=["max"],
        ),
    ),
    (
        "a whodunit in French less than 100 minutes",
        dict(text="whodunit", genres=["Mystery"], language="fr", max_runtime=100),
    ),
    (
        "japanese anime series with english subtitles",
        dict(
            text="japanese anime series",
            genres=["Animation"],
            language="ja",
            content_type="series",
        ),
    ),
    (
        "k-dramas on netflix",
        dict(
            text="k-dramas",
            genres=["Drama"],
            language="ko",
            content_type="series",
            services=["netflix"],
        ),
    ),
    ("bollywood musicals", dict(text="bollywood musicals", genres=["Music"], language="hi")),
    (
        "a sitcom on Peacock or Paramount+",
        dict(
            text="sitcom",
            genres=["Comedy"],
            content_type="series",
            services=["peacocktv", "paramountplus"],
        ),
    ),
    (
        "Apple TV+ miniseries without romance",
        dict(
            text="miniseries",
            exclude_genres=["Romance"],
            content_type="series",
            services=["appletvplus"],
        ),
    ),
    (
        "a dark tense thriller like Se7en or Zodiac, 1.5 hours",
        dict(
            text="dark tense thriller",
            genres=["Thriller"],
            moods=["dark", "tense"],
            like_titles=["Se7en", "Zodiac"],
            max_runtime=90,
        ),
    ),
    (
        "sad movies that make me cry",
        dict(text="sad movies that make me cry", moods=["sad"], content_type="movie"),
    ),
    (
        "uplifting sports documentaries",
        dict(text="sports", genres=["Documentary"], moods=["uplifting"]),
    ),
    (
        "heist movies in the style of Ocean's Eleven but funnier",
        dict(
            text="heist funnier",
            like_titles=["Ocean's Eleven"],
            content_type="movie",
        ),
    ),
    (
        'movies like "Pride and Prejudice" or Emma',
        dict(text="movies", like_titles=["Pride and Prejudice", "Emma"], content_type="movie"),
    ),
    (
        "like The Dark Knight, nothing scary",
        dict(text="The Dark Knight", like_titles=["The Dark Knight"], exclude_genres=["Horror"]),
    ),
    (
        "early 2000s comedies under 2h",
        dict(text="comedies", genres=["Comedy"], year_min=2000, year_max=2003, max_runtime=120),
    ),
    (
        "recent exciting adventure films",
        dict(
            text="exciting adventure films",
            genres=["Adventure"],
            moods=["exciting"],
            year_min=TODAY.year - RECENT_YEARS,
            content_type="movie",
        ),
    ),
    (
        "quirky indie films from the 80s and 90s rated 4 stars",
        dict(
            text="indie",
            moods=["weird"],
            year_min=1980,
            year_max=1999,
            min_rating=8.0,
            content_type="movie",
        ),
    ),
    (
        "lighthearted tv show, no war",
        dict(
            text="lighthearted tv show",
            moods=["light"],
            exclude_genres=["War"],
            content_type="series",
        ),
    ),
    (
        "I'd like a thought-provoking documentary, an hour and a half max",
        dict(
            text="thought-provoking documentary",
            genres=["Documentary"],
            moods=["thoughtful"],
            max_runtime=90,
        ),
    ),
    (
        "SCI-FI HORROR on Hulu",
        dict(text="SCI-FI HORROR", genres=["Science Fiction", "Horror"], services=["hulu"]),
    ),
    (
        "a relaxing nature docuseries with high ratings",
        dict(
            text="nature",
            genres=["Documentary"],
            moods=["relaxing"],
            content_type="series",
            min_rating=HIGHLY_RATED,
        ),
    ),
    ("thriler movies", dict(text="thriler movies", genres=["Thriller"], content_type="movie")),
    (
        "spanish-language crime series from this year",
        dict(
            text="crime series",
            genres=["Crime"],
            language="es",
            content_type="series",
            year_min=TODAY.year,
            year_max=TODAY.year,
        ),
    ),
    (
        "star wars movies without horror",
        dict(text="star wars", exclude_genres=["Horror"], content_type="movie"),
    ),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[q for q, _ in CASES])
def test_parse_local_full_intent(query: str, expected: dict[str, Any]) -> None:
    got = parse_local(query, today=TODAY)
    assert got.model_dump() == QueryIntent(**expected, parser="local").model_dump()


def test_at_least_thirty_hand_written_cases() -> None:
    assert len(CASES) >= 30
    assert len({q for q, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("query", "minutes"),
    [
        ("under two hours", 120),
        ("less than 90 minutes", 90),
        ("under 2h", 120),
        ("1.5 hours", 90),
        ("short", SHORT_RUNTIME),
        ("under an hour", 60),
        ("no longer than 1h30", 90),
        ("2 hours and 15 minutes or less", 135),
        ("ninety minutes", 90),
        ("not too long", 120),
    ],
)
def test_runtime_phrases(query: str, minutes: int) -> None:
    assert parse_local(query, today=TODAY).max_runtime == minutes


@pytest.mark.parametrize(
    ("query", "bounds"),
    [
        ("80s", (1980, 1989)),
        ("1980s", (1980, 1989)),
        ("from the nineties", (1990, 1999)),
        ("mid-90s", (1993, 1997)),
        ("from 2010", (2010, 2010)),
        ("after 2015", (2016, None)),
        ("since 2015", (2015, None)),
        ("before 2000", (None, 1999)),
        ("between 1990 and 1999", (1990, 1999)),
        ("2015-2020", (2015, 2020)),
        ("recent", (TODAY.year - RECENT_YEARS, None)),
        ("new", (TODAY.year - RECENT_YEARS, None)),
        ("from the past decade", (TODAY.year - 10, None)),
        ("last year", (TODAY.year - 1, TODAY.year - 1)),
        ("2019", (2019, 2019)),
    ],
)
def test_year_phrases(query: str, bounds: tuple[int | None, int | None]) -> None:
    got = parse_local(query, today=TODAY)
    assert (got.year_min, got.year_max) == bounds


def test_recent_is_relative_to_today() -> None:
    assert parse_local("new releases", today=date(2030, 1, 1)).year_min == 2030 - RECENT_YEARS


@pytest.mark.parametrize(
    ("query", "rating"),
    [
        ("highly rated", HIGHLY_RATED),
        ("top-rated", HIGHLY_RATED),
        ("rated 8+", 8.0),
        ("above 7", 7.0),
        ("rating of at least 6.5", 6.5),
        ("7/10 or higher", 7.0),
        ("4 stars", 8.0),
    ],
)
def test_rating_phrases(query: str, rating: float) -> None:
    assert parse_local(query, today=TODAY).min_rating == rating


@pytest.mark.parametrize(
    "query",
    ["rated 18+", "over 2 hours", "above 2010 budget", "i am 30 years old"],
)
def test_numbers_that_are_not_ratings(query: str) -> None:
    assert parse_local(query, today=TODAY).min_rating is None


def test_over_a_duration_sets_no_maximum_and_stays_in_text() -> None:
    got = parse_local("epic over 2 hours long", today=TODAY)
    assert got.max_runtime is None
    assert "over 2 hours" in got.text


@pytest.mark.parametrize(
    ("query", "service"),
    [
        ("on Netflix", "netflix"),
        ("Prime Video", "amazonprime"),
        ("amazon", "amazonprime"),
        ("Disney+", "disneyplus"),
        ("disney plus", "disneyplus"),
        ("hulu", "hulu"),
        ("HBO Max", "max"),
        ("on Max", "max"),
        ("Apple TV+", "appletvplus"),
        ("Paramount+", "paramountplus"),
        ("Peacock", "peacocktv"),
    ],
)
def test_service_names(query: str, service: str) -> None:
    assert parse_local(query, today=TODAY).services == [service]


def test_max_alone_is_not_a_service() -> None:
    got = parse_local("mad max", today=TODAY)
    assert got.services == []
    assert got.text == "mad max"


@pytest.mark.parametrize(
    ("query", "language"),
    [("french", "fr"), ("in Korean", "ko"), ("japanese anime", "ja"), ("bollywood", "hi")],
)
def test_languages(query: str, language: str) -> None:
    assert parse_local(query, today=TODAY).language == language


@pytest.mark.parametrize(
    ("query", "content_type"),
    [
        ("movies", "movie"),
        ("a film", "movie"),
        ("series", "series"),
        ("shows", "series"),
        ("tv", "series"),
        ("sitcom", "series"),
        ("miniseries", "series"),
        ("a movie or a show", None),
        ("no series", "movie"),
        ("show me something", None),
    ],
)
def test_content_types(query: str, content_type: str | None) -> None:
    assert parse_local(query, today=TODAY).content_type == content_type


@pytest.mark.parametrize(
    ("query", "genres"),
    [
        ("sci-fi", ["Science Fiction"]),
        ("Sci Fi", ["Science Fiction"]),
        ("science fiction", ["Science Fiction"]),
        ("rom-com", ["Romance", "Comedy"]),
        ("romcoms", ["Romance", "Comedy"]),
        ("cartoons", ["Animation"]),
        ("docs", ["Documentary"]),
        ("thrillers", ["Thriller"]),
        ("musical", ["Music"]),
        ("whodunnits", ["Mystery"]),
        ("comedies", ["Comedy"]),
        ("documentry", ["Documentary"]),
        ("Thriler", ["Thriller"]),
    ],
)
def test_genre_synonyms_plurals_and_typos(query: str, genres: list[str]) -> None:
    assert parse_local(query, today=TODAY).genres == genres


def test_words_inside_a_title_are_not_read() -> None:
    got = parse_local("like The Dark Knight", today=TODAY)
    assert got.like_titles == ["The Dark Knight"]
    assert got.moods == []


def test_negated_similarity_is_dropped_not_inverted() -> None:
    got = parse_local("a thriller, not like Inception", today=TODAY)
    assert got.like_titles == []
    assert got.genres == ["Thriller"]
    assert "Inception" not in got.text


def test_i_would_like_is_not_a_similarity() -> None:
    got = parse_local("I would like a comedy", today=TODAY)
    assert got.like_titles == []
    assert got.genres == ["Comedy"]


def test_excluded_mood_without_genre_is_not_wanted() -> None:
    got = parse_local("a thriller, not too dark", today=TODAY)
    assert got.moods == []
    assert got.genres == ["Thriller"]


@pytest.mark.parametrize(
    "query",
    ["80s sci-fi", "korean thriller series", "like Inception", "cozy", "something like Heat"],
)
def test_text_is_never_empty_when_the_query_describes_content(query: str) -> None:
    assert parse_local(query, today=TODAY).text.strip() != ""


@pytest.mark.parametrize("query", ["", "   ", "on netflix after 2015", "nothing scary"])
def test_text_is_empty_for_pure_filters(query: str) -> None:
    assert parse_local(query, today=TODAY).text == ""


def test_parser_is_deterministic() -> None:
    query = "a mind-bending movie like Inception or Interstellar"
    assert parse_local(query, today=TODAY) == parse_local(query, today=TODAY)


def test_vocabulary_only_produces_valid_values() -> None:
    for phrase, d in DESCRIPTORS.items():
        assert set(d.genres) <= set(TMDB_MOVIE_GENRES), phrase
        assert set(d.moods) <= set(MOODS), phrase
        assert d.language is None or len(d.language) == 2, phrase
    assert set(SERVICE_ALIASES.values()) <= set(SERVICE_IDS)
    assert all(len(code) == 2 and code.islower() for code in LANGUAGES.values())


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ('like "Heat"', ["Heat"]),
        ("like \u201cHeat\u201d or Ronin", ["Heat", "Ronin"]),
        ('like "an unterminated title', ["an unterminated title"]),
        (
            "Similar to Mr. Robot or E.T. the Extra-Terrestrial",
            ["Mr. Robot", "E.T. the Extra-Terrestrial"],
        ),
        ("like No Country for Old Men for tonight", ["No Country for Old Men"]),
        ("Casablanca-like romance", ["Casablanca"]),
        ("like the movie Heat", ["Heat"]),
    ],
)
def test_title_extraction(query: str, titles: list[str]) -> None:
    assert parse_local(query, today=TODAY).like_titles == titles


def test_random_word_salad_always_yields_a_valid_intent(rng: np.random.Generator) -> None:
    extra = (
        "like not no under over 2 hours 90 minutes from the 80s after 2015 rated 8+ above 7 , . "
        '" or and in on similar to 1h30 an hour a half stars 5/10 - + : ! 0 00s 1999 Heat'
    )
    words = [*DESCRIPTORS, *SERVICE_ALIASES, *LANGUAGES, *re.split(r"\s+", extra)]
    for _ in range(300):
        query = " ".join(rng.choice(words, size=int(rng.integers(1, 10))))
        intent = parse_local(query, today=TODAY)
        assert QueryIntent.model_validate(intent.model_dump()) == intent
