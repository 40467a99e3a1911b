"""Title normalisation and resolution of watch events to catalogue ``title_id`` values.

:func:`normalize_title` is the one normalisation used everywhere titles are compared (importers,
catalogue de-duplication, search). :class:`TitleResolver` is filled in below.
"""

from __future__ import annotations

import re
import unicodedata

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
