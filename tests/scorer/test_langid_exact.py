"""``FastLangid`` gives py3langid's probabilities to the last bit (issue 18): on every text of
the shared data sets, as the scorer's detector reads them and as they are, and on generated
texts. The reference is py3langid itself, run here; no expected value is stored.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.scorer.langid import FastLangid
from services.scorer.language import LanguageDetector, detection_text
from tests.scorer.test_vader_exact import shared_texts

REF = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
FAST = FastLangid(REF)


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
    # The answer and the ranking (derived from the probabilities), on every 20th text as
    # the detector reads it and as it is given (handles and links in).
    differ = [t for t in texts[::20] if not (same(detection_text(t)) and same(t))]
    assert differ == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "   two  spaces   ",
        "ALL CAPS SHOUTING ABOUT THE SERVICE",
        "e\u0301te\u0301 de\u0301ja\u0300",  # decomposed: NFC composes it
        "Дуже погане обслуговування, ніхто не відповідає",
        "服务太差了，没有人回复我的消息",
        "😂😂😂",
        "x" * 5_000,
    ],
)
def test_edge_texts_get_py3langids_probabilities(text: str) -> None:
    assert same(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_generated_texts_get_py3langids_probabilities(text: str) -> None:
    assert same(text)


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
