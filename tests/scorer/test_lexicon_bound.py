"""VADER's worst case is bounded (issue 14 §2): texts are scored in windows of at most
``WINDOW_WORDS`` words, walls of emoji trimmed; every text that needs no split gets
VADER's own score, to the last digit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer.lexicon import (
    MAX_EMOJI,
    MAX_EMOJI_RUN,
    WINDOW_WORDS,
    VaderScorer,
    label_for,
    lexicon_windows,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def shared_texts() -> list[str]:
    """Every text of the shared labelled data sets (TweetEval, SemEval, VADER's own)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    texts = (SHARED / "tweeteval" / "test_text.txt").read_text(encoding="utf-8").splitlines()
    with (SHARED / "semeval" / "train_2013_2016.tsv").open(encoding="utf-8") as f:
        texts += [row[-1] for row in csv.reader(f, delimiter="\t") if row]
    for path in sorted((SHARED / "vader").glob("*.tsv")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            texts.append(line.split("\t")[-1])
    return texts


@pytest.fixture(scope="module")
def scorer() -> VaderScorer:
    return VaderScorer()


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def weight(text: str, scorer: VaderScorer) -> int:
    emoji = scorer._emoji_words
    return sum(max(1, sum(emoji.get(ch, 0) for ch in token)) for token in text.split())


def test_a_text_that_needs_no_split_gets_vaders_own_score(
    scorer: VaderScorer, vader: SentimentIntensityAnalyzer
) -> None:
    texts = shared_texts()
    assert len(texts) > 30_000
    whole = split = 0
    for text in texts:
        if lexicon_windows(text, scorer._emoji_words) == [text]:
            whole += 1
            assert scorer.compound(text) == vader.polarity_scores(text)["compound"], text
        else:
            split += 1
    # Nearly every real text is scored whole: the bound only bites on long or odd ones.
    assert split / len(texts) < 0.01, (split, whole)


@pytest.mark.parametrize(
    "text",
    [
        "😀" * 2000,
        "😀😃" * 1000,
        "😀 😃 " * 500,
        "good but bad but " * 120,
        "GREAT " * 300,
        "love 😍 hate 😡 " * 120,
        "not " * 500 + "good",
    ],
)
def test_hostile_shapes_reach_vader_only_in_bounded_windows(text: str, scorer: VaderScorer) -> None:
    windows = lexicon_windows(text, scorer._emoji_words)
    assert len(windows) > 1 or windows[0] != text
    for w in windows:
        assert weight(w, scorer) <= WINDOW_WORDS, w[:80]
    emoji = [ch for w in windows for ch in w if ch in scorer._emoji_words]
    assert len(emoji) <= MAX_EMOJI
    assert -1.0 <= scorer.compound(text) <= 1.0


def test_runs_of_one_emoji_count_at_most_the_run_limit(scorer: VaderScorer) -> None:
    (kept,) = lexicon_windows("so happy " + "😀" * 50, scorer._emoji_words)
    assert kept.count("😀") == MAX_EMOJI_RUN


def test_long_texts_keep_vaders_label(
    scorer: VaderScorer, vader: SentimentIntensityAnalyzer
) -> None:
    # Three tweets in one text (an RSS item, a Reddit post): split in windows, the label
    # is still VADER's for nearly all of them.
    tweets = shared_texts()[:6000]
    longs = [" ".join(tweets[i : i + 3]) for i in range(0, len(tweets), 3)]
    same = sum(
        label_for(scorer.compound(t)) == label_for(vader.polarity_scores(t)["compound"])
        for t in longs
    )
    assert same / len(longs) >= 0.98
