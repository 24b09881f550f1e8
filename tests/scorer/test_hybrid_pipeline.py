"""The hybrid is the default: the pipeline (and ``sentimon run``'s embedded service) loads
the shipped model and routes with the tuned thresholds; a missing model stops start-up,
or gives a logged lexicon-only scorer when so configured."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.api.settings import ApiSettings
from services.core.bus import MemoryBus, TopicPartition
from services.core.clock import SystemClock
from services.core.metrics import Metrics
from services.core.models import ScoredMention
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.topics import DEFAULT_TOPICS, RAW, SCORED
from services.embedded import Embedded
from services.ingest.settings import IngestSettings
from services.scorer.pipeline import ScorerPipeline, build_pipeline
from services.scorer.settings import ScorerSettings
from services.scorer.transformer import ModelLoadError
from tests.fixtures.mentions import mention_doc

TEXTS = {
    "clear": "Acme is wonderful, I love it, best support ever!",
    "unsure": "is acme any good? https://t.co/x",
}


def fresh(path: Path) -> Path:
    path.mkdir()
    return path


async def run_through(
    tmp_path: Path, settings: ScorerSettings
) -> tuple[ScorerPipeline, dict[str, ScoredMention]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")
    bus = MemoryBus()
    await bus.create_topics(DEFAULT_TOPICS)
    producer = await bus.producer()
    pipeline = build_pipeline(
        settings,
        bus=bus,
        producer=producer,
        engine=engine,
        clock=SystemClock(),
        metrics=Metrics(CollectorRegistry()),
    )
    downstream = await bus.consumer("downstream", [SCORED])
    task = asyncio.create_task(pipeline.score.run())
    try:
        for key, text in TEXTS.items():
            await producer.send(RAW, orjson.dumps(mention_doc(id=key, text=text)))
        await pipeline.score.wait_caught_up([TopicPartition(RAW, p) for p in range(8)], 30)
    finally:
        pipeline.score.stop()
        await task
        await pipeline.close()
    produced = await downstream.getmany(max_records=10, timeout_s=5)
    scored = (ScoredMention.model_validate_json(m.value) for m in produced)
    return pipeline, {m.id: m for m in scored}


async def test_the_default_pipeline_is_the_hybrid(tmp_path: Path) -> None:
    pipeline, scored = await run_through(
        tmp_path, ScorerSettings(data_dir=tmp_path, lexicon_processes=0)
    )
    assert pipeline.batcher is not None
    clear, unsure = scored["clear"].sentiment, scored["unsure"].sentiment
    assert clear.method == "lexicon" and clear.model_version == "vaderSentiment-3.3.2"
    assert unsure.method == "transformer"
    assert unsure.model_version is not None
    assert unsure.model_version.startswith("sentimon-minilm-tweets-1+")
    assert unsure.lexicon_compound > 0.3  # VADER's compound is kept beside the verdict
    assert unsure.fallback is False


async def test_lexicon_mode_routes_nothing(tmp_path: Path) -> None:
    pipeline, scored = await run_through(
        tmp_path, ScorerSettings(data_dir=tmp_path, lexicon_processes=0, scorer_mode="lexicon")
    )
    assert pipeline.batcher is None
    assert {m.sentiment.method for m in scored.values()} == {"lexicon"}


async def test_a_missing_model_stops_start_up_unless_lexicon_only_is_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "no-model"
    with pytest.raises(ModelLoadError, match="not found"):
        await run_through(tmp_path, ScorerSettings(data_dir=tmp_path, transformer_model=gone))
    with caplog.at_level(logging.ERROR):
        pipeline, scored = await run_through(
            fresh(tmp_path / "second"),
            ScorerSettings(
                data_dir=tmp_path / "second",
                lexicon_processes=0,
                transformer_model=gone,
                transformer_missing="lexicon",
            ),
        )
    assert "LEXICON-ONLY MODE" in caplog.text
    assert pipeline.batcher is None
    assert {m.sentiment.method for m in scored.values()} == {"lexicon"}


async def test_the_embedded_service_starts_hybrid_by_default(tmp_path: Path) -> None:
    emb = Embedded(
        ingest=IngestSettings(data_dir=tmp_path, demo=False),
        scorer=ScorerSettings(data_dir=tmp_path, lexicon_processes=0),
        api=ApiSettings(data_dir=tmp_path),
    )
    async with emb:
        assert emb.pipeline is not None and emb.pipeline.batcher is not None
        model_version = getattr(emb.pipeline.batcher.scorer, "model_version", "")
        assert model_version.startswith("sentimon-minilm-tweets-1+")
