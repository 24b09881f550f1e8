"""Distributed mode against the real servers: every mention stored exactly once.

Two ``sentimon scorer`` processes share one consumer group over a 6-partition
``mentions.raw``; 20,000 mentions are pushed through ``sentimon ingest``'s HTTP endpoint.
Whatever happens mid-stream (a scorer SIGKILLed and restarted, the broker restarted,
PostgreSQL stopped for 30 s), the database must end with each of the 20,000 exactly
once, and the per-minute rollups must add up to the same totals. Duplicates on the bus
are expected; duplicates or gaps in the database are failures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from services.core.topics import RAW
from tests.fixtures.distributed import DistributedStack, ServiceProcess
from tests.fixtures.live_server import wait_until

TOTAL = 20_000
# A fault strikes once this many are stored: mid-stream, with most of the stream to come.
FAULT_AT = 4_000
DRAIN_TIMEOUT_S = 1200.0
# No mention stored for this long while some are missing is a failure, however slow the machine.
STALL_S = 180.0
PG_OUTAGE_S = 30.0

Fault = Callable[[DistributedStack, list[ServiceProcess]], None]


def metric(process: ServiceProcess, name: str) -> float:
    """The sum of a counter's samples on a process's ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def run_scale_out(stack: DistributedStack, fault: Fault | None = None) -> None:
    ingest, scorers = stack.start_ingest_and_scorers()
    docs = stack.mention_docs(TOTAL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pushing = pool.submit(stack.push, ingest, docs)
        if fault is not None:
            wait_until(
                lambda: stack.stored() >= FAULT_AT or pushing.done(),
                timeout_s=DRAIN_TIMEOUT_S,
                what=f"{FAULT_AT} mentions stored before the fault",
            )
            assert stack.stored() < TOTAL, "the fault must strike mid-stream"
            fault(stack, scorers)
        assert pushing.result(timeout=DRAIN_TIMEOUT_S) == TOTAL
    wait_all_stored(stack)
    assert_exactly_once(stack)
    # The group shared the work: each live scorer stored some of it.
    live = [s for s in scorers if s.proc is not None and s.proc.poll() is None]
    assert len(live) == 2
    if fault is None:
        assert all(metric(s, "sentimon_mentions_stored_total") > 0 for s in live)
    # A graceful stop: SIGTERM, the batch in hand committed, exit status 0.
    for p in (ingest, *scorers):
        assert p.terminate() == 0, p.log_tail()


def wait_all_stored(stack: DistributedStack) -> None:
    """Wait until all TOTAL are stored; fail once no mention was stored for STALL_S (a
    stall, not a slow machine) or after DRAIN_TIMEOUT_S in all."""
    progress = {"count": -1, "at": time.monotonic()}

    def done() -> bool:
        n = stack.stored()
        now = time.monotonic()
        if n > progress["count"]:
            progress.update(count=n, at=now)
        elif now - progress["at"] > STALL_S:
            raise AssertionError(
                f"stalled at {n} of {TOTAL} stored for {STALL_S:.0f} s\n{stack.logs()}"
            )
        return n >= TOTAL

    try:
        wait_until(done, timeout_s=DRAIN_TIMEOUT_S, what=f"{TOTAL} stored", interval_s=0.25)
    except TimeoutError as e:
        raise AssertionError(f"{e}: {stack.stored()} stored\n{stack.logs()}") from e


def assert_exactly_once(stack: DistributedStack) -> None:
    ids = stack.stored_ids()
    expected = {f"{stack.run_id}-{i}" for i in range(TOTAL)}
    assert len(ids) == len(set(ids)), "a mention is stored twice"
    assert set(ids) == expected, f"missing: {sorted(expected - set(ids))[:5]}"
    positive, neutral, negative = stack.label_counts()
    assert positive + neutral + negative == TOTAL
    assert min(positive, neutral, negative) > 0
    assert stack.rollup_total() == (TOTAL, positive, neutral, negative)


def test_two_scorers_store_every_mention_exactly_once(
    distributed_stack: DistributedStack,
) -> None:
    api = distributed_stack.service("api", "api")
    api.start()
    run_scale_out(distributed_stack)
    # `sentimon api` serves what the scorers stored, from the rollups.
    api.wait_ready()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    r = httpx.get(
        f"http://127.0.0.1:{api.port}/api/v1/sentiment",
        params={
            "brand": distributed_stack.brand,
            "from": (now - timedelta(hours=6)).isoformat(),
            "to": (now + timedelta(minutes=2)).isoformat(),
            "interval": "1d",
        },
        headers={"Authorization": f"Bearer {distributed_stack.viewer_key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["total"]["mentions"] == TOTAL
    assert api.terminate() == 0, api.log_tail()
    # The topics the processes created have the configured partitions.
    raw = distributed_stack.kafka.directory / "data"
    assert sorted(p.name for p in raw.glob(f"{RAW}-*")) == [f"{RAW}-{n}" for n in range(6)]


def test_a_scorer_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
    distributed_stack: DistributedStack,
) -> None:
    def kill_and_restart(stack: DistributedStack, scorers: list[ServiceProcess]) -> None:
        scorers[0].kill()  # SIGKILL: its uncommitted batches are delivered again
        scorers[0].start()
        scorers[0].wait_ready()

    run_scale_out(distributed_stack, kill_and_restart)


def test_the_broker_restarted_mid_stream_loses_and_doubles_nothing(
    distributed_stack: DistributedStack,
) -> None:
    def restart_broker(stack: DistributedStack, _scorers: list[ServiceProcess]) -> None:
        stack.kafka.restart()

    run_scale_out(distributed_stack, restart_broker)


def test_postgresql_stopped_for_30_s_mid_stream_loses_and_doubles_nothing(
    distributed_stack: DistributedStack,
) -> None:
    def stop_postgres(stack: DistributedStack, scorers: list[ServiceProcess]) -> None:
        stack.postgres.stop(immediate=True)
        stopped_at = time.monotonic()

        def outage_seen_for_30_s() -> bool:
            # The outage is the scenario: it lasts PG_OUTAGE_S, during which the scorers
            # must stay up and say they are not ready (a database problem).
            for s in scorers:
                assert s.proc is not None and s.proc.poll() is None, s.log_tail()
                r = httpx.get(f"http://127.0.0.1:{s.port}/readyz", timeout=5)
                assert r.status_code == 503 and "database" in r.text, r.text
            return time.monotonic() - stopped_at >= PG_OUTAGE_S

        wait_until(
            outage_seen_for_30_s, timeout_s=PG_OUTAGE_S + 30, what="30 s of outage", interval_s=1
        )
        stack.postgres.start()

    run_scale_out(distributed_stack, stop_postgres)
    # The outage is told with one traceback per scorer, then a line per restart, and no
    # task's failure goes unretrieved (a second traceback of the same error).
    for s in distributed_stack.processes:
        log = s.log_path.read_text(errors="replace")
        assert "Task exception was never retrieved" not in log, s.log_tail()
        assert log.count("restarting from the last committed offsets") <= 1, s.log_tail(80)
