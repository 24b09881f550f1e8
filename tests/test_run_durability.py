"""A 202 from ``sentimon run`` means durable (issue 14): SIGKILL the process while
mentions it accepted are still waiting to be scored, start it again on the same data
directory, and every mention answered 202 is stored exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from services.core.storage.db import make_engine, sqlite_url
from services.core.storage.tables import brand_minute_rollups, mentions
from tests.fixtures.live_server import (
    STARTUP_TIMEOUT_S,
    _free_port,
    _prepare,
    _ready,
    _stop,
    start_server,
    wait_until,
)
from tests.fixtures.mentions import mention_doc

REQUESTS = 40
PER_REQUEST = 250
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def docs_for(request: int) -> list[dict[str, Any]]:
    return [
        mention_doc(
            id=f"k{request}-{i}",
            text=f"Acme support took {i} minutes, great but a bit slow",
            created_at=(T0 + timedelta(seconds=request * PER_REQUEST + i)).isoformat(),
        )
        for i in range(PER_REQUEST)
    ]


def test_sigkill_loses_nothing_answered_202(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "run.log"
    keys = _prepare(data)
    engine = make_engine(sqlite_url(data))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    lock = threading.Lock()

    def push() -> None:
        with httpx.Client(base_url=base, headers=keys.header("ingest"), timeout=30) as c:
            for n in range(REQUESTS):
                batch = docs_for(n)
                try:
                    r = c.post("/api/v1/mentions", json=batch)
                except httpx.TransportError:
                    return  # killed: what was not answered 202 was never promised
                assert r.status_code == 202, r.text
                assert r.json()["accepted"] == PER_REQUEST
                with lock:
                    acknowledged.extend(d["id"] for d in batch)

    def stored_count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(mentions)).scalar_one())

    def stored_ids() -> set[str]:
        with engine.connect() as conn:
            return set(conn.execute(select(mentions.c.mention_id)).scalars())

    proc = start_server(data, port, log)
    try:
        wait_until(lambda: _ready(base, proc, log), timeout_s=STARTUP_TIMEOUT_S, what="ready")
        pusher = threading.Thread(target=push)
        pusher.start()
        # Kill mid-stream: thousands answered 202, most not yet scored.
        wait_until(lambda: len(acknowledged) >= 3_000, timeout_s=120, what="3,000 answered 202")
        proc.kill()
        proc.wait(timeout=30)
        pusher.join(timeout=60)
        with lock:
            promised = set(acknowledged)
        assert stored_count() < len(promised), "the kill must strike with work in hand"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    proc = start_server(data, port, log)
    try:
        wait_until(lambda: _ready(base, proc, log), timeout_s=STARTUP_TIMEOUT_S, what="restart")
        # Waits on the promise itself: the stream's count can reach it with mentions that
        # were journaled but whose 202 never reached the client (they count too, once).
        wait_until(
            lambda: promised <= stored_ids(),
            timeout_s=600,
            what="every mention answered 202 stored after the restart",
        )
        with engine.connect() as conn:
            rows = list(conn.execute(select(mentions.c.mention_id)).scalars())
            acme = conn.execute(
                select(func.sum(brand_minute_rollups.c.mentions)).where(
                    brand_minute_rollups.c.brand == "Acme"
                )
            ).scalar_one()
        assert promised <= set(rows)
        assert len(rows) == len(set(rows)), "a mention was stored twice"
        assert acme == len(rows), "rollups count each stored mention once"
    finally:
        _stop(proc)
        engine.dispose()
