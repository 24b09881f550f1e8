"""Sentiment per brand (issue 16) through the scorer pipeline: stored and produced with
each mention naming several brands, by the clause-scoped lexicon (lexicon mode, or when
the transformer's queue has no room) or by the target-aware model (hybrid), whatever the
router chose for the mention itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Literal

import orjson
from prometheus_client import CollectorRegistry

from services.core.bus import MemoryBus, TopicPartition
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.models import BrandSentiment, ScoredMention, Sentiment
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.reads import MentionFilter, list_mentions
from services.core.storage.writer import Refused
from services.core.topics import DEFAULT_TOPICS, RAW, SCORED
from services.scorer.pipeline import build_pipeline
from services.scorer.protocol import LexiconOnlyRouter, Router, Scorer
from services.scorer.settings import ScorerSettings
from services.scorer.steps.lexicon import Chunk, ScoredChunk, ScoringConfig, score_chunk
from services.scorer.steps.route import Routed
from services.scorer.steps.transformer import BatchTransformer
from services.scorer.steps.write import scored_records
from services.scorer.targets import TARGET_MARK
from services.scorer.transformer_batching import TransformerBatcher
from tests.fixtures.mentions import mention_doc
from tests.scorer.steps.test_targeted import MATCHER, NOW, TWO, VADER, pairs

TEXTS = {
    "two": TWO,
    "one": "Halcyra support is terrible",
    "many": "Vendors we looked at: " + ", ".join(f"vendor{i}" for i in range(50)) + ". Meh.",
}


class MarkedSaysPositive:
    """Positive toward the marked brand where the text says it "has been fantastic",
    negative otherwise; records what it read."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @property
    def method(self) -> Literal["transformer"]:
        return "transformer"

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.seen += texts
        return [
            Sentiment(
                label="positive" if f"{TARGET_MARK} has been fantastic" in t else "negative",
                score=0.8 if f"{TARGET_MARK} has been fantastic" in t else -0.8,
                confidence=0.9,
                method="transformer",
                lexicon_compound=0.0,
                model_version="stub-1",
            )
            for t in texts
        ]


