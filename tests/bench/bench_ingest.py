"""The ingest path alone, per mention: a JSON Lines file read by the file source, validated,
deduplicated and produced to the journaled in-memory bus, as ``sentimon run`` does it.

Run: ``.venv/bin/python -m tests.bench.bench_ingest [--count N] [--rounds R]``.

``bench_pipeline``'s mentions (TweetEval test tweets naming a brand), written once; each
round drains the file through ``run_source`` into a fresh ``JournaledBus`` (``mentions.raw``
journaled; nobody consumes, so the bus keeps its newest messages per partition and never
blocks). CPU time of the process per mention (``time.process_time``: the journal's writes
included), median of the rounds. The baseline in the same run: the same lines parsed by
``Mention.model_validate_json`` and serialised by ``model_dump_json`` in a plain loop (the
validation and the serialisation any design of this path keeps).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.core.bus.journal import JournaledBus
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.topics import DEFAULT_TOPICS, DLQ, RAW
from services.ingest.accept import MentionPublisher
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.file import FileSource
from services.ingest.worker import run_source
from tests.bench.bench_pipeline import build_texts, write_jsonl


async def drain(path: Path, journal_dir: Path, n: int) -> float:
    bus = await JournaledBus.open(journal_dir, DEFAULT_TOPICS, journaled=(RAW, DLQ))
    try:
        metrics = Metrics(CollectorRegistry())
        publisher = MentionPublisher(await bus.producer(), RecentKeys(100_000), metrics)
        t0 = time.process_time()
        stats = await run_source(FileSource(path), publisher, metrics)
        elapsed = time.process_time() - t0
        assert stats.accepted == n, stats
    finally:
        await bus.close()
    return elapsed / n * 1e6


def baseline(path: Path, n: int) -> float:
    lines = path.read_bytes().splitlines()
    t0 = time.process_time()
    for line in lines:
        Mention.model_validate_json(line).model_dump_json()
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=24_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentions.jsonl"
        write_jsonl(path, build_texts(args.count))
        ingest: list[float] = []
        base: list[float] = []
        for r in range(args.rounds):
            base.append(baseline(path, args.count))
            ingest.append(asyncio.run(drain(path, Path(tmp) / f"bus{r}", args.count)))
    b, i = statistics.median(base), statistics.median(ingest)
    print(f"ingest path, {args.count} mentions, CPU µs per mention, median of {args.rounds}")
    print(f"  validate + serialise, plain loop (baseline) {b:6.1f} µs  (runs: {fmt(base)})")
    print(f"  file source → accept → journaled bus       {i:6.1f} µs  (runs: {fmt(ingest)})")
    print(f"  the path's own cost beyond the baseline     {i - b:6.1f} µs")


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
