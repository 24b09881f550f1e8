"""``FastLangid`` gives py3langid's probabilities to the last bit (issue 18): on every text of
the shared data sets, as the scorer's detector reads them and as they are, one at a time
and in batches (the vector walk of the automaton), and on generated and hostile texts. The
reference is py3langid itself, run here; no expected value is stored.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.scorer.langid import SEPARATOR, VECTOR_WALK_MIN_BYTES, FastLangid, aho_corasick_window
from services.scorer.language import LanguageDetector, detection_text
from tests.scorer.test_vader_exact import shared_texts

REF = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
FAST = FastLangid(REF)
# The same model walked text by text as py3langid walks it (what a model failing the
# Aho–Corasick check gets).
WALKED = FastLangid(REF, vector_walk=False)

HOSTILE = [
    "",
    " ",
    "a",
    "ab",
    "abcde",  # shorter than the window
    "   two  spaces   ",
    "ALL CAPS SHOUTING ABOUT THE SERVICE",
    "e\u0301te\u0301 de\u0301ja\u0300",  # decomposed: NFC composes it
    "Дуже погане обслуговування, ніхто не відповідає",
    "服务太差了，没有人回复我的消息",
    "😂😂😂",
    "\ud800",  # a lone surrogate: encoded as py3langid encodes it (surrogatepass)
    "lone \udfff surrogates \ud83d in text",
    "\x00\x7f\u00ff\u00ffÿ",  # NUL, DEL, ÿ (never the separator byte 0xFF in UTF-8)
    "x" * 5_000,
    "The support team answered. " * 190,  # 5,130 characters
    "😂" * 5_000,
]


def reference(texts: list[str]) -> npt.NDArray[np.float32]:
    """py3langid's probabilities, one row a text."""
    return np.array([REF._decide(t) for t in texts], dtype=np.float32).reshape(len(texts), -1)


def same_in_batches(texts: list[str], size: int) -> list[str]:
    """The texts whose probabilities differ from py3langid's, scored ``size`` at a time."""
    expected = reference(texts)
    differ = []
    for start in range(0, len(texts), size):
        got = FAST.scores_many(texts[start : start + size])
        for k, row in enumerate(got):
            if not np.array_equal(row, expected[start + k]):
                differ.append(texts[start + k])
    return differ


def same_scores(text: str) -> bool:
    """Every language's probability equal, bit for bit."""
    return bool(np.array_equal(FAST.scores(text), REF._decide(text)))


def same(text: str) -> bool:
    """The same probabilities, answer and ranking."""
    return (
        same_scores(text)
        and FAST.classify(text) == REF.classify(text)
        and FAST.rank(text) == REF.rank(text)
    )


def test_every_shared_text_gets_py3langids_probabilities() -> None:
    texts = shared_texts()
    assert len(texts) > 100_000
    differ = [t for t in texts if not same_scores(detection_text(t))]
    assert differ == []
    # In the scorer's chunks (250 mentions), the vector walk of the automaton.
    assert same_in_batches([detection_text(t) for t in texts], 250) == []
    # The answer and the ranking (derived from the probabilities), on every 20th text as
    # the detector reads it and as it is given (handles and links in).
    differ = [t for t in texts[::20] if not (same(detection_text(t)) and same(t))]
    assert differ == []


@pytest.mark.parametrize("text", HOSTILE)
def test_edge_texts_get_py3langids_probabilities(text: str) -> None:
    assert same(text)
    assert np.array_equal(WALKED.scores(text), REF._decide(text))


def test_edge_texts_in_one_batch_get_py3langids_probabilities() -> None:
    texts = HOSTILE + HOSTILE[::-1]  # each twice, in another company
    assert sum(len(t.encode("utf8", "surrogatepass")) for t in texts) >= VECTOR_WALK_MIN_BYTES
    assert same_in_batches(texts, len(texts)) == []
    assert FAST.classify_many(texts) == [REF.classify(t) for t in texts]
    assert [FAST.rank(t) for t in texts] == [REF.rank(t) for t in texts]  # the batch's kept


def test_an_empty_batch_has_no_rows() -> None:
    assert FAST.scores_many([]).shape == (0, len(REF.nb_classes))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_generated_texts_get_py3langids_probabilities(text: str) -> None:
    assert same(text)


# Letters, spaces, accents, emoji, surrogates and n-gram-rich ASCII, in any mixture.
TEXTS = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from("the and ing ión şğ ß @#:/. 😂\u0301\ud800"),
    ),
    max_size=400,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXTS, min_size=1, max_size=40))
def test_generated_batches_get_py3langids_probabilities(texts: list[str]) -> None:
    # Padded past VECTOR_WALK_MIN_BYTES, so that the vector walk is what is tested.
    texts = [*texts, "The support team answered within minutes. " * 8]
    assert same_in_batches(texts, len(texts)) == []
    assert np.array_equal(WALKED.scores_many(texts), reference(texts))


def test_the_model_is_an_aho_corasick_automaton_of_strings_up_to_six_bytes() -> None:
    assert FAST.window == 6
    nextmove = np.frombuffer(REF.tk_nextmove, dtype=np.uint32)
    rowbase = np.asarray(REF._rowbase, dtype=np.intp)
    assert aho_corasick_window(nextmove, rowbase) == 6
    # The separator leads every state to the start state, which counts no n-gram.
    assert (nextmove[rowbase + SEPARATOR] == 0).all()
    assert REF.tk_output[0] < 0


def test_an_automaton_whose_state_is_not_its_last_bytes_fails_the_check() -> None:
    # Counts the "a"s it has read, modulo 2: no window of last bytes tells its state.
    parity = np.zeros(2 * 256, dtype=np.uint32)
    parity[ord("a")] = 1
    parity[256:] = 1
    parity[256 + ord("a")] = 0
    assert aho_corasick_window(parity, np.array([0, 256], dtype=np.intp)) is None
    # The Aho–Corasick automaton of "a" and "ab" passes, with its window.
    automaton = np.zeros(3 * 256, dtype=np.uint32)
    automaton[[ord("a"), 256 + ord("a"), 512 + ord("a")]] = 1
    automaton[256 + ord("b")] = 2
    assert aho_corasick_window(automaton, np.array([0, 256, 512], dtype=np.intp)) == 2


def test_the_detector_reads_with_the_fast_identifier_and_remembers_its_answers() -> None:
    detector = LanguageDetector.load()
    assert isinstance(detector.identifier, FastLangid)
    spanish = "@acme El servicio al cliente de esta empresa es terrible"
    assert detector.detect(spanish) == "es"
    assert detector.detect("@globex El servicio al cliente de esta empresa es terrible") == "es"
    assert len(detector._cache) == 1  # the same text once the handle is gone


def test_a_full_cache_forgets_its_oldest_half(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.scorer import language

    monkeypatch.setattr(language, "DETECTION_CACHE_SIZE", 4)
    detector = LanguageDetector.load()
    texts = [f"The support team answered within {n} minutes today" for n in range(5)]
    assert [detector.detect(t) for t in texts] == ["en"] * 5
    assert list(detector._cache) == [detection_text(t) for t in texts[2:]]
    monkeypatch.setattr(language, "DETECTION_CACHE_SIZE", 1)
    detector._cache.clear()
    for t in texts:
        detector.detect(t)
        assert list(detector._cache) == [detection_text(t)]  # a size of 1 holds one
