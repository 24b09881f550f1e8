"""The lexicon's worst case is bounded (issue 14 §2) without leaving VADER's scores:
hostile texts of words get vaderSentiment's own score (FastVader is linear), and only
emoji past the first ``MAX_EMOJI`` of a text are dropped before scoring."""

from __future__ import annotations

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.lexicon import MAX_EMOJI, VaderScorer, trim_emoji
from services.scorer.mask import cap_text
from services.scorer.vader import FastVader

MAX_CHARS = 2_000  # ScorerSettings.max_score_chars default


@pytest.fixture(scope="module")
def scorer() -> VaderScorer:
    return VaderScorer()


@pytest.fixture(scope="module")
def emoji() -> frozenset[str]:
    return FastVader().emoji_chars


@pytest.mark.parametrize(
    "text",
    [
        "good but bad but " * 120,
        "GREAT " * 300 + "meh",
        "not " * 500 + "good",
        "no " * 300 + "good nor bad",
        "very " * 400 + "good!!!!????",
        "the shit kind of sort of bad ass " * 50,
        "good great good nice good great " * 60,
        "love 😍 hate 😡 " * 3,
    ],
)
def test_hostile_texts_of_words_get_vadersentiments_own_score(
    text: str, scorer: VaderScorer
) -> None:
    capped = cap_text(text, MAX_CHARS)
    assert (
        scorer.compound(capped) == SentimentIntensityAnalyzer().polarity_scores(capped)["compound"]
    )


def test_three_tweets_in_one_text_get_vadersentiments_own_score(scorer: VaderScorer) -> None:
    # Formerly scored in windows (an approximation); now whole, exactly.
    ref = SentimentIntensityAnalyzer()
    tweets = [
        "Loving the new phone, the camera is great!",
        "But the battery is NOT good, not good at all :(",
        "kind of the bomb though, yeah right 😂😂",
    ] * 20
    longs = [" ".join(tweets[i : i + 3]) for i in range(0, len(tweets), 2)]
    assert [scorer.compound(t) for t in longs] == [
        ref.polarity_scores(t)["compound"] for t in longs
    ]


def test_a_text_within_the_emoji_limit_is_scored_unchanged(emoji: frozenset[str]) -> None:
    text = "so happy " + "😀" * (MAX_EMOJI // 2) + " and 😍 ©" * (MAX_EMOJI // 4)
    assert trim_emoji(text, emoji) is text
    assert trim_emoji("plain ascii", emoji) == "plain ascii"
    # Non-ASCII that is not emoji is never dropped.
    accents = "é ’ " * 500 + "😀" * MAX_EMOJI
    assert trim_emoji(accents, emoji) is accents


def test_a_run_of_one_emoji_keeps_the_first_ones(emoji: frozenset[str]) -> None:
    assert trim_emoji("so happy " + "😀 " * 60, emoji) == "so happy " + "😀 " * MAX_EMOJI + " " * 20
    assert trim_emoji("©" * 50 + " ok", emoji) == "©" * MAX_EMOJI + " ok"


def test_a_text_counts_at_most_the_emoji_limit_and_keeps_its_words(
    emoji: frozenset[str],
) -> None:
    text = "love 😍 hate 😡 " * 100
    trimmed = trim_emoji(text, emoji)
    assert sum(ch in emoji for ch in trimmed) == MAX_EMOJI
    assert trimmed.split().count("love") == 100 and trimmed.split().count("hate") == 100
    # The kept emoji are the first ones.
    assert trimmed.startswith("love 😍 hate 😡 " * (MAX_EMOJI // 2))


@pytest.mark.parametrize(
    "text", ["😀" * 2000, "😀😃" * 1000, "😀 😃 " * 500, "love 😍 hate 😡 " * 120]
)
def test_walls_of_emoji_are_scored_after_trimming(
    text: str, scorer: VaderScorer, emoji: frozenset[str]
) -> None:
    trimmed = trim_emoji(text, emoji)
    assert sum(ch in emoji for ch in trimmed) <= MAX_EMOJI
    expected = SentimentIntensityAnalyzer().polarity_scores(trimmed)["compound"]
    assert scorer.compound(text) == expected


def test_a_wall_of_every_kind_of_emoji_keeps_the_first_ones_and_the_words(
    emoji: frozenset[str],
) -> None:
    kinds = sorted(emoji)
    text = "good " + " ok ".join(kinds[:300])
    trimmed = trim_emoji(text, emoji)
    assert trimmed == "good " + " ok ".join(kinds[:MAX_EMOJI]) + " ok " * (300 - MAX_EMOJI)


def test_kinds_first_seen_past_the_limit_are_dropped_too(emoji: frozenset[str]) -> None:
    text = "😀" * MAX_EMOJI + " a 😀 b 😍 c ’ é"
    assert trim_emoji(text, emoji) == "😀" * MAX_EMOJI + " a  b  c ’ é"
