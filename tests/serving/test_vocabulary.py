"""The parser vocabulary is data: the shipped file validates, bad files fail naming the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving.nlu.vocabulary import (
    DESCRIPTORS,
    VOCABULARY_FILE,
    Descriptor,
    VocabularyError,
    load_vocabulary,
)


def _write(tmp_path: Path, edit: dict | None = None, text: str | None = None) -> Path:
    raw = yaml.safe_load(VOCABULARY_FILE.read_text(encoding="utf-8"))
    for section, entries in (edit or {}).items():
        raw[section] = {**raw.get(section, {}), **entries} if isinstance(entries, dict) else entries
    path = tmp_path / "vocabulary.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_shipped_vocabulary_loads_with_its_meanings() -> None:
    vocab = load_vocabulary()
    assert len(vocab.genres) > 50 and len(vocab.moods) > 50
    assert DESCRIPTORS["k-drama"] == Descriptor(("Drama",), language="ko", content_type="series")
    assert DESCRIPTORS["mind-bending"] == Descriptor(moods=("weird", "thoughtful"))
    assert DESCRIPTORS["norwegian"] == Descriptor(language="no")  # quoted in YAML, not False


def test_a_round_trip_of_the_shipped_file_is_valid(tmp_path: Path) -> None:
    assert load_vocabulary(_write(tmp_path)) == load_vocabulary()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"genres": {"space western": ["Space Western"]}}, "entry genres.space western"),
        ({"moods": {"grumpy": ["grumpy"]}}, "entry moods.grumpy"),
        ({"languages": {"klingon": "tlh"}}, "entry languages.klingon"),
        ({"languages": {"norwegian": False}}, "entry languages.norwegian"),
        ({"services": {"crunchyroll": "crunchyroll"}}, "entry services.crunchyroll"),
        ({"genres": {"Heist": ["Crime"]}}, "entry genres.Heist"),
        ({"genres": {"western": {"genre": ["Western"]}}}, "entry genres.western"),
        ({"decades": {"twenties": 1925}}, "entry decades.twenties"),
        ({"fuzzy_genre_words": {"noir": "crime"}}, "entry fuzzy_genre_words.noir"),
        ({"fuzzy_genre_words": {"heists": "heist"}}, "entry fuzzy_genre_words.heists"),
        ({"moods": {"thriller": ["tense"]}}, "'thriller' is in both 'genres' and 'moods'"),
        ({"filler": None}, "entry filler"),
        ({"surprise": {"a": 1}}, "entry surprise"),
    ],
)
def test_invalid_entries_name_the_file_and_the_entry(
    tmp_path: Path, edit: dict, message: str
) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(VocabularyError) as err:
        load_vocabulary(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_a_phrase_given_twice_in_one_section_is_an_error_with_its_line(tmp_path: Path) -> None:
    text = VOCABULARY_FILE.read_text(encoding="utf-8").replace(
        "  thriller: [Thriller]\n", "  thriller: [Thriller]\n  thriller: [Horror]\n"
    )
    path = _write(tmp_path, text=text)
    with pytest.raises(VocabularyError, match=r"(?s)duplicate key 'thriller'.*line \d+"):
        load_vocabulary(path)


def test_a_file_that_is_not_yaml_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, text="genres: [unclosed\n")
    with pytest.raises(VocabularyError, match="not valid YAML"):
        load_vocabulary(path)
