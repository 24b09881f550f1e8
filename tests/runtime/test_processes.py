"""The processes' shell (``services/runtime``): the prestart wait, the topics, the
PostgreSQL script, the ingest's 503 while the database is away."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from services.core.topics import DLQ, RAW, SCORED
from services.runtime.bus import distributed_topics
from services.runtime.database import wait_for_database
from tests.fixtures.live_server import wait_until
from tests.fixtures.postgres import PG_SH, PostgresServer, free_port

REPO = Path(__file__).resolve().parents[1]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_topics_have_the_configured_partitions() -> None:
    specs = {s.name: s.partitions for s in distributed_topics(6)}
    assert specs == {RAW: 6, SCORED: 6, DLQ: 1}


def test_wait_for_database_returns_once_it_answers(pg_database: str) -> None:
    engine = create_engine(pg_database)
    try:
        assert wait_for_database(engine, 5) == 1
    finally:
        engine.dispose()


def test_wait_for_database_gives_up_after_its_bound_naming_the_error() -> None:
    # A port nothing listens on: every attempt fails at once.
    engine = create_engine(
        f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/x", connect_args={"connect_timeout": 2}
    )
    t = FakeTime()
    with pytest.raises(TimeoutError, match=r"not reachable after 3 s \(7 attempts\).*Operational"):
        wait_for_database(engine, 3, interval_s=0.5, sleep=t.sleep, monotonic=t.monotonic)
    assert sum(t.slept) == pytest.approx(3)


def test_migrate_waits_for_a_database_that_starts_late(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The prestart step: ``sentimon migrate --wait`` started before the database."""
    url = postgres_server.create_database("late")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env["SENTIMON_DATABASE_URL"] = url
    log_path = tmp_path / "migrate.log"
    postgres_server.stop()
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "migrate", "--wait", "90"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            lambda: "waiting for the database" in log_path.read_text(),
            timeout_s=60,
            what="migrate waiting for the database",
        )
    finally:
        postgres_server.start()
    assert proc.wait(timeout=120) == 0, log_path.read_text()
    assert "database is at the newest schema" in log_path.read_text()
    engine = create_engine(url)
    try:
        assert "mentions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        postgres_server.drop_database(url)


def test_migrate_fails_clearly_when_the_database_never_comes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env["SENTIMON_DATABASE_URL"] = f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/x"
    r = subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate", "--wait", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert "database not reachable after 1 s" in r.stderr


def test_pg_script_is_idempotent() -> None:
    state = Path(tempfile.mkdtemp(prefix="sentimon-pg-script-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PG_DIR=str(state), PG_PORT=str(free_port()), PG_PASSWORD="pw-test")

    def pg(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own script)
            [str(PG_SH), action], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    try:
        assert pg("status").returncode == 3
        first = pg("start")
        assert first.returncode == 0, first.stderr
        assert pg("start").stdout.startswith("PostgreSQL already running")
        assert pg("status").returncode == 0
        url = pg("url").stdout.strip()
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT current_database()").scalar() == "sentimon"
        finally:
            engine.dispose()
        assert pg("stop").returncode == 0
        assert pg("stop").stdout.strip() == "PostgreSQL not running"
        assert pg("status").returncode == 3
    finally:
        pg("stop")
        shutil.rmtree(state, ignore_errors=True)


def test_ingest_answers_503_while_the_database_is_away() -> None:
    """Keys cannot be checked: the push is refused with a retryable status, not a 500."""
    from unittest.mock import Mock

    from prometheus_client import CollectorRegistry
    from starlette.testclient import TestClient

    from services.core.clock import SystemClock
    from services.core.metrics import Metrics
    from services.core.storage.keys import KeyStore
    from services.ingest.http import PushEndpoint
    from services.ingest.main import create_ingest_app
    from services.runtime.probes import Probes

    engine = create_engine(
        f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/x", connect_args={"connect_timeout": 2}
    )
    metrics = Metrics(CollectorRegistry())
    endpoint = PushEndpoint(
        publisher=Mock(),  # never reached: the key cannot be checked
        keys=KeyStore(engine, SystemClock()),
        metrics=metrics,
        max_body_bytes=1 << 20,
        max_items=100,
    )
    app = create_ingest_app(Probes(engine, metrics), endpoint)
    with TestClient(app) as client:
        r = client.post("/api/v1/mentions", json=[], headers={"Authorization": "Bearer smk_x_y"})
    engine.dispose()
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.json()["errors"] == [
        {"field": "database", "message": "unavailable, try again shortly"}
    ]
