"""Sentiment per brand (issue 16) in the steps' pure cores: a mention naming 2 to
``MAX_TARGETS`` brands gets a verdict toward each (the clause-scoped lexicon's, replaced by
the target-aware model's where it answered); one naming one brand, or more than
``MAX_TARGETS``, or in a language the scorer cannot read, gets none."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from services.core.brands import BrandDefinition, BrandMatcher
from services.core.models import BrandSentiment, Mention, ScoredMention
from services.scorer.lexicon import VaderScorer, lexicon_sentiment
from services.scorer.steps.lexicon import (
    BrandTarget,
    Chunk,
    ChunkResult,
    LexiconResult,
    ScoredChunk,
    ScoringConfig,
    clause_verdicts,
    score_chunk,
)
from services.scorer.steps.produce import targeted_tally
from services.scorer.steps.route import Routed
from services.scorer.steps.transformer import fallback_verdict, split_asked, target_texts
from services.scorer.steps.write import final_by_brand, scored_records
from services.scorer.targets import MAX_TARGETS, TARGET_MARK, clause_text, target_text
from tests.core.test_contracts import validator
from tests.fixtures.mentions import mention_doc

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
VADER = VaderScorer()
BRANDS = [
    BrandDefinition("Halcyra", "halcyra OR @halcyrahq"),
    BrandDefinition("Quorvia", "quorvia"),
    BrandDefinition("Happy", "Happy"),
    BrandDefinition("Zyxo", "zyxo"),
]
MATCHER = BrandMatcher.compile(BRANDS)
TWO = "Halcyra support is terrible, but Quorvia has been fantastic"


def pairs(texts: Sequence[str], lang: str | None = "en") -> list[tuple[Mention, bytes]]:
    raws = [orjson.dumps(mention_doc(id=f"t{i}", text=t, lang=lang)) for i, t in enumerate(texts)]
    return [(Mention.model_validate_json(raw), raw) for raw in raws]


def scored(
    texts: Sequence[str],
    *,
    matcher: BrandMatcher = MATCHER,
    keep_texts: bool = False,
    lang: str | None = "en",
    compound: Callable[[str], float] = VADER.compound,
) -> tuple[Chunk, ChunkResult]:
    chunk = Chunk.of(pairs(texts, lang), NOW)
    result = score_chunk(
        chunk.items,
        matcher=matcher,
        compound=compound,
        config=ScoringConfig(),
        now=NOW,
        keep_texts=keep_texts,
    )
    return chunk, result


def test_two_brands_get_the_clause_scoped_lexicons_verdict_each() -> None:
    chunk, result = scored([TWO])
    (r,) = result.results
    assert r.brands == ("Halcyra", "Quorvia")
    spans = MATCHER.match(TWO).spans_by_brand()
    assert r.targets == tuple(
        BrandTarget(brand, VADER.compound(clause_text(TWO, spans, brand)))
        for brand in ("Halcyra", "Quorvia")
    )
    by_brand = clause_verdicts(r.targets)
    assert by_brand is not None
    assert by_brand["Halcyra"].label == "negative"
    assert by_brand["Quorvia"].label == "positive"
    assert all(v.method == "lexicon" and v.targeted for v in by_brand.values())
    # The mention's own verdict is the one it always had: VADER on the masked text.
    assert lexicon_sentiment(r.compound) == lexicon_sentiment(
        VADER.compound("brand support is terrible, but brand has been fantastic")
    )
    (record,) = scored_records(
        ScoredChunk(chunk, result.results), sampling=ScoringConfig().sampling_policy
    )
    assert record.by_brand == by_brand
    assert record.sentiment == lexicon_sentiment(r.compound)
    doc = orjson.loads(record.doc)
    validator("scored_mention.v1.json").validate(doc)
    assert doc["sentiment_by_brand"] == {
        brand: {
            "label": v.label,
            "score": v.score,
            "confidence": v.confidence,
            "method": "lexicon",
            "targeted": True,
        }
        for brand, v in by_brand.items()
    }
    mention = ScoredMention.model_validate_json(record.doc)
    assert mention.sentiment_for("Halcyra").label == "negative"
    assert mention.sentiment_for("Quorvia").label == "positive"


def test_one_brand_and_unscored_languages_keep_todays_path() -> None:
    chunk, result = scored(["Halcyra support is terrible", TWO + " 🙂"], lang=None)
    one, _ = result.results
    assert one.targets == ()
    assert b"sentiment_by_brand" not in one.doc
    _, unscored = scored([TWO], lang="ja")
    (r,) = unscored.results
    assert not r.scorable and r.targets == ()
    assert b"sentiment_by_brand" not in r.doc
    records = scored_records(
        ScoredChunk(chunk, result.results), sampling=ScoringConfig().sampling_policy
    )
    assert records[0].by_brand is None


def test_the_models_texts_are_made_only_when_the_transformer_is_on() -> None:
    _, off = scored([TWO])
    assert [t.text for t in off.results[0].targets] == ["", ""]
    _, on = scored([TWO], keep_texts=True)
    spans = MATCHER.match(TWO).spans_by_brand()
    halcyra, quorvia = on.results[0].targets
    assert halcyra.text == target_text(TWO, spans, "Halcyra")
    assert halcyra.text.startswith(TARGET_MARK + " support is terrible")
    assert quorvia.text.startswith("brand support is terrible")
    assert TARGET_MARK + " has been fantastic" in quorvia.text


def test_a_brand_named_by_a_positive_word_never_scores_itself_positive() -> None:
    """Happy's own name (VADER: +2.7) is masked in its clauses as everywhere else: its
    verdict is the one a brand with a name of no valence gets in the same text."""
    text = "Left Happy for Quorvia, Happy's app never worked"
    _, result = scored([text])
    verdicts = clause_verdicts(result.results[0].targets)
    assert verdicts is not None and verdicts["Happy"].label != "positive"
    _, control = scored([text.replace("Happy", "Zyxo")])
    same = clause_verdicts(control.results[0].targets)
    assert same is not None and same["Zyxo"].score == verdicts["Happy"].score
    # Unmasked, the name alone would make the clause positive.
    assert VADER.compound("Happy") > 0.05
    _, issue = scored(["Left Happy for Quorvia, Happy's support never answered"])
    verdicts = clause_verdicts(issue.results[0].targets)
    assert verdicts is not None and verdicts["Happy"].label != "positive"


def test_a_brand_named_only_in_a_url_is_scored_from_the_clause_holding_the_url() -> None:
    text = "the pricing at https://halcyra.com/pricing is a joke compared to Quorvia"
    match = MATCHER.match(text)
    assert match.brands == ("Halcyra", "Quorvia")
    _, result = scored([text], keep_texts=True)
    (r,) = result.results
    halcyra, _ = r.targets
    # The URL stands for the brand: one mark for the whole link, in the model's text and
    # the lexicon's clause alike.
    spans = match.spans_by_brand()
    assert halcyra.text == target_text(text, spans, "Halcyra")
    assert "https://" not in halcyra.text and halcyra.text.count(TARGET_MARK) == 1
    clause = clause_text(text, spans, "Halcyra")
    assert "halcyra.com" not in clause and "pricing" in clause
    assert halcyra.compound == VADER.compound(clause)
    verdicts = clause_verdicts(r.targets)
    assert verdicts is not None and verdicts["Halcyra"].targeted
    validator("scored_mention.v1.json").validate(orjson.loads(r.doc))


def test_a_mention_naming_more_brands_than_max_targets_gets_the_mentions_verdict() -> None:
    many = [BrandDefinition(f"Vendor{i}", f"vendor{i}") for i in range(50)]
    matcher = BrandMatcher.compile(many)
    text = "Our vendor list: " + ", ".join(f"vendor{i}" for i in range(50)) + ". Great bunch!"
    calls: list[str] = []

    def compound(t: str) -> float:
        calls.append(t)
        return VADER.compound(t)

    chunk, result = scored([text], matcher=matcher, keep_texts=True, compound=compound)
    (r,) = result.results
    assert len(r.brands) == 50 > MAX_TARGETS
    assert r.targets == () and result.over_targets == 1
    assert len(calls) == 1  # the mention's own text only: nothing per brand
    (record,) = scored_records(
        ScoredChunk(chunk, result.results), sampling=ScoringConfig().sampling_policy
    )
    assert record.by_brand is None
    assert {record.sentiment_for(b.name) for b in many} == {BrandSentiment.of(record.sentiment)}
    assert b"sentiment_by_brand" not in record.doc


def test_the_models_verdicts_replace_the_clause_verdicts_brand_by_brand() -> None:
    _, result = scored([TWO])
    (r,) = result.results
    model = {
        "Quorvia": BrandSentiment(
            label="neutral", score=0.0, confidence=0.9, method="transformer", targeted=True
        )
    }
    final = final_by_brand(r, model)
    lexicon = clause_verdicts(r.targets)
    assert final is not None and lexicon is not None
    assert final == {"Halcyra": lexicon["Halcyra"], "Quorvia": model["Quorvia"]}
    assert final_by_brand(r, None) == lexicon


def test_every_target_goes_to_the_model_whatever_the_router_chose() -> None:
    chunk, result = scored(["Halcyra is fine", TWO, "Quorvia, Halcyra: meh"], keep_texts=True)
    clear, two, routed = result.results
    routing = Routed(chunk, [clear, two], [routed])
    targets = target_texts(routing)
    assert [(r.position, brand) for r, brand, _ in targets] == [
        (1, "Halcyra"),
        (1, "Quorvia"),
        (2, "Halcyra"),
        (2, "Quorvia"),
    ]
    assert all(TARGET_MARK in text for _, _, text in targets)

    # The queue took the routed mention's text and Quorvia of the first, refused the rest.
    now, waiting = split_asked(routing, ["m2"], targets, [None, "t1q", None, None])
    assert list(now.results) == [clear]
    assert not now.better
    assert [(a.result, a.opinion, a.refused, a.brands) for a in waiting] == [
        (two, None, False, (("Quorvia", "t1q"),)),
        (routed, "m2", False, ()),
    ]
    # Nothing taken: all goes on at once, the routed mention with its fallback.
    now, waiting = split_asked(routing, [None], targets, [None] * 4)
    assert waiting == []
    assert list(now.results) == [clear, two, routed]
    assert list(now.better) == [None, None, fallback_verdict(routed)]
    # A refused mention whose brands were taken waits for them, marked refused.
    _, waiting = split_asked(routing, [None], targets, [None, None, "q", "h"])
    assert [(a.result, a.opinion, a.refused) for a in waiting] == [(routed, None, True)]


def test_results_with_targets_cross_processes() -> None:
    _, result = scored([TWO], keep_texts=True)
    again = pickle.loads(pickle.dumps(result))  # noqa: S301 (our own bytes)
    assert again.results == result.results
    assert isinstance(again.results[0], LexiconResult)


def test_produced_records_are_counted_per_method_of_their_brand_verdicts() -> None:
    chunk, result = scored([TWO, "Halcyra only", TWO])
    records = scored_records(
        ScoredChunk(chunk, result.results), sampling=ScoringConfig().sampling_policy
    )
    assert targeted_tally(records) == {"lexicon": 4}
