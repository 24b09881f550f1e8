"""Poison among good mentions in distributed mode (issue 14): HTTP push → ingest →
Kafka → two scorers → PostgreSQL. The edge refuses what the store cannot hold, naming
the field; what the store refuses anyway (a trigger here: "something the edge did not
foresee") is dead-lettered with PostgreSQL's reason; every good mention is stored once,
and both scorers stay up and ready."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from services.core.storage.tables import dead_letters
from tests.fixtures.distributed import DistributedStack
from tests.fixtures.live_server import wait_until
from tests.fixtures.store_refusal import POISON_PREFIX, REFUSAL_MESSAGE, install_refusal_trigger
from tests.test_poison_mentions import EDGE_POISON

GOOD = 1_000


def test_poison_never_stops_distributed_scoring(distributed_stack: DistributedStack) -> None:
    stack = distributed_stack
    install_refusal_trigger(stack.engine)
    ingest, scorers = stack.start_ingest_and_scorers()

    good = stack.mention_docs(GOOD)
    template = good[0]
    store_poison = [{**template, "id": f"{POISON_PREFIX}-{stack.run_id}-{i}"} for i in range(3)]
    edge_poison = [
        {**doc, "id": f"{stack.run_id}-{doc['id']}", "text": f"{stack.brand} {doc['text']}"}
        for doc, _ in EDGE_POISON
    ]
    body: list[dict[str, Any]] = list(good)
    for k, doc in enumerate(edge_poison + store_poison):
        body.insert(41 + k * 89, doc)
    r = httpx.post(
        f"http://127.0.0.1:{ingest.port}/api/v1/mentions",
        json=body,
        headers={"Authorization": f"Bearer {stack.ingest_key}"},
        timeout=120,
    )
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["accepted"] == GOOD + len(store_poison)
    errors = {body[x["index"]]["id"]: x["error"] for x in answer["rejected"]}
    assert len(errors) == len(edge_poison)
    for doc, (_, field) in zip(edge_poison, EDGE_POISON, strict=True):
        assert errors[doc["id"]].startswith(f"{field}: "), errors

    wait_until(lambda: stack.stored() >= GOOD, timeout_s=300, what="the good mentions stored")

    def letters() -> dict[str, str]:
        with stack.engine.connect() as conn:
            rows = conn.execute(select(dead_letters.c.payload, dead_letters.c.reason)).all()
        return {payload: reason for payload, reason in rows}

    wait_until(lambda: len(letters()) >= 3, timeout_s=120, what="refused mentions dead-lettered")
    got = letters()
    assert len(got) == 3
    for payload, reason in got.items():
        assert POISON_PREFIX in payload
        assert reason.startswith("store refused: ") and REFUSAL_MESSAGE in reason, reason
    assert sorted(stack.stored_ids()) == sorted(d["id"] for d in good)
    for s in scorers:
        assert s.ready(), s.log_tail()
    for p in (ingest, *scorers):
        assert p.terminate() == 0, p.log_tail()
