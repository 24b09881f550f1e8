"""VADER's polarity scores, exactly, in time linear in the text's length.

A reimplementation of vaderSentiment 3.3.2's ``SentimentIntensityAnalyzer.polarity_scores``
(Hutto & Gilbert, ICWSM 2014) that returns the same four numbers to the last digit, its
quirks included, with the same lexicon files (read from the installed vaderSentiment
package, which ships them). ``tests/scorer/test_vader_exact.py`` proves the equality on
every text of the shared data sets and on generated hostile shapes, with vaderSentiment
as the reference.

What changes is only the cost. The reference rebuilds the lower-cased word list once or
more per sentiment word (``_negation_check``, ``_special_idioms_check``, ``_but_check``)
and its "but" rule calls ``list.index`` per value: O(words x sentiment words). Here the
text is lower-cased and split once, sentiment words are found with C-level passes
(``map``/``compress``), every rule looks only at a word's fixed neighbourhood, and the
"but" rule's ``list.index`` quirk is replayed with a heap per value: O(n log n) at worst,
linear in practice.

Why the replay of the "but" rule is exact: the reference iterates over ``sentiments``
while replacing, for each value ``v``, the *first* element equal to ``v`` (which may be an
earlier, already-scaled element) by ``v`` times 0.5 or 1.5 by that element's side of the
first "but". Only positions up to the current one are ever replaced, so the current
element is still its original value when it is reached; zeros stay zero and never equal
a non-zero value, so only non-zero values take part.
"""

from __future__ import annotations

import math
import re
import string
from heapq import heappop, heappush
from importlib.resources import files
from itertools import compress
from operator import getitem

# The reference's constants (vaderSentiment 3.3.2), copied so that vaderSentiment is only
# the test's reference; the tests check them against it.
B_INCR = 0.293
B_DECR = -0.293
C_INCR = 0.733
N_SCALAR = -0.74

NEGATE = frozenset(
    [
        "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
        "ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
        "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
        "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
        "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
        "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
        "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
        "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
    ]
)  # fmt: skip

BOOSTER_DICT: dict[str, float] = {
    **dict.fromkeys(
        [
            "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably",
            "decidedly", "deeply", "effing", "enormous", "enormously", "entirely", "especially",
            "exceptional", "exceptionally", "extreme", "extremely", "fabulously", "flipping",
            "flippin", "frackin", "fracking", "fricking", "frickin", "frigging", "friggin",
            "fully", "fuckin", "fucking", "fuggin", "fugging", "greatly", "hella", "highly",
            "hugely", "incredible", "incredibly", "intensely", "major", "majorly", "more",
            "most", "particularly", "purely", "quite", "really", "remarkably", "so",
            "substantially", "thoroughly", "total", "totally", "tremendous", "tremendously",
            "uber", "unbelievably", "unusually", "utter", "utterly", "very",
        ],
        B_INCR,
    ),
    **dict.fromkeys(
        [
            "almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof",
            "kind-of", "less", "little", "marginal", "marginally", "occasional",
            "occasionally", "partly", "scarce", "scarcely", "slight", "slightly", "somewhat",
            "sort of", "sorta", "sortof", "sort-of",
        ],
        B_DECR,
    ),
}  # fmt: skip

SPECIAL_CASES: dict[str, float] = {
    "the shit": 3, "the bomb": 3, "bad ass": 1.5, "badass": 1.5, "bus stop": 0.0,
    "yeah right": -2, "kiss of death": -1.5, "to die for": 3, "beating heart": 3.5,
}  # fmt: skip

