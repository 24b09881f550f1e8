"""A Kafka outage, as an operator sees it (issue 14 §5): the broker of a running ingest and
scorer is stopped, then started again.

While it is away every ``/readyz`` is 503 naming the broker, ``sentimon_bus_broker_up``
is 0 and ``sentimon_bus_broker_unavailable_total`` climbs, a push is answered 503 with
Retry-After at once (it hung 8–15 s before), and the logs say so in a few lines (each
process wrote ~100 aiokafka ERROR lines a second before). Once it is back every process
is ready again, says for how long it was away, takes pushes, and every mention answered
202 is stored exactly once.
"""

from __future__ import annotations

import re
import time
from functools import partial

import httpx

from tests.fixtures.distributed import DistributedStack, ServiceProcess
from tests.fixtures.live_server import wait_until

OUTAGE_TIMEOUT_S = 60.0
# Lines a process may write while the broker is away, however long (the first record
# of each kind aiokafka logs, and the bus's own line); before: ~100 a second.
MAX_OUTAGE_LINES = 40


def metric(process: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples on a process's ``/metrics`` that carry ``labels``."""
    text = httpx.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        given = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(given.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def problems(process: ServiceProcess) -> list[str] | None:
    """What ``/readyz`` names when it is 503; ``None`` while it is 200."""
    r = httpx.get(f"http://127.0.0.1:{process.port}/readyz", timeout=5)
    if r.status_code == 200:
        return None
    assert r.status_code == 503, r.text
    found: list[str] = r.json()["problems"]
    return found


def log_lines(process: ServiceProcess) -> list[str]:
    return process.log_path.read_text(errors="replace").splitlines()


def names_problem(process: ServiceProcess, problem: str) -> bool:
    return any(problem in found for found in problems(process) or [])


def probes_failed(process: ServiceProcess, at_least: int) -> bool:
    failed = metric(process, "sentimon_bus_broker_unavailable_total", operation="metadata")
    return failed >= at_least


def says_back(process: ServiceProcess) -> bool:
    return any("reachable again after" in line for line in log_lines(process))


def test_a_broker_outage_is_reported_once_refused_fast_and_loses_nothing(
    distributed_stack: DistributedStack,
) -> None:
    stack = distributed_stack
    kafka = stack.kafka
    ingest, scorers = stack.start_ingest_and_scorers(scorers=1)
    processes = [ingest, *scorers]
    assert stack.push(ingest, stack.mention_docs(200)) == 200
    wait_until(lambda: stack.stored() == 200, timeout_s=120, what="200 mentions stored")
    for p in processes:
        assert metric(p, "sentimon_bus_broker_up") == 1, p.name
    before = {p.name: len(log_lines(p)) for p in processes}
    url = f"http://127.0.0.1:{ingest.port}/api/v1/mentions"
    headers = {"Authorization": f"Bearer {stack.ingest_key}"}
    unreachable = f"kafka: broker {kafka.bootstrap} unreachable"

    kafka.stop()
    try:
        stopped = time.monotonic()
        for p in processes:
            wait_until(
                partial(names_problem, p, unreachable),
                timeout_s=OUTAGE_TIMEOUT_S,
                what=f"{p.name} not ready, naming the broker",
            )
        # Let the outage last a few probes, so a flood would have shown.
        for p in processes:
            wait_until(
                partial(probes_failed, p, 5),
                timeout_s=OUTAGE_TIMEOUT_S,
                what=f"{p.name} counting the failed probes",
            )
            assert metric(p, "sentimon_bus_broker_up") == 0, p.name

        started = time.monotonic()
        r = httpx.post(url, json=stack.mention_docs(10, start=1_000), headers=headers, timeout=30)
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert unreachable in r.json()["detail"]
        assert took < 2.0, f"a push during the outage took {took:.1f} s"
        assert metric(ingest, "sentimon_bus_broker_unavailable_total", operation="send") >= 1

        outage_s = time.monotonic() - stopped
        for p in processes:
            written = log_lines(p)[before[p.name] :]
            assert len(written) <= MAX_OUTAGE_LINES, (
                f"{p.name} wrote {len(written)} lines in {outage_s:.0f} s of outage:\n"
                + "\n".join(written[-20:])
            )
            assert sum(unreachable in line for line in written) == 1, p.name
    finally:
        kafka.ensure_running()

    for p in processes:
        p.wait_ready()
        wait_until(
            partial(says_back, p),
            timeout_s=OUTAGE_TIMEOUT_S,
            what=f"{p.name} saying the broker is back",
        )
        back = [line for line in log_lines(p) if "reachable again after" in line]
        assert len(back) == 1 and "repeated aiokafka errors suppressed" in back[0], back
        assert metric(p, "sentimon_bus_broker_up") == 1, p.name

    # Pushes are taken again, and nothing answered 202 was lost or doubled: the 10
    # refused during the outage are pushed again with the next ones.
    assert stack.push(ingest, stack.mention_docs(300, start=1_000)) == 300
    wait_until(lambda: stack.stored() == 500, timeout_s=180, what="500 mentions stored")
    ids = stack.stored_ids()
    assert len(ids) == len(set(ids)) == 500
