"""Write batch: a chunk's final verdicts as records; what the store refused left out."""

from __future__ import annotations

from services.core.models import ScoredMention, Sentiment
from services.core.storage.writer import Refused
from services.scorer.steps.lexicon import ScoredChunk
from services.scorer.steps.write import scored_records, stored
from tests.scorer.steps.chunks import NOW, POLICY, scored_chunk

SECOND = Sentiment(
    label="negative", score=-0.8, confidence=0.9, method="transformer", lexicon_compound=0.0
)


def test_a_better_verdict_replaces_the_lexicon_one_and_rebuilds_the_document() -> None:
    scored = scored_chunk(["Acme is wonderful", "Acme v2"])
    kept, routed = scored_records(
        ScoredChunk(scored.chunk, scored.results, [None, SECOND]), sampling=POLICY
    )
    assert kept.sentiment.method == "lexicon" and kept.doc == scored.results[0].doc
    assert routed.sentiment.method == "transformer"
    assert routed.sentiment.lexicon_compound == scored.results[1].compound
    doc = ScoredMention.model_validate_json(routed.doc)
    assert (doc.id, doc.sentiment, doc.scored_at) == ("s1", routed.sentiment, NOW)


def test_only_what_the_store_took_goes_on() -> None:
    records = scored_records(scored_chunk(["Acme a", "Acme b", "Acme c"]), sampling=POLICY)
    assert stored(records, ()) is records
    left = stored(records, [Refused(records[1], "no")])
    assert [r.mention.id for r in left] == ["s0", "s2"]