_PUNCTUATION = string.punctuation
# Lower-casing that is not one character to one character, context-free: U+0130 becomes
# two characters (which changes the reference's length test on stripped words) and
# U+03A3 depends on its neighbours. Texts with either take the per-word path.
_CONTEXTUAL_LOWER = re.compile("[\u0130\u03a3]")
# The last words of multi-word phrases: a phrase is looked up only when its last word is one.
_IDIOM_LAST = frozenset(k.split()[-1] for k in SPECIAL_CASES if " " in k)
_BOOSTER_LAST = frozenset(k.split()[-1] for k in BOOSTER_DICT if " " in k)
_SO_THIS = ("so", "this")
# Every word that, before or as a sentiment word, can trigger a rule other than capitals
# (besides any word containing "n't", a negation).
_NEIGHBOURS = (
    NEGATE
    | BOOSTER_DICT.keys()
    | {w for k in (*SPECIAL_CASES, *BOOSTER_DICT) for w in k.split()}
    | {"no", "never", "without", "doubt", "so", "this", "least", "or", "nor", "at", "very"}
    | {"kind", "of"}
)
# Texts longer than this many words score each surrounding of a word once (``_valences``).
_MEMO_WORDS = 48
# More kinds of emoji in a text than this: ``str.translate`` (one pass) instead of one
# ``str.replace`` per kind.
_REPLACE_MAX = 8
_OR_NOR = ("or", "nor")

# The stripped form of a lower-cased token: the reference strips punctuation from both
# ends unless that leaves two characters or fewer (an emoticon such as ":)"). Tokens
# repeat a lot, so their stripped forms are remembered, up to a bound.
_STRIP_MEMO_MAX = 50_000


class _StripMemo(dict[str, str]):
    def __missing__(self, token: str) -> str:
        stripped = token.strip(_PUNCTUATION)
        if len(stripped) <= 2:
            stripped = token
        if len(self) >= _STRIP_MEMO_MAX:
            self.clear()
        self[token] = stripped
        return stripped


def _read_package_file(name: str) -> str:
    # As the reference reads them: binary, UTF-8, no newline translation.
    return files("vaderSentiment").joinpath(name).read_bytes().decode("utf-8")


def _lexicon(text: str) -> dict[str, float]:
    lex: dict[str, float] = {}
    for line in text.rstrip("\n").split("\n"):
        if not line:
            continue
        word, measure = line.strip().split("\t")[0:2]
        lex[word] = float(measure)
    return lex


def _emojis(text: str) -> dict[str, str]:
    emojis: dict[str, str] = {}
    for line in text.rstrip("\n").split("\n"):
        emoji, description = line.strip().split("\t")[0:2]
        emojis[emoji] = description
    return emojis


def _negated(word: str) -> bool:
    return word in NEGATE or "n't" in word


def _normalize(score: float, alpha: float = 15) -> float:
    norm_score = score / math.sqrt((score * score) + alpha)
    if norm_score < -1.0:
        return -1.0
    if norm_score > 1.0:
        return 1.0
    return norm_score


def _punctuation_emphasis(text: str) -> float:
    ep_count = text.count("!")
    if ep_count > 4:
        ep_count = 4
    ep_amplifier = ep_count * 0.292
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_amplifier + qm_amplifier


def _scalar(word: str, upper: bool, valence: float) -> float:
    """The reference's ``scalar_inc_dec`` for a booster ``word`` (``upper``: in capitals
    while other words are not)."""
    scalar = BOOSTER_DICT[word]
    if valence < 0:
        scalar *= -1
    if upper:
        if valence > 0:
            scalar += C_INCR
        else:
            scalar -= C_INCR
    return scalar


def _but_check(positions: list[int], values: list[float], bi: int) -> None:
    """Replay the reference's "but" rule, ``list.index`` quirk included, on the non-zero
    values (in text order, at ``positions``), in place."""
    first: dict[float, list[int]] = {}  # value -> heap of the indices holding it now
    for k, v in enumerate(values):
        heap = first.get(v)
        if heap is None:
            first[v] = heap = [k]
        else:
            heappush(heap, k)
        j = heap[0]
        p = positions[j]
        if p < bi:
            scaled = v * 0.5
        elif p > bi:
            scaled = v * 1.5
        else:
            continue
        heappop(heap)
        values[j] = scaled
        other = first.get(scaled)
        if other is None:
            first[scaled] = [j]
        else:
            heappush(other, j)


