"""Distributed mode end to end through a real Kafka broker and PostgreSQL, against raw
VADER on the same texts, in one run.

Run: ``make bench`` (or ``.venv/bin/python -m tests.bench.bench_distributed [--count N]
[--rate R] [--seconds S]``).

It starts its own broker (``deploy/kafka/kafka.sh``) and PostgreSQL (``deploy/postgres/
pg.sh``) on free ports in a temporary directory, then ``sentimon ingest`` and two
``sentimon scorer`` processes (the lexicon path: VADER in one worker process each),
exactly as the distributed tests do.

* Throughput: ``--count`` mentions (TweetEval's test tweets naming one of five brands,
  as in ``bench_pipeline``) pushed to the ingest's HTTP endpoint by 4 concurrent
  clients, from the first request sent to the last mention stored (committed in
  PostgreSQL with its rollups), as a ratio to a plain VADER loop over the same texts
  in this process.
* Latency: mentions offered at a fixed ``--rate`` for ``--seconds`` (a batch of 10 every
  10/rate s); per mention, from the moment its request was sent to the ``stored_at``
  the scorer's transaction wrote (when it became queryable); p50 and p95.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from services.core.storage.tables import mentions
from tests.bench.bench_pipeline import BRANDS, bench_vader, build_texts
from tests.fixtures.distributed import (
    PUSH_CHUNK,
    DistributedStack,
    ServiceProcess,
    close_stack,
    open_stack,
)
from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.live_server import wait_until
from tests.fixtures.postgres import PostgresServer, free_port

LATENCY_BATCH = 10


def docs_for(stack: DistributedStack, texts: Sequence[str], prefix: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        {
            "id": f"{stack.run_id}-{prefix}{i}",
            "source": "x",
            "text": text,
            "created_at": (now - timedelta(seconds=i % 3600)).isoformat(),
            "author": {"id": f"a{i % 500}", "handle": f"user{i % 500}", "followers": i % 9000},
            "metrics": {"likes": i % 7, "reposts": i % 3, "replies": i % 2},
        }
        for i, text in enumerate(texts)
    ]


def stored_count(stack: DistributedStack, prefix: str) -> int:
    from sqlalchemy import func

    with stack.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(mentions.c.mention_id.like(f"{stack.run_id}-{prefix}%"))
            ).scalar_one()
        )


def last_stored_at(stack: DistributedStack, prefix: str) -> datetime:
    from sqlalchemy import func

    with stack.engine.connect() as conn:
        last = conn.execute(
            select(func.max(mentions.c.stored_at)).where(
                mentions.c.mention_id.like(f"{stack.run_id}-{prefix}%")
            )
        ).scalar_one()
    assert isinstance(last, datetime)
    return last


def push_bodies(stack: DistributedStack, ingest: ServiceProcess, bodies: Sequence[bytes]) -> int:
    """POST each JSON body, 4 at a time over one client's kept-alive connections; returns
    the mentions the ingest took."""
    url = f"http://127.0.0.1:{ingest.port}/api/v1/mentions"
    headers = {
        "Authorization": f"Bearer {stack.ingest_key}",
        "Content-Type": "application/json",
    }
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    with httpx.Client(timeout=120, limits=limits) as client, ThreadPoolExecutor(4) as pool:

        def push(body: bytes) -> int:
            r = client.post(url, content=body, headers=headers)
            assert r.status_code == 202, r.text
            answer = r.json()
            assert answer["rejected"] == [], answer["rejected"][:3]
            return int(answer["accepted"]) + int(answer["duplicates"])

        return sum(pool.map(push, bodies))


def throughput(stack: DistributedStack, ingest: ServiceProcess, texts: Sequence[str]) -> float:
    """Mentions/s from the first request sent to the last mention stored. The bodies are
    encoded before the clock starts, the end is the last ``stored_at`` the scorers' write
    transactions gave, and the count is polled only every 0.5 s: this process's own work
    (it shares the machine's cores with the stack) is kept out of what is measured."""
    docs = docs_for(stack, texts, "t")
    bodies = [orjson.dumps(docs[i : i + PUSH_CHUNK]) for i in range(0, len(docs), PUSH_CHUNK)]
    started = datetime.now(UTC)
    assert push_bodies(stack, ingest, bodies) == len(docs)
    wait_until(
        lambda: stored_count(stack, "t") >= len(docs),
        timeout_s=600,
        what="every mention stored",
        interval_s=0.5,
    )
    return len(docs) / (last_stored_at(stack, "t") - started).total_seconds()


def latency(
    stack: DistributedStack,
    ingest: ServiceProcess,
    texts: Sequence[str],
    rate: float,
    seconds: float,
) -> tuple[float, float, int]:
    """p50 and p95 (seconds) of push → stored, and how many were measured."""
    n = int(rate * seconds) // LATENCY_BATCH * LATENCY_BATCH
    docs = docs_for(stack, [texts[i % len(texts)] for i in range(n)], "l")
    sent_at: dict[str, datetime] = {}
    url = f"http://127.0.0.1:{ingest.port}/api/v1/mentions"
    headers = {"Authorization": f"Bearer {stack.ingest_key}"}
    interval = LATENCY_BATCH / rate
    start = time.monotonic()

    def offer(k: int) -> None:
        batch = docs[k * LATENCY_BATCH : (k + 1) * LATENCY_BATCH]
        now = datetime.now(UTC)
        for d in batch:
            sent_at[d["id"]] = now
        r = client.post(url, json=batch, headers=headers)
        assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text

    # A fixed offered rate: batch k leaves at start + k·interval, whatever the answers do.
    # One client (its connections kept alive) for every request: a client per request
    # cost this process most of a core, which the stack it measures then lacked.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(16) as pool:
        futures = []
        for k in range(n // LATENCY_BATCH):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # ok-sleep: paces the offered load; waits for no result
            futures.append(pool.submit(offer, k))
        for f in futures:
            f.result()
    wait_until(lambda: stored_count(stack, "l") >= n, timeout_s=300, what="latency mentions stored")
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(mentions.c.mention_id, mentions.c.stored_at).where(
                mentions.c.mention_id.like(f"{stack.run_id}-l%")
            )
        ).all()
    lat = sorted((stored - sent_at[mid]).total_seconds() for mid, stored in rows)
    return lat[len(lat) // 2], lat[int(len(lat) * 0.95)], len(lat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100.0, help="offered mentions/s")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    texts = build_texts(args.count)
    vader = max(bench_vader(texts) for _ in range(2))

    root = Path(tempfile.mkdtemp(prefix="sentimon-bench-"))
    kafka = KafkaBroker(root / "kafka", free_port(), free_port())
    pg_dir = Path(tempfile.mkdtemp(prefix="sentimon-bench-pg-"))
    postgres = PostgresServer(pg_dir, free_port())
    try:
        kafka.start()
        postgres.start()
        stack = open_stack(root, kafka, postgres, brands=BRANDS, SENTIMON_LOG_LEVEL="WARNING")
        try:
            ingest = stack.service("ingest", "ingest")
            scorers = [stack.service("scorer", f"scorer-{n}") for n in (1, 2)]
            for p in (ingest, *scorers):
                p.start()
            for p in (ingest, *scorers):
                p.wait_ready()
            e2e = throughput(stack, ingest, texts)
            p50, p95, measured = latency(stack, ingest, texts, args.rate, args.seconds)
        finally:
            close_stack(stack)
    finally:
        try:
            kafka.stop()
        finally:
            postgres.stop(immediate=True)
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(pg_dir, ignore_errors=True)

    print(f"\nDistributed mode (Kafka, PostgreSQL, 2 scorer processes), {args.count:,} mentions")
    print("| | mentions/s | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| raw VADER, one loop (baseline) | {vader:,.0f} | 1.00× |")
    print(f"| ingest → Kafka → 2 scorers → PostgreSQL | {e2e:,.0f} | {e2e / vader:.2f}× |")
    print(
        f"\ningest → queryable at {args.rate:g} mentions/s offered for {args.seconds:g} s "
        f"({measured:,} mentions): p50 {p50 * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms"
    )


if __name__ == "__main__":
    main()
