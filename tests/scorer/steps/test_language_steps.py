"""A mention in a language the scorer cannot read, through the steps' pure cores: stored
unscored, never scored by the English lexicon, never routed, never sampled."""

from __future__ import annotations

import orjson

from services.core.models import Mention, ScoredMention, Sentiment
from services.scorer.language import LanguageDetector
from services.scorer.lexicon import UNSCORED
from services.scorer.protocol import Route
from services.scorer.sampling import SamplingPolicy
from services.scorer.steps.lexicon import Chunk, ScoredChunk, ScoringConfig, score_chunk
from services.scorer.steps.route import route
from services.scorer.steps.write import scored_records
from tests.fixtures.mentions import mention_doc
from tests.scorer.steps.chunks import MATCHER, NOW

SPANISH = "Acme es un desastre, el servicio al cliente es terrible y nadie responde"
ENGLISH = "Acme is a disaster, the customer service is terrible and nobody answers"
GERMAN = "Acme ist großartig, der Kundendienst hat sofort geholfen"
EVERYTHING = SamplingPolicy(rate=1.0, lifts=(), uncertain_rate=1.0)


class RouteEverything:
    def route(self, text: str, lexicon: Sentiment) -> Route:
        return "transformer"


def chunk_of(*docs: dict[str, object]) -> Chunk:
    raws = [orjson.dumps(d) for d in docs]
    return Chunk.of([(Mention.model_validate_json(r), r) for r in raws], NOW)


def scored(chunk: Chunk, compound_calls: list[str]) -> ScoredChunk:
    def compound(text: str) -> float:
        compound_calls.append(text)
        return -0.8

    result = score_chunk(
        chunk.items,
        matcher=MATCHER,
        compound=compound,
        config=ScoringConfig(sampling=EVERYTHING),
        now=NOW,
        keep_texts=True,
        detector=LanguageDetector.load(),
    )
    return ScoredChunk(chunk, result.results)


def test_another_language_is_stored_unscored_and_never_read_by_the_lexicon() -> None:
    chunk = chunk_of(
        mention_doc(id="es", text=SPANISH, lang=None),
        mention_doc(id="en", text=ENGLISH, lang=None),
        mention_doc(id="de", text=GERMAN, lang="de-DE"),  # the source said so
    )
    calls: list[str] = []
    result = scored(chunk, calls)
    assert [r.language for r in result.results] == ["es", "en", "de"]
    assert [r.scorable for r in result.results] == [False, True, False]
    assert len(calls) == 1 and "customer service" in calls[0]  # only the English one
    docs = [ScoredMention.model_validate_json(r.doc) for r in result.results]
    assert docs[0].sentiment == UNSCORED and docs[0].language == "es"
    assert docs[0].sentiment.label == "unscored" and docs[0].sentiment.method == "none"
    assert not docs[0].spot_check and not docs[2].spot_check
    assert docs[1].sentiment.label == "negative" and docs[1].language == "en"


def test_an_unscored_mention_is_never_routed_nor_sampled() -> None:
    chunk = chunk_of(
        mention_doc(id="es", text=SPANISH, lang=None),
        mention_doc(id="en", text=ENGLISH, lang=None),
    )
    sc = scored(chunk, [])
    routed = route(sc, RouteEverything())
    assert [r.language for r in routed.transformer] == ["en"]
    assert [r.language for r in routed.lexicon] == ["es"]
    records = {r.mention.id: r for r in scored_records(sc, sampling=EVERYTHING)}
    assert records["es"].sentiment == UNSCORED and records["es"].language == "es"
    assert not records["es"].spot_check and records["es"].spot is None
    assert records["en"].spot_check and records["en"].language == "en"
    # Even a transformer verdict offered for it does not score it.
    better = [UNSCORED.model_copy(update={"label": "positive", "method": "transformer"})]
    again = scored_records(ScoredChunk(chunk, sc.results[:1], better), sampling=EVERYTHING)
    assert again[0].sentiment == UNSCORED
