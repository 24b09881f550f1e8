"""Scoring outside the pipeline (``sentimon score``): the service's path, every text kept,
lines parsed and scored in blocks, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import orjson
import pytest

from services.core.brands import BrandDefinition, BrandMatcher
from services.core.models import Mention, Sentiment
from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.offline import (
    LineError,
    OfflineScorer,
    parse_line,
    score_lines,
    score_objects,
    score_texts,
)
from services.scorer.process import ScoringConfig, score_mentions
from services.scorer.protocol import Route
from tests.fixtures.mentions import mention_doc

MATCHER = BrandMatcher.compile(
    [BrandDefinition("United", '@united OR "united airlines"'), BrandDefinition("Acme", "acme")]
)
VADER = VaderScorer()


class QuestionRouter:
    """Routes the questions: a router whose choice a test can predict."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def route(self, text: str, lexicon: Sentiment) -> Route:
        self.seen.append(text)
        return "transformer" if "?" in text else "lexicon"


class NegativeModel:
    """Says negative, sure of it, to everything it is given; remembers what that was."""

    method: Literal["transformer"] = "transformer"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.seen += texts
        return [
            Sentiment(
                label="negative",
                score=-0.9,
                confidence=0.95,
                method="transformer",
                lexicon_compound=0.0,
                model_version="stub-1",
            )
            for _ in texts
        ]


def hybrid(max_chars: int = 2_000) -> tuple[OfflineScorer, NegativeModel, QuestionRouter]:
    model, router = NegativeModel(), QuestionRouter()
    return OfflineScorer(MATCHER, VADER.compound, max_chars, model, router), model, router


TEXTS = [
    "Acme is wonderful, I love it",
    "is acme any good?",
    "Flying @united to Denver tomorrow?",
    "Lunch was wonderful",  # no brand: scored all the same
    "what a day?",
]


def test_routed_texts_get_the_transformers_verdict_and_keep_the_lexicons_compound() -> None:
    scorer, model, _ = hybrid()
    out = score_texts(TEXTS, scorer)
    assert [(brands, v.method) for brands, v in out] == [
        (("Acme",), "lexicon"),
        (("Acme",), "transformer"),
        (("United",), "transformer"),
        ((), "lexicon"),
        ((), "transformer"),
    ]
    routed = out[1][1]
    assert routed.label == "negative" and routed.confidence == 0.95
    assert routed.model_version == "stub-1"
    # The lexicon's compound of the text as scored (brand masked), kept beside the verdict.
    assert routed.lexicon_compound == VADER.compound("is brand any good?") != 0.0
    assert out[0][1] == lexicon_sentiment(VADER.compound("brand is wonderful, I love it"))
    assert model.seen == ["is brand any good?", "Flying brand to Denver tomorrow?", "what a day?"]


def test_brands_are_masked_and_texts_capped_before_routing_and_the_transformer() -> None:
    scorer, model, router = hybrid(max_chars=120)
    long = "Is @united any good? " + "so many words here " * 20
    score_texts([long], scorer)
    (seen,) = model.seen
    assert "@united" not in seen and "united" not in seen.lower()
    assert len(seen) <= 120
    assert router.seen == model.seen


def test_verdicts_are_those_of_the_services_scoring_path() -> None:
    """``score_mentions`` runs the pipeline's steps in this process; for mentions naming a
    brand, its records carry exactly the verdicts ``score_texts`` gives."""
    texts = [t for t in TEXTS if MATCHER.match(t).brands]
    scorer, _, router = hybrid()
    offline = score_texts(texts, scorer)
    raws = [orjson.dumps(mention_doc(id=f"m{i}", text=t)) for i, t in enumerate(texts)]
    _, records = score_mentions(
        [(Mention.model_validate_json(raw), raw) for raw in raws],
        matcher=MATCHER,
        compound=VADER.compound,
        router=router,
        transformer=NegativeModel(),
        config=ScoringConfig(),
        now=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert [(r.brands, r.sentiment) for r in records] == offline


def test_lexicon_only_routes_nothing() -> None:
    scorer = OfflineScorer(MATCHER, VADER.compound, 2_000)
    out = score_texts(TEXTS, scorer)
    assert [v.method for _, v in out] == ["lexicon"] * len(TEXTS)
    assert out[1][1] == lexicon_sentiment(VADER.compound("is brand any good?"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": 1, "text": "hi"}', {"id": 1, "text": "hi"}),
        ("  plain text  \n", {"text": "plain text"}),
        ("[1, 2]", {"text": "[1, 2]"}),
        ('{"id": 1', "invalid JSON"),
        ('{"text": 3}', "text: a non-empty string is required"),
        ('{"text": "  "}', "text: a non-empty string is required"),
    ],
)
def test_parse_line(line: str, expected: dict[str, object] | str) -> None:
    got = parse_line(line)
    if isinstance(expected, str):
        assert isinstance(got, str) and got.startswith(expected)
    else:
        assert got == expected


def test_score_objects_adds_brands_and_sentiment_and_keeps_every_field() -> None:
    scorer, _, _ = hybrid()
    objects = [{"id": "a", "text": "is acme any good?", "extra": [1]}]
    (out,) = score_objects(objects, scorer)
    assert out["id"] == "a" and out["extra"] == [1]
    assert out["brands"] == ["Acme"]
    assert out["sentiment"]["method"] == "transformer"
    assert set(out["sentiment"]) == set(Sentiment.model_fields)


def test_lines_are_scored_in_blocks_in_order_and_errors_name_their_line() -> None:
    scorer, model, _ = hybrid()
    lines = [
        b"is acme any good?\n",
        b"\n",
        b"\xff not utf-8\n",
        b'{"id": "x"}\n',
        b"what a day?\n",
        b"Acme rocks\n",
        b"and globex?\n",
    ]
    results = list(score_lines(lines, scorer, block=2))
    errors = [r for r in results if isinstance(r, LineError)]
    scored = [r for r in results if not isinstance(r, LineError)]
    assert errors == [
        LineError(3, "not valid UTF-8"),
        LineError(4, "text: a non-empty string is required"),
    ]
    assert [o["text"] for o in scored] == [
        "is acme any good?",
        "what a day?",
        "Acme rocks",
        "and globex?",
    ]
    assert [o["sentiment"]["method"] for o in scored] == [
        "transformer",
        "transformer",
        "lexicon",
        "transformer",
    ]
    assert model.seen == ["is brand any good?", "what a day?", "and globex?"]


def test_a_block_is_scored_once_it_is_full_not_at_the_end() -> None:
    scorer, model, _ = hybrid()
    results = score_lines(iter([b"a?\n", b"b?\n", b"c?\n"]), scorer, block=2)
    first = next(results)
    assert not isinstance(first, LineError) and first["text"] == "a?"
    # The first block (two lines) is scored; the third line's block is not yet.
    assert model.seen == ["a?", "b?"]
    assert [r["text"] for r in results if not isinstance(r, LineError)] == ["b?", "c?"]
    assert model.seen == ["a?", "b?", "c?"]
