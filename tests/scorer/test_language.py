"""Language detection: English stays English (else it would go unscored), clear sentences
in other languages are recognised, and a source's tag is trusted."""

from __future__ import annotations

import pytest

from services.scorer.language import LanguageDetector, detection_text, mention_language

DETECTOR = LanguageDetector.load()

# TweetEval-style English tweets, slang, handles and links included.
ENGLISH = [
    "@user I love this phone so much, best purchase ever lol",
    "Can't believe the game last night!! #NBA https://t.co/abc123",
    "@user @user nah bro that's not how it works smh",
    "Just landed in Chicago, the weather is awful today",
    "ok",
    "Kim Jong Un?",
    "Their customer service is the worst, waited two hours on hold",
]


@pytest.mark.parametrize("text", ENGLISH)
def test_english_tweets_are_never_taken_for_another_language(text: str) -> None:
    assert DETECTOR.detect(text) in ("en", None)


def test_plain_english_is_detected_as_english() -> None:
    assert DETECTOR.detect("The new dashboard is great and the support team was helpful") == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("El servicio al cliente de esta empresa es terrible, nunca más compro aquí", "es"),
        ("Ich finde das neue Update wirklich schlecht, alles ist langsamer geworden", "de"),
        ("Le service client est vraiment nul, j'attends une réponse depuis trois jours", "fr"),
        ("Il nuovo aggiornamento è fantastico, finalmente funziona tutto bene", "it"),
        ("O atendimento foi péssimo e ninguém respondeu às minhas mensagens", "pt"),
    ],
)
def test_clear_sentences_in_other_languages_are_recognised(text: str, language: str) -> None:
    assert DETECTOR.detect(f"@acmehq {text} https://t.co/x1") == language


def test_text_without_letters_has_no_language() -> None:
    assert DETECTOR.detect("@user 😂😂😂 https://t.co/abc 12:00") is None
    assert DETECTOR.detect("ok") is None  # too short to tell
    assert DETECTOR.guess("") == (None, 0.0)


def test_the_detector_reads_the_words_not_handles_links_or_entities() -> None:
    text = "@acme_es RT &amp; #Ofertas hoy https://acme.example/es?x=1 www.acme.es"
    assert detection_text(text) == "RT & Ofertas hoy"


def test_a_source_tag_is_trusted_and_detection_fills_in_without_one() -> None:
    spanish = "El servicio al cliente de esta empresa es terrible"
    assert mention_language("en-US", spanish, DETECTOR) == "en"  # the platform said so
    assert mention_language(None, spanish, DETECTOR) == "es"
    assert mention_language("und", spanish, DETECTOR) == "es"  # "undetermined" says nothing
    assert mention_language(None, spanish, None) is None  # no detector: undetermined


def test_a_threshold_outside_the_unit_interval_is_refused() -> None:
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="max_scorable_probability"):
            LanguageDetector.load(bad)
