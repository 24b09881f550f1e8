"""py3langid's answers, faster: ``FastLangid`` gives the probability of every language that
``py3langid.langid.LanguageIdentifier(norm_probs=True)`` gives, to the last bit.

py3langid finds the byte n-grams a text holds by walking its automaton one byte at a time
in Python (``visit_counts``), then scores them with a ``float32`` vector × ``float16``
matrix product. Here:

- The automaton is walked for a whole batch of texts at once, in numpy. It is an
  Aho–Corasick automaton over byte strings of at most ``window`` bytes (checked on the
  model when it is loaded, ``aho_corasick_window``; py3langid's own walk is used when the
  check fails), so the state after a byte is the one reached from the start state by the
  ``window`` bytes that end there: ``window`` vector steps give every position's state.
  Texts are joined by a byte that leads every state back to the start state and that
  UTF-8 never holds, so one pass serves the batch. Each text's n-grams are then counted
  and put in the order of their first occurrence, as ``Counter`` keeps them.
- numpy converts the ``float16`` rows in software on every call (on a tweet, ~17 of the
  product's ~21 µs). Here each row is converted once, the first time a text holds its
  n-gram, into a ``float32`` copy of the matrix that fills as it is used (its untouched
  pages cost no memory), and the product takes numpy's plain ``float32`` path on the same
  values in the same order, one text at a time, as py3langid calls it.
- The steps after the product are element-wise or per text (a row's max and sum), so they
  are done for the batch's rows together; the merging of aliased labels in one vector
  step (the same additions).

The last batch's probabilities are kept (the detector ranks the texts it just classified
whose likeliest language is not English). ``tests/scorer/test_langid_exact.py`` checks
every text of ``../shared/data`` against py3langid itself, one at a time and in batches.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
from py3langid.langid import visit_counts

# Joins the texts of a batch: UTF-8 never holds it (``encode`` writes no byte above 0xF4,
# lone surrogates included), and the model must lead every state to the start state on
# it, which ``FastLangid`` checks.
SEPARATOR = 0xFF

# Under this many bytes a batch is walked text by text, as py3langid walks it: the vector
# walk's fixed cost (some twenty numpy calls) is more than a walk in Python over fewer
# bytes. Measured (``tests/bench/bench_langid.py``'s tweets, ~86 bytes): one tweet 136 µs
# in vector steps against 60 µs walked, four tweets 221 against 240.
VECTOR_WALK_MIN_BYTES = 320


def aho_corasick_window(
    nextmove: npt.NDArray[np.integer[Any]], rowbase: npt.NDArray[np.intp]
) -> int | None:
    """The length of the longest string of the automaton's states when it is the
    Aho–Corasick automaton of those strings, else ``None``.

    The automaton is ``nextmove[rowbase[state] + byte]``, starting at state 0. Each
    state's string is the shortest one that leads to it (breadth first). Every state's
    transitions are compared with the textbook construction over those strings: to the
    state of ``string + byte`` when there is one, else as from the state's failure state
    (that of its string's longest proper suffix that is a state), the start state's to
    itself. When they all agree, the state after any text is that of the text's longest
    suffix that is a state, which is within its last ``window`` bytes.
    """
    every_byte = np.arange(256, dtype=np.intp)
    depth = np.full(rowbase.size, -1, dtype=np.intp)
    fail = np.zeros(rowbase.size, dtype=np.intp)
    depth[0] = 0
    frontier = np.zeros(1, dtype=np.intp)
    level = 0
    while True:
        moves = nextmove[rowbase[frontier][:, None] + every_byte].astype(np.intp)
        # A state first met from this level is one longer than the state it came from.
        at, byte = np.nonzero(depth[moves] == -1)
        found, first = np.unique(moves[at, byte], return_index=True)
        at, byte = at[first], byte[first]
        if level == 0:
            expected = np.zeros_like(moves)
        else:
            expected = nextmove[rowbase[fail[frontier]][:, None] + every_byte].astype(np.intp)
        expected[at, byte] = found
        if not np.array_equal(moves, expected):
            return None
        if found.size == 0:
            return level
        depth[found] = level + 1
        if level > 0:
            fail[found] = nextmove[rowbase[fail[frontier[at]]] + byte]
        frontier = found
        level += 1


def _encode(text: str) -> bytes:
    """The bytes py3langid reads of a text (its ``_encode`` of a ``str``)."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


class FastLangid:
    """``classify`` and ``rank`` as py3langid's ``LanguageIdentifier`` answers them, for one
    loaded with ``norm_probs=True`` and no ``min_confidence`` (``ValueError`` otherwise).
    ``vector_walk=False`` walks every text as py3langid does, one at a time (what a model
    failing ``aho_corasick_window``'s check gets; for tests and benchmarks)."""

    def __init__(self, reference: Any, *, vector_walk: bool = True) -> None:
        if not reference._norm_probs or reference.min_confidence is not None:
            raise ValueError("FastLangid mirrors norm_probs=True without min_confidence only")
        self._reference_walk = (reference.tk_nextmove, reference._rowbase, reference.tk_output)
        self._ptc: npt.NDArray[Any] = reference.nb_ptc
        self._pc: npt.NDArray[np.float32] = reference.nb_pc
        self._classes: list[str] = list(reference.nb_classes)
        # The array's own item type (an array.array of "I"), without a copy.
        self._nextmove: npt.NDArray[np.integer[Any]] = np.asarray(reference.tk_nextmove)
        self._rowbase = np.asarray(reference._rowbase, dtype=np.intp)
        self._output = np.asarray(reference.tk_output, dtype=np.intp)
        self._features = int(self._ptc.shape[0])
        # None: py3langid's walk, text by text (the model is not what the batch walk needs).
        self._window: int | None = None
        resets = bool((self._nextmove[self._rowbase + SEPARATOR] == 0).all())
        if vector_walk and resets and self._output[0] < 0:
            self._window = aho_corasick_window(self._nextmove, self._rowbase)
        # np.zeros maps zeroed pages lazily: only the rows converted take memory.
        self._rows = np.zeros(self._ptc.shape, dtype=np.float32)
        self._converted = np.zeros(self._ptc.shape[0], dtype=bool)
        pairs = list(reference._alias_pairs)
        flat = [k for pair in pairs for k in pair]
        # One vector step is the same additions only when no column is in two pairs.
        self._alias_vector = len(set(flat)) == len(flat)
        self._alias_pairs: list[tuple[int, int]] = pairs
        self._alias_first = np.array([i for i, _ in pairs], dtype=np.intp)
        self._alias_dupe = np.array([j for _, j in pairs], dtype=np.intp)
        # The last batch's probabilities, by text: the detector ranks the texts it just
        # classified whose likeliest language is not English.
        self._last: dict[str, npt.NDArray[np.float32]] = {}

    @property
    def window(self) -> int | None:
        """The bytes that decide the automaton's state (``aho_corasick_window``); ``None``
        when the model failed the check and texts are walked as py3langid walks them."""
        return self._window

    def scores(self, text: str) -> npt.NDArray[np.float32]:
        """Every language's probability, in py3langid's ``nb_classes`` order (its
        ``_decide``)."""
        last = self._last.get(text)
        if last is not None:
            return last.copy()
        encoded = _encode(text)
        if self._window is not None and len(encoded) >= VECTOR_WALK_MIN_BYTES:
            batch: npt.NDArray[np.float32] = self.scores_many([text])[0]
            return batch
        # One short text: py3langid's walk and its one-row steps, which cost less than the
        # batch's two-dimensional ones on a single row.
        visits = visit_counts(*self._reference_walk, encoded)
        if visits:
            scores = self._product(visits) + self._pc
        else:
            scores = np.full(len(self._classes), 0.0, dtype=np.float32)
        scores *= 1.0 / math.sqrt(len(encoded) or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        if self._alias_vector:
            scores[self._alias_first] += scores[self._alias_dupe]
            scores[self._alias_dupe] = 0.0
        else:
            for i, j in self._alias_pairs:
                scores[i] += scores[j]
                scores[j] = 0.0
        self._last = {text: scores.copy()}
        return scores

    def scores_many(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``scores`` of each text, one row a text."""
        encoded = [_encode(t) for t in texts]
        if self._window is None or sum(map(len, encoded)) < VECTOR_WALK_MIN_BYTES:
            raw = self._raw_scores_by_walk(encoded)
        else:
            raw = self._raw_scores(encoded, self._window)
        scores = self._normalised(raw, encoded)
        self._last = dict(zip(texts, scores, strict=True))
        return scores.copy()

    def _raw_scores(self, encoded: Sequence[bytes], window: int) -> npt.NDArray[np.float32]:
        scores = np.zeros((len(encoded), len(self._classes)), dtype=np.float32)
        if not encoded:
            return scores
        separator = bytes([SEPARATOR])
        joined = separator.join(encoded)
        size = len(joined)
        padded = np.frombuffer(separator * (window - 1) + joined, dtype=np.uint8).astype(np.intp)
        nextmove, rowbase = self._nextmove, self._rowbase
        state = nextmove[rowbase[0] + padded[:size]]
        for k in range(1, window):
            state = nextmove[rowbase[state] + padded[k : k + size]]
        feature = self._output[state]
        at = np.flatnonzero(feature >= 0)
        starts = np.cumsum([0] + [len(e) + 1 for e in encoded[:-1]])
        text_of = np.searchsorted(starts, at, side="right") - 1
        keys, first, counts = np.unique(
            text_of * self._features + feature[at], return_index=True, return_counts=True
        )
        # Counter's order: each text's n-grams by first occurrence (texts stay in order).
        order = np.argsort(first)
        keys, counts = keys[order], counts[order].astype(np.float32)
        text_of = keys // self._features
        idx = keys - text_of * self._features
        fresh = idx[~self._converted[idx]]
        if fresh.size:
            self._rows[fresh] = self._ptc[fresh]
            self._converted[fresh] = True
        bounds = np.searchsorted(text_of, np.arange(len(encoded) + 1)).tolist()
        rows = self._rows
        for i, (a, b) in enumerate(pairwise(bounds)):
            if a < b:
                # Text by text, as py3langid calls it: a product's sums are in its order.
                scores[i] = np.log1p(counts[a:b]) @ rows[idx[a:b]]
        scores[np.diff(bounds) > 0] += self._pc
        return scores

    def _raw_scores_by_walk(self, encoded: Sequence[bytes]) -> npt.NDArray[np.float32]:
        scores = np.zeros((len(encoded), len(self._classes)), dtype=np.float32)
        for i, text in enumerate(encoded):
            visits = visit_counts(*self._reference_walk, text)
            if visits:
                scores[i] = self._product(visits) + self._pc
        return scores

    def _product(self, visits: Counter[int]) -> npt.NDArray[np.float32]:
        idx = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
        counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
        fresh = idx[~self._converted[idx]]
        if fresh.size:
            self._rows[fresh] = self._ptc[fresh]
            self._converted[fresh] = True
        product: npt.NDArray[np.float32] = np.log1p(counts) @ self._rows[idx]
        return product

    def _normalised(
        self, scores: npt.NDArray[np.float32], encoded: Sequence[bytes]
    ) -> npt.NDArray[np.float32]:
        # py3langid multiplies by a Python float, which numpy rounds to float32 first.
        scale = np.array([1.0 / math.sqrt(len(e) or 1) for e in encoded], dtype=np.float32)
        scores *= scale[:, None]
        np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        if self._alias_vector:
            scores[:, self._alias_first] += scores[:, self._alias_dupe]
            scores[:, self._alias_dupe] = 0.0
        else:
            for i, j in self._alias_pairs:
                scores[:, i] += scores[:, j]
                scores[:, j] = 0.0
        return scores

    def classify(self, text: str) -> tuple[str, float]:
        """The likeliest language and its probability."""
        return self._best(self.scores(text))

    def classify_many(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """``classify`` of each text, in one batch."""
        return [self._best(row) for row in self.scores_many(texts)]

    def _best(self, scores: npt.NDArray[np.float32]) -> tuple[str, float]:
        i = int(scores.argmax())
        return self._classes[i], float(scores[i])

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every language by probability, likeliest first, one entry per label."""
        merged: dict[str, float] = {}
        for lang, score in zip(self._classes, self.scores(text).tolist(), strict=True):
            merged.setdefault(lang, score)
        return sorted(merged.items(), key=itemgetter(1), reverse=True)
