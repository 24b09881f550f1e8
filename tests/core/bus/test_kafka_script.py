"""``deploy/kafka/kafka.sh``, the script behind ``make kafka-up`` and the tests' broker:
idempotent, quiet when its jars are cached, and honest about what is running."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.fixtures.kafka import KAFKA_SH, KafkaBroker, free_ports

LIBS = KAFKA_SH.parent / "libs"


def kafka_sh(action: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own script)
        [str(KAFKA_SH), action],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_fetch_a_second_time_downloads_nothing_and_says_nothing() -> None:
    first = kafka_sh("fetch")
    assert first.returncode == 0, first.stderr
    jars = sorted(p.name for p in LIBS.glob("*.jar"))
    mtimes = {p.name: p.stat().st_mtime_ns for p in LIBS.glob("*.jar")}

    again = kafka_sh("fetch")

    assert again.returncode == 0
    assert (again.stdout, again.stderr) == ("", "")
    assert "kafka_2.13-3.9.1.jar" in jars
    assert {"reload4j-1.2.25.jar", "slf4j-reload4j-1.7.36.jar"} <= set(jars)
    assert {p.name: p.stat().st_mtime_ns for p in LIBS.glob("*.jar")} == mtimes


def test_stop_and_status_of_a_broker_that_never_started(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    env = {
        "KAFKA_DIR": str(tmp_path),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
    }
    # A stale pid file (a pid that is not a broker of this directory) is not a broker.
    (tmp_path / "kafka.pid").write_text(f"{os.getpid()}\n")

    status = kafka_sh("status", **env)
    stop = kafka_sh("stop", **env)

    assert (status.returncode, status.stdout.strip()) == (3, "stopped")
    assert stop.returncode == 0
    assert "not running" in stop.stderr
    assert not (tmp_path / "kafka.pid").exists()


def test_start_is_idempotent_and_status_names_the_running_broker(
    kafka_broker: KafkaBroker,
) -> None:
    env = {
        "KAFKA_DIR": str(kafka_broker.directory),
        "KAFKA_PORT": str(kafka_broker.port),
        "KAFKA_CONTROLLER_PORT": str(kafka_broker.controller_port),
    }
    pid = (kafka_broker.directory / "kafka.pid").read_text().strip()

    again = kafka_sh("start", **env)
    status = kafka_sh("status", **env)

    assert again.returncode == 0
    assert f"already running (pid {pid})" in again.stderr
    assert status.returncode == 0
    assert f"running (pid {pid}) on {kafka_broker.bootstrap}" in status.stdout
