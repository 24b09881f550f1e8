"""py3langid's answers, faster: ``FastLangid`` gives the probability of every language that
``py3langid.langid.LanguageIdentifier(norm_probs=True)`` gives, to the last bit.

py3langid scores the byte n-grams a text holds with a ``float32`` vector × ``float16``
matrix product; numpy converts the ``float16`` rows in software on every call (on a tweet,
~17 of the product's ~21 µs here). Here each row is converted once, the first time a text
holds its n-gram, into a ``float32`` copy of the matrix that fills as it is used (its
untouched pages cost no memory), and the product takes numpy's plain ``float32`` path on
the same values in the same order. The merging of aliased labels is done in one vector
step instead of element by element (the same additions), and the last text's
probabilities are kept (the detector ranks the text it just classified when its likeliest
language is not English). Everything else is py3langid's
own code and arithmetic, in its order; ``tests/scorer/test_langid_exact.py`` checks every
text of ``../shared/data`` against py3langid itself.
"""

from __future__ import annotations

import math
import unicodedata
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
from py3langid.langid import visit_counts


class FastLangid:
    """``classify`` and ``rank`` as py3langid's ``LanguageIdentifier`` answers them, for one
    loaded with ``norm_probs=True`` and no ``min_confidence`` (``ValueError`` otherwise)."""

    def __init__(self, reference: Any) -> None:
        if not reference._norm_probs or reference.min_confidence is not None:
            raise ValueError("FastLangid mirrors norm_probs=True without min_confidence only")
        self._nextmove = reference.tk_nextmove
        self._rowbase = reference._rowbase
        self._output = reference.tk_output
        self._ptc: npt.NDArray[Any] = reference.nb_ptc
        self._pc: npt.NDArray[np.float32] = reference.nb_pc
        self._classes: list[str] = list(reference.nb_classes)
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
        # The last text's probabilities: the detector ranks the text it just classified
        # when the likeliest language is not English.
        self._last: tuple[str, npt.NDArray[np.float32]] | None = None

    def scores(self, text: str) -> npt.NDArray[np.float32]:
        """Every language's probability, in py3langid's ``nb_classes`` order (its
        ``_decide``)."""
        last = self._last
        if last is not None and last[0] == text:
            return last[1].copy()
        scores = self._scores(text)
        self._last = (text, scores.copy())
        return scores

    def _scores(self, text: str) -> npt.NDArray[np.float32]:
        if text.isupper():
            text = text.lower()
        encoded = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
        visits = visit_counts(self._nextmove, self._rowbase, self._output, encoded)
        if visits:
            idx = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            fresh = idx[~self._converted[idx]]
            if fresh.size:
                self._rows[fresh] = self._ptc[fresh]
                self._converted[fresh] = True
            scores: npt.NDArray[np.float32] = np.log1p(counts) @ self._rows[idx] + self._pc
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
        return scores

    def classify(self, text: str) -> tuple[str, float]:
        """The likeliest language and its probability."""
        scores = self.scores(text)
        i = int(scores.argmax())
        return self._classes[i], float(scores[i])

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every language by probability, likeliest first, one entry per label."""
        merged: dict[str, float] = {}
        for lang, score in zip(self._classes, self.scores(text).tolist(), strict=True):
            merged.setdefault(lang, score)
        return sorted(merged.items(), key=itemgetter(1), reverse=True)
