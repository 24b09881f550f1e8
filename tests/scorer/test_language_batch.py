"""A chunk's languages in one batch (issue 18): ``detect_many`` answers as ``detect`` does
text by text and leaves the same texts remembered, in the same order, even when the cache
fills in the middle of a batch; and ``detection_text``, rewritten to skip the link regex
when a text holds no link, reads every text as it did."""

from __future__ import annotations

import html
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.models import Mention
from services.scorer import language
from services.scorer.language import (
    LanguageDetector,
    detection_text,
    mention_language,
    mention_languages,
)
from services.scorer.steps.lexicon import Chunk, ScoringConfig, score_chunk
from tests.fixtures.mentions import mention_doc
from tests.scorer.steps.chunks import MATCHER, NOW
from tests.scorer.test_vader_exact import shared_texts

DETECTOR = LanguageDetector.load()

MENTIONS = [
    "@acme El servicio al cliente de esta empresa es terrible",
    "@globex El servicio al cliente de esta empresa es terrible",  # the same, read
    "@acme The support team answered within minutes today",
    "@acme ok",  # too few letters
    "Der Kundendienst hat sofort geholfen, großartig #acme",
    "Дуже погане обслуговування, ніхто не відповідає @acme",
    "@acme The support team answered within minutes today",  # a repost
    "",
    "😂😂😂 https://t.co/abc",
    "Le service client ne répond jamais, quelle honte &amp; quel mépris",
    "x" * 5_000,
]


def fresh() -> LanguageDetector:
    """A detector with an empty cache (the model loaded once for the module)."""
    return LanguageDetector(DETECTOR.identifier)


def one_by_one(texts: list[str]) -> tuple[list[str | None], list[str]]:
    detector = fresh()
    return [detector.detect(t) for t in texts], list(detector._cache)


def test_a_batch_gets_the_answers_and_the_cache_of_one_by_one() -> None:
    detector = fresh()
    expected, remembered = one_by_one(MENTIONS)
    assert detector.detect_many(MENTIONS) == expected
    assert list(detector._cache) == remembered
    # A second batch: answered from the cache, as one by one would.
    assert detector.detect_many(MENTIONS[::-1]) == expected[::-1]
    assert list(detector._cache) == remembered


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_a_cache_filling_in_the_middle_of_a_batch_forgets_as_one_by_one(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(language, "DETECTION_CACHE_SIZE", size)
    detector = fresh()
    # Remembered when the second batch begins, forgotten before they come back in it.
    detector.detect_many(MENTIONS[:3])
    texts = MENTIONS[3:] + MENTIONS[:3]
    reference = fresh()
    for t in MENTIONS[:3]:
        reference.detect(t)
    expected = [reference.detect(t) for t in texts]
    assert detector.detect_many(texts) == expected
    assert list(detector._cache) == list(reference._cache)


def test_every_shared_text_in_chunks_gets_the_answer_it_gets_alone() -> None:
    texts = shared_texts()[::7]
    expected, _ = one_by_one(texts)
    detector = fresh()
    got = [
        a
        for start in range(0, len(texts), 250)
        for a in detector.detect_many(texts[start : start + 250])
    ]
    assert got == expected


def test_mention_languages_trust_tags_and_detect_the_rest_in_one_batch() -> None:
    mentions = [
        ("en-US", MENTIONS[0]),
        (None, MENTIONS[0]),
        ("und", MENTIONS[4]),
        ("fr", MENTIONS[2]),
        (None, MENTIONS[3]),
    ]
    expected = [mention_language(tag, text, fresh()) for tag, text in mentions]
    assert expected == ["en", "es", "de", "fr", None]
    assert mention_languages(mentions, fresh()) == expected
    assert mention_languages(mentions, None) == [mention_language(t, x, None) for t, x in mentions]
    assert mention_languages([], fresh()) == []


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")


def detection_text_as_it_was(text: str) -> str:
    text = html.unescape(text)
    text = _URL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    return " ".join(text.replace("#", " ").split())


def test_every_shared_text_is_read_as_it_was() -> None:
    assert [t for t in shared_texts() if detection_text(t) != detection_text_as_it_was(t)] == []


PIECES = st.sampled_from(
    [
        "@",
        "@@",
        "a@b",
        "_",
        "#",
        " ",
        "http",
        "HTTPS",
        "httpſ",
        "://",
        ":/",
        "www.",
        "WwW.",
        "ww.",
        "w",
        ".",
        "&amp;",
        "&#64;",
        "é",
        "😂",
        "\u00a0",
        "\t",
        "x",
        "1",
    ]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=30))
def test_generated_texts_are_read_as_they_were(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert detection_text(text) == detection_text_as_it_was(text)


def test_a_chunk_is_scored_with_each_mentions_language_as_found_one_by_one() -> None:
    tweets = shared_texts()[:600]
    tags = [None, None, "es", "und", "en-GB"]
    docs = [
        # Every third names no brand (dropped before its language is looked for).
        mention_doc(id=f"m{i}", text=(t if i % 3 == 2 else f"Acme: {t}"), lang=tags[i % 5])
        for i, t in enumerate(tweets)
    ]
    raws = [orjson.dumps(d) for d in docs]
    chunk = Chunk.of([(Mention.model_validate_json(r), r) for r in raws], NOW)
    result = score_chunk(
        chunk.items,
        matcher=MATCHER,
        compound=lambda text: 0.0,
        config=ScoringConfig(),
        now=NOW,
        detector=fresh(),
    )
    one = fresh()
    expected = [
        (i, mention_language(item.lang, item.text, one))
        for i, item in enumerate(chunk.items)
        if MATCHER.match(item.text).brands
    ]
    assert [(r.position, r.language) for r in result.results] == expected
    assert {language for _, language in expected} >= {"en", "es", None}
