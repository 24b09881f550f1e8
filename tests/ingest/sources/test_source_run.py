"""``sentimon run --sources sources.yaml``: one line of configuration points a real run
at feeds (here a fake feed server on 127.0.0.1); a bad file is refused before start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from services.cli import main
from services.core.clock import SystemClock
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate, sqlite_url
from services.core.storage.tables import mentions, source_checkpoints
from tests.fixtures.live_server import REPO_ROOT, _free_port, _ready, wait_until
from tests.ingest.sources.fakes import FakePlatform, Reply, fixture_bytes


def test_run_reads_the_feeds_of_a_sources_file(tmp_path: Path, platform: FakePlatform) -> None:
    platform.on("GET", "/alerts.atom", Reply(200, fixture_bytes("rss", "google_alerts.atom")))
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"- name: alerts\n  kind: rss\n  feeds:\n    - url: {platform.base_url}/alerts.atom\n"
    )
    data, log = tmp_path / "data", tmp_path / "run.log"
    data.mkdir()
    engine = make_engine(sqlite_url(data))
    migrate(engine)
    BrandStore(engine, SystemClock()).create("Acme", '"acme"')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env |= {"SENTIMON_LOG_LEVEL": "WARNING", "SENTIMON_SCORER_MODE": "lexicon"}
    env["SENTIMON_SOURCES_FILE"] = str(sources)  # the one line of configuration
    env["SENTIMON_SOURCE_ALLOW_LOOPBACK"] = "true"  # the fake feed is on 127.0.0.1
    command = [sys.executable, "-m", "services.cli", "run", "--no-demo", "--port", str(port)]
    command += ["--data-dir", str(data)]
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 (a fixed command line)
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        # Generous: a loaded CI machine can take a minute to import and migrate.
        wait_until(lambda: _ready(base, proc, log), timeout_s=150, what="sentimon run ready")

        def stored() -> list[str]:
            with engine.connect() as conn:
                return list(conn.execute(select(mentions.c.mention_id)).scalars())

        ids: list[str] = wait_until(
            lambda: stored() if len(stored()) == 3 else None, timeout_s=30, what="stored"
        )
        assert all(i.startswith("tag:google.com,2013:googlealerts/feed:") for i in ids)
        with engine.connect() as conn:
            assert conn.execute(select(source_checkpoints.c.source)).scalars().all() == ["alerts"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        engine.dispose()
    assert platform.hits("GET", "/alerts.atom")


def test_a_bad_sources_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("- name: alerts\n  kind: rss\n  feeds:\n    - url: not-a-url\n")
    result = CliRunner().invoke(
        main, ["run", "--no-demo", "--sources", str(sources), "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 1
    assert "[0].rss.feeds[0].url" in result.output