async def run_through(
    tmp_path: Path,
    settings: ScorerSettings,
    *,
    transformer: Scorer | None = None,
    router: Router | None = None,
) -> tuple[dict[str, ScoredMention], dict[str, ScoredMention], Metrics]:
    """The texts through the pipeline: (produced, stored) by id, and the metrics."""
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    store = BrandStore(engine, SystemClock())
    store.create("Halcyra", "halcyra")
    store.create("Quorvia", "quorvia")
    for i in range(50):
        store.create(f"Vendor{i}", f"vendor{i}")
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    metrics = Metrics(CollectorRegistry())
    pipeline = build_pipeline(
        settings,
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=metrics,
        transformer=transformer,
        router=router,
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        for key, text in TEXTS.items():
            await producer.send(RAW, orjson.dumps(mention_doc(id=key, text=text, lang="en")))
        await pipeline.score.wait_caught_up([TopicPartition(RAW, p) for p in range(8)], 30)
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()
    produced = await downstream.getmany(max_records=10, timeout_s=5)
    by_id = {m.id: m for m in (ScoredMention.model_validate_json(x.value) for x in produced)}
    with engine.connect() as conn:
        page = list_mentions(conn, MentionFilter(), limit=10, cursor=None)
    return by_id, {m.id: m for m in page.items}, metrics


def verdicts(m: ScoredMention) -> dict[str, tuple[str, str, bool]]:
    assert m.sentiment_by_brand is not None, m
    return {b: (v.label, v.method, v.targeted) for b, v in m.sentiment_by_brand.items()}


def not_targeted(m: ScoredMention) -> bool:
    """Every brand gets the mention's verdict (the store may spell it out per brand)."""
    return all(m.sentiment_for(b) == BrandSentiment.of(m.sentiment) for b in m.brands)


async def test_lexicon_mode_stores_the_clause_scoped_verdict_per_brand(tmp_path: Path) -> None:
    produced, stored, metrics = await run_through(
        tmp_path, ScorerSettings(data_dir=tmp_path, lexicon_processes=0, scorer_mode="lexicon")
    )
    for scored in (produced, stored):
        assert verdicts(scored["two"]) == {
            "Halcyra": ("negative", "lexicon", True),
            "Quorvia": ("positive", "lexicon", True),
        }
        assert scored["two"].sentiment.method == "lexicon"
        assert not_targeted(scored["one"])
        assert len(scored["many"].brands) == 50 and not_targeted(scored["many"])
    assert produced["one"].sentiment_by_brand is None
    assert produced["many"].sentiment_by_brand is None
    value = metrics.registry.get_sample_value
    assert value("sentimon_targeted_verdicts_total", {"method": "lexicon"}) == 2
    assert value("sentimon_targeted_verdicts_total", {"method": "transformer"}) == 0
    assert value("sentimon_mentions_over_max_targets_total") == 1


async def test_hybrid_sends_every_marked_text_to_the_model(tmp_path: Path) -> None:
    model = MarkedSaysPositive()
    produced, stored, metrics = await run_through(
        tmp_path,
        ScorerSettings(data_dir=tmp_path, lexicon_processes=0),
        transformer=model,
        router=LexiconOnlyRouter(),  # routes no mention: the brands go all the same
    )
    spans = MATCHER.match(TWO).spans_by_brand()
    assert sorted(model.seen) == sorted(
        [
            f"{TARGET_MARK} support is terrible, but brand has been fantastic",
            f"brand support is terrible, but {TARGET_MARK} has been fantastic",
        ]
    )
    assert set(spans) == {"Halcyra", "Quorvia"}
    for scored in (produced, stored):
        assert verdicts(scored["two"]) == {
            "Halcyra": ("negative", "transformer", True),
            "Quorvia": ("positive", "transformer", True),
        }
        # The mention's own verdict stays the lexicon's: the router sent it nowhere.
        assert scored["two"].sentiment.method == "lexicon"
        assert not_targeted(scored["one"]) and not_targeted(scored["many"])
    value = metrics.registry.get_sample_value
    assert value("sentimon_targeted_verdicts_total", {"method": "transformer"}) == 2
    assert value("sentimon_targeted_fallbacks_total") == 0


class Collect:
    """The next step of ``BatchTransformer``: keeps what it is handed."""

    def __init__(self) -> None:
        self.items: list[ScoredChunk | Awaitable[ScoredChunk]] = []

    async def submit(self, item: ScoredChunk | Awaitable[ScoredChunk]) -> None:
        self.items.append(item)

    async def join(self) -> list[Refused]:
        return []

    def terminate(self) -> None:
        pass


async def test_when_the_queue_has_no_room_the_brands_get_the_clause_verdicts() -> None:
    chunk = Chunk.of(pairs(["Halcyra shipped v2", TWO]), NOW)
    result = score_chunk(
        chunk.items,
        matcher=MATCHER,
        compound=VADER.compound,
        config=ScoringConfig(),
        now=NOW,
        keep_texts=True,
    )
    routed_one, two = result.results
    model = MarkedSaysPositive()
    metrics = Metrics(CollectorRegistry())
    after = Collect()
    # Room for one text: the routed mention's; the two brands' are refused.
    async with TransformerBatcher(model, queue_size=1, overload="lexicon") as batcher:
        step = BatchTransformer(batcher, metrics, next_step=after)
        await step.submit(Routed(chunk, [two], [routed_one]))
        now, later = after.items
        assert isinstance(now, ScoredChunk) and not isinstance(later, ScoredChunk)
        waited = await later
    assert list(now.results) == [two] and not now.targeted
    assert [r.position for r in waited.results] == [0]
    assert model.seen == ["brand shipped v2"]
    value = metrics.registry.get_sample_value
    assert value("sentimon_targeted_fallbacks_total") == 2
    records = scored_records(now, sampling=ScoringConfig().sampling_policy)
    (record,) = records
    assert record.by_brand is not None
    assert {b: (v.label, v.method, v.targeted) for b, v in record.by_brand.items()} == {
        "Halcyra": ("negative", "lexicon", True),
        "Quorvia": ("positive", "lexicon", True),
    }


async def test_the_shipped_model_scores_each_brand(tmp_path: Path) -> None:
    produced, stored, _ = await run_through(
        tmp_path, ScorerSettings(data_dir=tmp_path, lexicon_processes=0)
    )
    for scored in (produced, stored):
        two = scored["two"].sentiment_by_brand
        assert two is not None and set(two) == {"Halcyra", "Quorvia"}
        assert all(v.method == "transformer" and v.targeted for v in two.values())
