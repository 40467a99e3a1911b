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


def normalize_title(s: str | None) -> str:
    """Comparable form of a title: ``"The Lord of the Rings: Return & Co."`` -> ``"lord of the rings
    return and co"``.

    Steps: strip accents (NFKD, combining marks removed; non-Latin scripts are kept), casefold,
    ``&`` -> ``and``, apostrophes removed (``don't`` -> ``dont``), every other run of punctuation or
    whitespace -> one space, a leading English article (the/a/an) dropped, also in the library form
    ``"Usual Suspects, The"``. A title that is only an article keeps it. ``None`` -> ``""``.
    """
    if not s:
        return ""
    text = s.strip()
    flipped = _TRAILING_ARTICLE.match(text)
    if flipped:
        text = f"{flipped['article']} {flipped['body']}"
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    text = _NON_WORD.sub(" ", text).strip()
    return _LEADING_ARTICLE.sub("", text)
