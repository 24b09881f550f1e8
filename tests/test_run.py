"""``sentimon run`` as a user runs it: first-start key, a taken port, and SIGTERM that
stores everything accepted before the process exits."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from services.core.clock import SystemClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.tables import mentions
from tests.fixtures.live_server import _free_port, _ready, start_server, wait_until
from tests.fixtures.mentions import mention_doc

KEY = re.compile(r"Admin API key \(shown only this once, keep it\): (smk_\S+)")


def test_sigterm_drains_what_was_accepted_and_the_key_is_shown_once(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "run.log"
    data.mkdir()
    engine = make_engine(sqlite_url(data))
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", "acme")  # tracked before the start
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(data, port, log)
    try:
        wait_until(lambda: _ready(base, proc, log), timeout_s=60, what="sentimon run ready")
        match = wait_until(lambda: KEY.search(log.read_text()), timeout_s=10, what="admin key")
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        t0 = datetime(2026, 3, 1, tzinfo=UTC)
        docs = [
            mention_doc(
                id=f"t{i}",
                text=f"Acme is great, take {i}",
                created_at=(t0 + timedelta(seconds=i)).isoformat(),
            )
            for i in range(5_000)
        ]
        r = httpx.post(f"{base}/api/v1/mentions", json=docs, headers=headers, timeout=60)
        assert r.json()["accepted"] == 5_000
    finally:
        proc.send_signal(signal.SIGTERM)  # at once: most of the 5,000 are still in the bus
        assert proc.wait(timeout=60) == 0
    assert "stopping: storing what is in flight" in log.read_text()

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(mentions)).scalar_one())

    # Either the drain stored everything, or (on a machine too loaded to drain within
    # the stop's deadline) it said so and left the rest in the journal for the next start.
    first = stored()
    assert first == 5_000 or "kept in the journal for the next start" in log.read_text(), first

    # A second start keeps the first admin key and shows no new one.
    proc = start_server(data, port, log)
    try:
        wait_until(lambda: _ready(base, proc, log), timeout_s=60, what="second start ready")
        wait_until(lambda: stored() >= 5_000, timeout_s=60, what="journal replayed")
        with engine.connect() as conn:
            distinct = select(func.count(func.distinct(mentions.c.mention_id)))
            ids = conn.execute(distinct).scalar_one()
        assert stored() == ids == 5_000  # nothing accepted lost, nothing doubled
        assert len(KEY.findall(log.read_text())) == 1
        assert httpx.get(f"{base}/api/v1/brands", headers=headers).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    engine.dispose()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "services.cli",
                "run",
                "--no-demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "d"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Admin API key" not in result.stdout
