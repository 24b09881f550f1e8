"""The scorer pipeline with a transformer plugged in: ambiguous mentions get its verdict,
stored and produced, and the lexicon's compound is kept beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from services.core.bus import MemoryBus, TopicPartition
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.models import ScoredMention, Sentiment
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.reads import MentionFilter, list_mentions
from services.core.storage.tables import (
    brand_minute_rollups,
    mention_owners,
    mentions,
    review_items,
)
from services.core.topics import DEFAULT_TOPICS, RAW, SCORED
from services.scorer.pipeline import build_pipeline
from services.scorer.protocol import Route
from services.scorer.settings import ScorerSettings
from tests.fixtures.mentions import mention_doc


class NeutralToTransformer:
    def route(self, text: str, lexicon: Sentiment) -> Route:
        return "transformer" if lexicon.label == "neutral" else "lexicon"


class SaysNegative:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @property
    def method(self) -> Literal["transformer"]:
        return "transformer"

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        self.seen += texts
        return [
            Sentiment(
                label="negative",
                score=-0.7,
                confidence=0.8,
                method="transformer",
                lexicon_compound=0.0,
            )
            for _ in texts
        ]


async def test_routed_mentions_are_stored_and_produced_with_the_transformer_verdict(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    metrics = Metrics(CollectorRegistry())
    transformer = SaysNegative()
    pipeline = build_pipeline(
        ScorerSettings(data_dir=tmp_path, lexicon_processes=0),
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=metrics,
        transformer=transformer,
        router=NeutralToTransformer(),
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        for i, text in enumerate(["Acme shipped version 2", "Acme is wonderful, I love it"]):
            await producer.send(RAW, orjson.dumps(mention_doc(id=f"p{i}", text=text)))
        await pipeline.score.wait_caught_up(
            [TopicPartition(RAW, p) for p in range(8)], timeout_s=10
        )
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()

    assert transformer.seen == ["brand shipped version 2"]
    with engine.connect() as conn:
        stored = {
            m.id: m for m in list_mentions(conn, MentionFilter(), limit=10, cursor=None).items
        }
    assert stored["p0"].sentiment.method == "transformer"
    assert stored["p0"].sentiment.label == "negative"
    assert stored["p0"].sentiment.lexicon_compound == 0.0
    assert stored["p1"].sentiment.model_version == "vaderSentiment-3.3.2"
    assert stored["p1"].sentiment.method == "lexicon"
    produced = await downstream.getmany(max_records=10, timeout_s=5)
    by_id = {m.id: m for m in (ScoredMention.model_validate_json(x.value) for x in produced)}
    assert by_id["p0"].sentiment == stored["p0"].sentiment
    assert metrics.registry.get_sample_value("sentimon_routed_to_transformer_total") == 1


async def test_a_small_brand_gets_its_floor_of_spot_checks_through_the_pipeline(
    tmp_path: Path,
) -> None:
    """Last week Tiny had 280 mentions and Big 7,000 (in the rollups): with a floor of 70
    labels a week, Tiny's mentions are sampled at 0.25 and queued with weight 4, Big's at
    the base rates. The worker's decision and the write step's agree (one review item
    per flagged document)."""
    clock = SystemClock()
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    brands = BrandStore(engine, clock)
    brands.create("Tiny", "tiny")
    brands.create("Big", "big")
    minute = int(clock.now().timestamp()) // 60 * 60 - 86_400
    with engine.begin() as conn:
        for brand, n in (("Tiny", 280), ("Big", 7_000)):
            conn.execute(
                brand_minute_rollups.insert().values(
                    brand=brand,
                    minute=minute,
                    mentions=n,
                    positive=0,
                    neutral=n,
                    negative=0,
                    score_sum=0.0,
                    reach=0,
                    engagement=0,
                )
            )
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    pipeline = build_pipeline(
        ScorerSettings(data_dir=tmp_path, lexicon_processes=0, scorer_mode="lexicon"),
        bus=bus,
        producer=producer,
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
    )
    task = asyncio.create_task(pipeline.score.run())
    try:
        for i in range(800):
            brand = "tiny" if i % 2 else "big"
            doc = mention_doc(id=f"f{i}", text=f"{brand} is great, love it #{i}")
            await producer.send(RAW, orjson.dumps(doc))
        await pipeline.score.wait_caught_up(
            [TopicPartition(RAW, p) for p in range(8)], timeout_s=30
        )
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()

    with engine.connect() as conn:
        items = conn.execute(select(review_items.c.brand, review_items.c.weight)).all()
        flagged = conn.execute(
            select(func.count()).select_from(mentions).where(mentions.c.spot_check)
        ).scalar_one()
    tiny = [w for b, w in items if b == "Tiny"]
    big = [w for b, w in items if b == "Big"]
    assert 70 < len(tiny) < 130 and set(tiny) == {4.0}  # 400 mentions at 0.25
    assert len(big) < 25  # 400 at the base rates (2 %, positive ×2)
    assert flagged == len(items)


async def test_an_owned_accounts_reply_that_names_no_brand_is_kept_as_an_answer(
    tmp_path: Path,
) -> None:
    """Support replies rarely name the brand: the scorer keeps a reply by one of the
    brand's own accounts even when it matches no brand (stored, flagged as the brand's,
    counted for nobody), so that it answers the mention it replies to. Anyone else's
    reply that names no brand is dropped, as before."""
    clock = SystemClock()
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    BrandStore(engine, clock).create("Acme", "acme", owned_handles=["AcmeCare"])
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    pipeline = build_pipeline(
        ScorerSettings(data_dir=tmp_path, lexicon_processes=1, scorer_mode="lexicon"),
        bus=bus,
        producer=producer,
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
    )
    docs = [
        mention_doc(id="n1", text="acme broke my build again, awful"),
        mention_doc(
            id="r1",
            text="So sorry about that, we're on it - DM us",
            author={"id": "care", "handle": "acmecare"},
            in_reply_to_id="n1",
        ),
        mention_doc(
            id="r2",
            text="same here, so annoying",
            author={"id": "eve", "handle": "eve"},
            in_reply_to_id="n1",
        ),
    ]
    task = asyncio.create_task(pipeline.score.run())
    try:
        for doc in docs:
            await producer.send(RAW, orjson.dumps(doc))
        await pipeline.score.wait_caught_up(
            [TopicPartition(RAW, p) for p in range(8)], timeout_s=30
        )
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()

    with engine.connect() as conn:
        stored = set(conn.execute(select(mentions.c.mention_id)).scalars())
        owners = conn.execute(
            select(mentions.c.mention_id, mention_owners.c.brand).join(
                mention_owners, mention_owners.c.mention_pk == mentions.c.pk
            )
        ).all()
        counted = conn.execute(
            select(func.sum(brand_minute_rollups.c.mentions)).where(
                brand_minute_rollups.c.brand == "Acme"
            )
        ).scalar_one()
    assert stored == {"n1", "r1"}
    assert [tuple(o) for o in owners] == [("r1", "Acme")]
    assert counted == 1
