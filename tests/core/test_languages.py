"""Language codes: what a source's tag and an API filter are read as."""

from __future__ import annotations

import pytest

from services.core.languages import (
    LANGUAGE_CODES,
    is_scorable,
    language_of_tag,
    parse_language_code,
)


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("ES", "es"),
        ("pt-BR", "pt"),
        ("in", "id"),  # withdrawn codes X still sends
        ("iw", "he"),
        ("und", None),  # undetermined: no language
        ("zxx", None),
        ("fil", None),  # ISO 639-3 only
        ("", None),
        (None, None),
    ],
)
def test_a_source_tag_is_read_as_its_iso_639_1_language(
    tag: str | None, language: str | None
) -> None:
    assert language_of_tag(tag) == language


def test_a_filter_code_is_normalised_or_refused_naming_the_problem() -> None:
    assert parse_language_code("ES") == "es"
    assert parse_language_code(" de ") == "de"
    for bad in ("xx", "english", "e", "es-ES", "", "12"):
        with pytest.raises(ValueError, match="unknown language code"):
            parse_language_code(bad)


def test_only_english_and_the_undetermined_are_scored() -> None:
    assert is_scorable("en") and is_scorable(None)
    assert not any(is_scorable(c) for c in LANGUAGE_CODES - {"en"})
