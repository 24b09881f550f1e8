"""``FastVader`` gives vaderSentiment's scores to the last digit (issue 18): on every text
of the shared data sets and on generated texts built from the shapes VADER's rules react
to. The reference is always vaderSentiment itself, run here; no expected score is stored.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vaderSentiment import vaderSentiment as reference
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.scorer import vader
from services.scorer.lexicon import VaderScorer, trim_emoji
from services.scorer.vader import FastVader

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
# For the generated examples (a fixture cannot serve ``@given`` tests).
FAST = FastVader()
REF = SentimentIntensityAnalyzer()


def lines_of(path: Path) -> list[str]:
    """The file's lines, split on line feeds only (a text may hold other line breaks)."""
    text = path.read_bytes().decode("utf-8")
    return [line.removesuffix("\r") for line in text.split("\n") if line]


def shared_texts() -> list[str]:
    """Every text field of the shared labelled data sets: TweetEval (test, val), SemEval
    2013-2016, VADER's four ground-truth sets, and the target-dependent set (each tweet
    as stored, with ``$T$``, and with its target put back)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    texts: list[str] = []
    for name in ("test_text.txt", "val_text.txt"):
        texts += lines_of(SHARED / "tweeteval" / name)
    texts += [
        line.split("\t", 1)[1] for line in lines_of(SHARED / "semeval" / "train_2013_2016.tsv")
    ]
    for path in sorted((SHARED / "vader").glob("*.tsv")):
        rows = lines_of(path)
        assert rows[0] == "id\tmean_rating\ttext"
        texts += [row.split("\t", 2)[2] for row in rows[1:]]
    for path in sorted((SHARED / "target_dependent").glob("*.raw")):
        lines = lines_of(path)
        for k in range(0, len(lines) - 2, 3):
            texts += [lines[k], lines[k].replace("$T$", lines[k + 1])]
    return texts


@pytest.fixture(scope="module")
def fast() -> FastVader:
    return FastVader()


@pytest.fixture(scope="module")
def ref() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def test_every_shared_text_scores_as_vadersentiment_scores_it(
    fast: FastVader, ref: SentimentIntensityAnalyzer
) -> None:
    texts = shared_texts()
    assert len(texts) > 100_000
    scorer = VaderScorer()
    differ = []
    for text in texts:
        expected = ref.polarity_scores(text)
        if fast.polarity_scores(text) != expected or scorer.compound(text) != expected["compound"]:
            differ.append(text)
        # The scorer's emoji limits never bite on real text: it is exact here too.
        assert trim_emoji(text, fast.emoji_chars) is text
    assert differ == []


def test_the_rules_constants_and_lexicons_are_vadersentiments(
    fast: FastVader, ref: SentimentIntensityAnalyzer
) -> None:
    assert frozenset(reference.NEGATE) == vader.NEGATE
    assert vader.BOOSTER_DICT == reference.BOOSTER_DICT
    assert vader.SPECIAL_CASES == reference.SPECIAL_CASES
    consts = ("B_INCR", "B_DECR", "C_INCR", "N_SCALAR")
    assert [getattr(vader, c) for c in consts] == [getattr(reference, c) for c in consts]
    assert fast.lexicon == ref.lexicon
    assert fast.emojis == ref.emojis


def test_lower_casing_is_what_the_fast_path_assumes() -> None:
    # FastVader lower-cases a whole text, then strips each word, instead of stripping
    # then lower-casing each word. That is the same where lower-casing is one character
    # to one, never makes whitespace or punctuation, and never unmakes them: true of
    # every code point but the two sent to the per-word path.
    punctuation = set(string.punctuation)
    odd = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        low = ch.lower()
        if (
            len(low) != 1
            or low.isspace() != ch.isspace()
            or (low in punctuation) != (ch in punctuation)
        ):
            odd.append(ch)
    assert odd == ["\u0130"]
    assert vader._CONTEXTUAL_LOWER.pattern == "[\u0130\u03a3]"


# Words and pieces VADER's rules react to, for generated texts.
RULE_WORDS = [
    "good", "bad", "great", "love", "hate", "no", "not", "isn't", "dont", "never", "nor",
    "or", "without", "doubt", "so", "this", "least", "at", "very", "kind", "of", "kinda",
    "sort", "just", "enough", "but", "BUT", "But", "the", "shit", "bomb", "bad", "ass",
    "badass", "bus", "stop", "yeah", "right", "kiss", "death", "to", "die", "for",
    "beating", "heart", "cut", "mustard", "extremely", "barely", "VERY", "GOOD", "BAD",
    "Not", "NO", "lol", "LOL", "sux", "funny", "smart", "rarely", "despite", "uh-uh",
    "ain't", "can't", "doesn't", "won't", "kiss", "friggin", "FRIGGIN", "uber", "fucking",
]  # fmt: skip
PIECES = [
    "!", "?", "!!", "??", "???", "!!!!!", "?!", ":)", ":(", ":-)", ":D", "<3", "</3",
    "(:", "...", "'", '"', "good!", "'bad'", "..good..", "(great)", "#love", "@user",
    "no.", "but,", "BUT!", "n't", "a", "I", "A", "OK", "ok",
    "😀", "😍", "😡", "😥", "🙅", "⛔", "🚭", "💙", "🏃", "👍", "😂", "💔", "🙏", "🔛", "🆙",
    "😀good", "good😀", "😀😀", "😥😥", "İyi", "İSTANBUL", "ΟΔΟΣ", "ΣΟΣ", "Σ", "ϒ",
    "ǅ", "ﬁne", "é", "É", "ß", "ẞ", "K", "\u0301", "\u200b", "’", "GOOD’S",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "  ", "", "\n", "\t", "\u00a0", "\u2028", "\x1c", "\u3000"]
# A few lexicon words of every sign and strength, in several cases.
SAMPLE_LEXICON = sorted(SentimentIntensityAnalyzer().lexicon)[::97]

token = st.one_of(
    st.sampled_from(RULE_WORDS),
    st.sampled_from(PIECES),
    st.sampled_from(SAMPLE_LEXICON),
    st.sampled_from(SAMPLE_LEXICON).map(str.upper),
    st.sampled_from(RULE_WORDS).map(str.upper),
)
crafted = st.lists(st.tuples(token, st.sampled_from(SEPARATORS)), max_size=40).map(
    lambda parts: "".join(t + s for t, s in parts)
)

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(text=crafted)
def test_crafted_texts_score_as_vadersentiment_scores_them(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)
    assert FAST.compound(text) == REF.polarity_scores(text)["compound"]


# Long enough for the per-surrounding memo of long texts (``vader._MEMO_WORDS``), and
# repetitive, as hostile texts are: the words again, some in other capitals.
@st.composite
def long_crafted(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.tuples(st.sampled_from(RULE_WORDS + PIECES[:30]), st.sampled_from(SEPARATORS)),
            min_size=vader._MEMO_WORDS + 1,
            max_size=100,
        )
    )
    flips = draw(st.lists(st.booleans(), min_size=len(parts), max_size=len(parts)))
    again = [(t.swapcase() if f else t, s) for (t, s), f in zip(parts, flips, strict=True)]
    return "".join(t + s for t, s in parts + again)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=long_crafted())
def test_long_crafted_texts_score_as_vadersentiment_scores_them(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@EXAMPLES
@given(values=st.lists(st.sampled_from(["good", "bad", "great", "GOOD", "but", "ok"]), max_size=30))
def test_the_but_rules_index_quirk_is_replayed(values: list[str]) -> None:
    # Repeated values are where the reference's ``list.index`` picks an earlier element.
    text = " ".join(values)
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@EXAMPLES
@given(text=st.text(max_size=200))
def test_any_text_scores_as_vadersentiment_scores_it(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        "Today only kinda sux! But I'll get by, lol",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "At least it isn't a horrible book.",
        "Without a doubt, an excellent idea.",
        "Sentiment analysis has never been this good!",
        "the movie was kind of the bomb yeah right",
        "no no no good, not good nor bad or no bad",
        "good good but good bad bad good",
        "GREAT great GREAT but BAD",
        "😥 but 😀 NO 🙅 🔛!",
        "İYİ good ΟΔΟΣ bad",
    ],
)
def test_known_shapes_score_as_vadersentiment_scores_them(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)
