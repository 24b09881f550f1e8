"""Scoring in worker processes gives what scoring inline gives, and survives a worker dying."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import orjson
import pytest

from services.scorer.steps.lexicon import ChunkItem, ScoringConfig
from services.scorer.workers import BrandSet, LexiconWorkers, WorkerDiedError, run_chunk
from tests.fixtures.mentions import mention_doc

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BRANDS = BrandSet(1, (("Acme", "acme OR @acmehq"), ("Globex", "globex")))
TEXTS = ["Acme is wonderful", "@acmehq lost my data, awful", "nothing here", "Globex and Acme, meh"]


def chunk() -> list[ChunkItem]:
    return [
        ChunkItem("x", f"w{i}", t, orjson.dumps(mention_doc(id=f"w{i}", text=t)))
        for i, t in enumerate(TEXTS)
    ]


async def test_a_worker_process_scores_like_the_inline_path() -> None:
    runner = LexiconWorkers(processes=1)
    try:
        remote = await runner.score(chunk(), BRANDS, ScoringConfig(), NOW, keep_texts=True)
    finally:
        runner.close()
    local = run_chunk(chunk(), BRANDS, ScoringConfig(), NOW, True)
    strip = [r._replace(seconds=0.0) for r in remote.results]
    assert strip == [r._replace(seconds=0.0) for r in local.results]
    assert remote.unmatched == 1
    assert [r.brands for r in remote.results] == [("Acme",), ("Acme",), ("Acme", "Globex")]
    assert remote.results[1].text == "brand lost my data, awful"
    # Two brands: scored toward each, the model's marked texts made (issue 16).
    assert [(t.brand, "$T$" in t.text) for t in remote.results[2].targets] == [
        ("Acme", True),
        ("Globex", True),
    ]


async def test_a_new_brand_set_is_compiled_by_the_worker() -> None:
    runner = LexiconWorkers(processes=1)
    try:
        before = await runner.score(chunk(), BRANDS, ScoringConfig(), NOW)
        fewer = BrandSet(2, (("Globex", "globex"),))
        after = await runner.score(chunk(), fewer, ScoringConfig(), NOW)
    finally:
        runner.close()
    assert len(before.results) == 3
    assert [r.brands for r in after.results] == [("Globex",)]


async def test_a_dead_worker_fails_its_chunk_and_is_replaced() -> None:
    runner = LexiconWorkers(processes=1)
    try:
        await runner.score(chunk(), BRANDS, ScoringConfig(), NOW)  # starts the worker
        (worker,) = runner._workers
        assert worker.process.pid is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        with pytest.raises(WorkerDiedError):
            await runner.score(chunk(), BRANDS, ScoringConfig(), NOW)
        again = await runner.score(chunk(), BRANDS, ScoringConfig(), NOW)  # a new worker
        assert len(again.results) == 3
    finally:
        runner.close()


async def test_start_returns_once_every_worker_has_loaded() -> None:
    runner = LexiconWorkers(processes=2)
    try:
        await runner.start()
        # Each worker answered its empty chunk: both are up before any chunk is scored.
        assert len(runner._workers) == 2
        assert all(w.process.is_alive() and not w.pending for w in runner._workers)
        pids = {w.process.pid for w in runner._workers}
        done = await asyncio.gather(
            *(runner.score(chunk(), BRANDS, ScoringConfig(), NOW) for _ in range(4))
        )
        assert [len(r.results) for r in done] == [3, 3, 3, 3]
        assert {w.process.pid for w in runner._workers} == pids  # no new worker was needed
    finally:
        runner.close()


def test_start_with_no_worker_processes_loads_inline() -> None:
    runner = LexiconWorkers(processes=0)
    asyncio.run(runner.start())
    assert runner._workers == []


async def test_a_failure_inside_the_worker_is_raised_here() -> None:
    runner = LexiconWorkers(processes=1)
    bad = BrandSet(3, (("Bad, name", "bad"),))  # refused by BrandDefinition in the worker
    try:
        with pytest.raises(RuntimeError, match="scoring worker failed: BrandDefinitionError"):
            await runner.score(chunk(), bad, ScoringConfig(), NOW)
    finally:
        runner.close()


def test_two_brand_sets_with_the_same_version_are_not_confused() -> None:
    # Two pipelines in one process (tests, or inline scoring) number their sets alike.
    first = run_chunk(chunk(), BrandSet(1, (("Acme", "acme"),)), ScoringConfig(), NOW, False)
    other = run_chunk(chunk(), BrandSet(1, (("Globex", "globex"),)), ScoringConfig(), NOW, False)
    assert [r.brands for r in first.results] == [("Acme",), ("Acme",)]
    assert [r.brands for r in other.results] == [("Globex",)]


async def test_chunks_larger_than_the_pipe_never_deadlock_the_loop() -> None:
    # Mentions of 10,000 characters: each chunk (text and raw document) outgrows the pipe,
    # and its result too. Writing chunk k+1 while the worker writes chunk k's result used
    # to block the event loop for good (it alone reads the results).
    big = "Acme support is great but slow. " * 312
    chunks = [
        [
            ChunkItem("x", f"b{k}-{i}", big, orjson.dumps(mention_doc(id=f"b{k}-{i}", text=big)))
            for i in range(150)
        ]
        for k in range(3)
    ]
    runner = LexiconWorkers(processes=1)
    try:
        async with asyncio.timeout(120):
            results = await asyncio.gather(
                *(runner.score(c, BRANDS, ScoringConfig(), NOW, keep_texts=True) for c in chunks)
            )
    finally:
        runner.close()
    assert [len(r.results) for r in results] == [150, 150, 150]
    assert all(r.brands == ("Acme",) for res in results for r in res.results)