class FastVader:
    """``polarity_scores`` and ``compound`` equal to vaderSentiment's for every ``str``."""

    def __init__(self) -> None:
        self.lexicon = _lexicon(_read_package_file("vader_lexicon.txt"))
        self.emojis = _emojis(_read_package_file("emoji_utf8_lexicon.txt"))
        # The reference replaces emoji one character at a time, so only one-character
        # keys can ever match. A leading space where the reference adds none (after a
        # space or at the start) changes neither the words nor the punctuation counts.
        self._emoji_table = {ord(e): " " + d for e, d in self.emojis.items() if len(e) == 1}
        self._ascii_emoji = any(k < 128 for k in self._emoji_table)
        self.emoji_chars = frozenset(chr(k) for k in self._emoji_table)
        # Words scored as sentiment: in the lexicon and not boosters (always 0).
        self._scorable = frozenset(w for w in self.lexicon if w not in BOOSTER_DICT)
        # Each word's valence in capitals where other words are not (the reference adds
        # or subtracts ``C_INCR`` exactly so), and whether any valence is zero.
        self._lexicon_capitals = {
            w: v + C_INCR if v > 0 else v - C_INCR for w, v in self.lexicon.items()
        }
        self._zero_valences = any(self.lexicon[w] == 0 for w in self._scorable)
        self._strip = _StripMemo()

    def _scored(self, text: str) -> tuple[str, int, list[float]]:
        """The text with emoji described, its number of words, and its non-zero
        sentiment values in text order after the "but" rule (zeros count only as words)."""
        ascii_text = text.isascii()
        t = text
        if not ascii_text or self._ascii_emoji:
            found = self.emoji_chars.intersection(text)
            if len(found) > _REPLACE_MAX:
                t = text.translate(self._emoji_table)
            else:
                # Descriptions hold no emoji, so replacing one kind at a time is the
                # same as translating, and cheaper for the few kinds a text holds.
                for e in found:
                    t = t.replace(e, self._emoji_table[ord(e)])
        lowered_text = t.lower()
        tokens: list[str] = []
        if ascii_text or _CONTEXTUAL_LOWER.search(t) is None:
            # Lower-casing is then one character to one, context-free, never makes or
            # unmakes whitespace or punctuation: lower-casing the text and then
            # stripping each word equals the reference's strip-then-lower per word.
            lw = list(map(self._strip.__getitem__, lowered_text.split()))
        else:
            # The same per token, except the few tokens holding U+0130 or U+03A3: those
            # are stripped, then lower-cased, word by word as the reference does.
            tokens = t.split()
            lw = list(map(self._strip.__getitem__, map(str.lower, tokens)))
            for i, token in enumerate(tokens):
                if "\u0130" in token or "\u03a3" in token:
                    stripped = token.strip(_PUNCTUATION)
                    lw[i] = (token if len(stripped) <= 2 else stripped).lower()
        n = len(lw)
        if self._scorable.isdisjoint(lw):
            return t, n, []
        # The reference's "ALL CAPS differential": some words all capitals, not all.
        # Stripped punctuation is uncased, so a token's ``isupper`` is its word's. An
        # ASCII text that lower-casing leaves alone has no capitals at all.
        cap_diff = False
        if not (ascii_text and lowered_text == t):
            if not tokens:
                tokens = t.split()
            caps = sum(map(str.isupper, tokens))
            cap_diff = 0 < caps < n
        scorable = list(map(self._scorable.__contains__, lw))
        if "n't" not in " ".join(lw) and _NEIGHBOURS.isdisjoint(lw):
            # No word of the text can trigger a rule but capitals: each sentiment word
            # keeps its lexicon valence (plus or minus the capitals' increment), which
            # C-level passes can look up for all of them at once.
            if cap_diff:
                tables = (self.lexicon, self._lexicon_capitals)
                picked = map(tables.__getitem__, compress(map(str.isupper, tokens), scorable))
                values = list(map(getitem, picked, compress(lw, scorable)))
            else:
                values = list(map(self.lexicon.__getitem__, compress(lw, scorable)))
            if values and "but" in lw:
                positions = list(compress(range(n), scorable))
                if self._zero_valences:
                    positions = list(compress(positions, values))
                    values = list(compress(values, values))
                _but_check(positions, values, lw.index("but"))
            elif self._zero_valences:
                values = list(compress(values, values))
            return t, n, values
        positions, values = self._valences(tokens, lw, cap_diff, scorable)
        if values and "but" in lw:
            _but_check(positions, values, lw.index("but"))
        return t, n, values

    def _valences(
        self, tokens: list[str], lw: list[str], cap_diff: bool, scorable: list[bool]
    ) -> tuple[list[int], list[float]]:
        """The non-zero sentiment values in text order, before the "but" rule, and their
        positions. ``tokens`` are read only where ``cap_diff``."""
        n = len(lw)
        positions: list[int] = []
        values: list[float] = []
        valence_at = self._valence
        if n <= _MEMO_WORDS:
            for i in compress(range(n), scorable):
                valence = valence_at(tokens, lw, i, cap_diff)
                if valence != 0:
                    positions.append(i)
                    values.append(valence)
            return positions, values
        # A long text: a word's valence depends only on the three words before it, the
        # two after, and (where ``cap_diff``) which of itself and the three before are
        # in capitals, so words in the same surroundings are scored once.
        memo: dict[object, float] = {}
        words = tuple(lw)
        capitals = tuple(map(str.isupper, tokens)) if cap_diff else ()
        inner = n - 3
        for i in compress(range(n), scorable):
            if 3 <= i <= inner:
                key: object = words[i - 3 : i + 3]
                if cap_diff:
                    key = (key, capitals[i - 3 : i + 1])
                known = memo.get(key)
                if known is None:
                    valence = memo[key] = valence_at(tokens, lw, i, cap_diff)
                else:
                    valence = known
            else:
                valence = valence_at(tokens, lw, i, cap_diff)
            if valence != 0:
                positions.append(i)
                values.append(valence)
        return positions, values

    def _valence(self, tokens: list[str], lw: list[str], i: int, cap_diff: bool) -> float:
        """The valence of the sentiment word at ``i``, by the reference's rules; each rule
        reads only the word's neighbours."""
        lex = self.lexicon
        n = len(lw)
        last = n - 1
        item = lw[i]
        w1 = lw[i - 1] if i > 0 else ""
        w2 = lw[i - 2] if i > 1 else ""
        w3 = lw[i - 3] if i > 2 else ""
        f1 = lw[i + 1] if i < last else ""
        if (
            item not in _NEIGHBOURS
            and w1 not in _NEIGHBOURS
            and w2 not in _NEIGHBOURS
            and w3 not in _NEIGHBOURS
            and f1 not in _IDIOM_LAST
            and (i + 2 >= n or lw[i + 2] not in _IDIOM_LAST)
            and "n't" not in w1
            and "n't" not in w2
            and "n't" not in w3
        ):
            # No rule but capitals can change this word's valence.
            valence = lex[item]
            if cap_diff and tokens[i].isupper():
                if valence > 0:
                    valence += C_INCR
                else:
                    valence -= C_INCR
            return valence
        if item == "kind" and f1 == "of" and i < last:
            return 0
        valence = lex[item]
        if item == "no" and i != last and f1 in lex:
            valence = 0.0
        if w1 == "no" or w2 == "no" or (w3 == "no" and w1 in _OR_NOR):
            valence = lex[item] * N_SCALAR
        if cap_diff and tokens[i].isupper():
            if valence > 0:
                valence += C_INCR
            else:
                valence -= C_INCR
        # The reference's three steps back, each on its own condition.
        if i > 0 and w1 not in lex:
            if w1 in BOOSTER_DICT:
                valence = valence + _scalar(w1, cap_diff and tokens[i - 1].isupper(), valence)
            if _negated(w1):
                valence = valence * N_SCALAR
        if i > 1 and w2 not in lex:
            if w2 in BOOSTER_DICT:
                s = _scalar(w2, cap_diff and tokens[i - 2].isupper(), valence)
                if s != 0:
                    s = s * 0.95
                valence = valence + s
            if w2 == "never" and w1 in _SO_THIS:
                valence = valence * 1.25
            elif w2 == "without" and w1 == "doubt":
                pass
            elif _negated(w2):
                valence = valence * N_SCALAR
        if i > 2 and w3 not in lex:
            if w3 in BOOSTER_DICT:
                s = _scalar(w3, cap_diff and tokens[i - 3].isupper(), valence)
                if s != 0:
                    s = s * 0.9
                valence = valence + s
            if (w3 == "never" and w2 in _SO_THIS) or w1 in _SO_THIS:
                valence = valence * 1.25
            elif w3 == "without" and (w2 == "doubt" or w1 == "doubt"):
                pass
            elif _negated(w3):
                valence = valence * N_SCALAR
            valence = self._idioms(valence, lw, i, n)
        if w1 == "least" and i > 0 and w1 not in lex:
            if i > 1:
                if w2 != "at" and w2 != "very":
                    valence = valence * N_SCALAR
            else:
                valence = valence * N_SCALAR
        return valence

    @staticmethod
    def _idioms(valence: float, lw: list[str], i: int, n: int) -> float:
        """The reference's ``_special_idioms_check`` (run at step 3 only, as there)."""
        w0, w1, w2, w3 = lw[i], lw[i - 1], lw[i - 2], lw[i - 3]
        found: float | None = None
        if w0 in _IDIOM_LAST:
            found = SPECIAL_CASES.get(f"{w1} {w0}")
            if found is None:
                found = SPECIAL_CASES.get(f"{w2} {w1} {w0}")
        if found is None and w1 in _IDIOM_LAST:
            found = SPECIAL_CASES.get(f"{w2} {w1}")
            if found is None:
                found = SPECIAL_CASES.get(f"{w3} {w2} {w1}")
        if found is None and w2 in _IDIOM_LAST:
            found = SPECIAL_CASES.get(f"{w3} {w2}")
        if found is not None:
            valence = found
        if n - 1 > i and lw[i + 1] in _IDIOM_LAST:
            found = SPECIAL_CASES.get(f"{w0} {lw[i + 1]}")
            if found is not None:
                valence = found
        if n - 1 > i + 1 and lw[i + 2] in _IDIOM_LAST:
            found = SPECIAL_CASES.get(f"{w0} {lw[i + 1]} {lw[i + 2]}")
            if found is not None:
                valence = found
        # Booster bigrams ("kind of") before the word; no booster phrase has three words.
        if w1 in _BOOSTER_LAST:
            bigram = BOOSTER_DICT.get(f"{w3} {w2} {w1}")
            if bigram is not None:
                valence = valence + bigram
        if w2 in _BOOSTER_LAST:
            bigram = BOOSTER_DICT.get(f"{w3} {w2}")
            if bigram is not None:
                valence = valence + bigram
        if w1 in _BOOSTER_LAST:
            bigram = BOOSTER_DICT.get(f"{w2} {w1}")
            if bigram is not None:
                valence = valence + bigram
        return valence

    def compound(self, text: str) -> float:
        """``polarity_scores(text)["compound"]``, without the proportions."""
        t, _, values = self._scored(text)
        if not values:
            return 0.0
        sum_s = float(sum(values))
        if sum_s > 0:
            sum_s += _punctuation_emphasis(t)
        elif sum_s < 0:
            sum_s -= _punctuation_emphasis(t)
        return round(_normalize(sum_s), 4)

    def polarity_scores(self, text: str) -> dict[str, float]:
        """vaderSentiment's ``polarity_scores``: neg, neu, pos (3 decimals), compound (4)."""
        t, n, values = self._scored(text)
        if not n:
            return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
        sum_s = float(sum(values))
        punct_emph_amplifier = _punctuation_emphasis(t)
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier
        compound = _normalize(sum_s)
        pos_sum = 0.0
        neg_sum = 0.0
        for score in values:
            if score > 0:
                pos_sum += float(score) + 1
            else:
                neg_sum += float(score) - 1
        neu_count = n - len(values)
        if pos_sum > math.fabs(neg_sum):
            pos_sum += punct_emph_amplifier
        elif pos_sum < math.fabs(neg_sum):
            neg_sum -= punct_emph_amplifier
        total = pos_sum + math.fabs(neg_sum) + neu_count
        return {
            "neg": round(math.fabs(neg_sum / total), 3),
            "neu": round(math.fabs(neu_count / total), 3),
            "pos": round(math.fabs(pos_sum / total), 3),
            "compound": round(compound, 4),
        }
