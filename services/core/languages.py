"""Languages: the ISO 639-1 codes a mention's language is stored and filtered by, and which
of them the scorer can read.

A source's tag (``lang``, BCP 47) is reduced to its primary language subtag by
``language_of_tag``; a tag whose primary subtag is no ISO 639-1 code (``und``, ``zxx``,
``qme``, a three-letter code) carries no usable language.
"""

from __future__ import annotations

# ISO 639-1: the two-letter codes (``bh`` included, withdrawn ones below).
LANGUAGE_CODES: frozenset[str] = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi
    ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks
    ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl
    nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl
    sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
    vi vo wa wo xh yi yo za zh zu
    """.split()  # noqa: SIM905 (a literal of 184 strings reads worse)
)
# Withdrawn codes some platforms still send (X: ``in`` for Indonesian, ``iw`` for Hebrew).
_WITHDRAWN = {"in": "id", "iw": "he", "ji": "yi"}

# The languages the scorer reads: VADER's lexicon and the shipped transformer are English.
SCORABLE_LANGUAGES: frozenset[str] = frozenset({"en"})


def language_of_tag(tag: str | None) -> str | None:
    """The ISO 639-1 code of a BCP 47 tag's primary subtag (``en-GB`` → ``en``), or
    ``None`` when the tag names no ISO 639-1 language."""
    if not tag:
        return None
    primary = tag.split("-", 1)[0].lower()
    primary = _WITHDRAWN.get(primary, primary)
    return primary if primary in LANGUAGE_CODES else None


def parse_language_code(value: str) -> str:
    """``value`` as a stored language code (lower case); raises ``ValueError`` naming the
    problem when it is not an ISO 639-1 code."""
    code = value.strip().lower()
    if code not in LANGUAGE_CODES:
        raise ValueError(
            f"unknown language code {value!r}: give a two-letter ISO 639-1 code such as en, es, de"
        )
    return code


def is_scorable(language: str | None) -> bool:
    """Whether the scorer reads ``language``; an unknown language (``None``) is read as
    English, as every mention was before languages were detected."""
    return language is None or language in SCORABLE_LANGUAGES
