"""``make up`` / ``make status`` / ``make down`` (``deploy/local/stack.sh``): the local
stack's processes run under supervisord, so a scorer killed with SIGKILL is started
again and ready, as compose and Kubernetes restart their containers (issue 14 §5: it
stayed dead)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.kafka import free_ports
from tests.fixtures.live_server import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_SH = REPO_ROOT / "deploy" / "local" / "stack.sh"
BIN = Path(sys.executable).parent
RESTART_TIMEOUT_S = 240.0


@dataclass
class LocalStack:
    directory: Path
    env: dict[str, str]
    scorer_port: int

    def run(self, action: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own script)
            [str(STACK_SH), action],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def pid(self, name: str) -> int:
        """The process's pid as supervisord reports it (0 while it is not running)."""
        conf = str(self.directory / "supervisord.conf")
        result = subprocess.run(  # noqa: S603 (the supervisor installed with Sentimon)
            [str(BIN / "supervisorctl"), "-c", conf, "pid", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        out = result.stdout.strip()
        return int(out) if out.isdigit() else 0

    def scorer_ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.scorer_port}/readyz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def log(self, name: str, lines: int = 30) -> str:
        path = self.directory / "logs" / f"{name}.log"
        if not path.exists():
            return f"(no {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def local_stack() -> Iterator[LocalStack]:
    # Short paths outside pytest's 0700 directories: supervisord's socket path is capped
    # at ~100 bytes, and PostgreSQL runs as another user when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="sentimon-stack-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="sentimon-stack-pg-"))
    api, ingest, kafka, controller, pg = free_ports(5)
    scorer = _free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMON_", "PG", "KAFKA"))}
    env.update(
        SENTIMON_STACK_DIR=str(directory),
        SENTIMON=str(BIN / "sentimon"),
        SENTIMON_PORT=str(api),
        SENTIMON_INGEST_PORT=str(ingest),
        SENTIMON_SCORER_PORT=str(scorer),
        SENTIMON_SCORER_MODE="lexicon",
        SCORERS="2",
        KAFKA_PORT=str(kafka),
        KAFKA_CONTROLLER_PORT=str(controller),
        KAFKA_HEAP_OPTS="-Xms64m -Xmx512m",
        KAFKA_JVM_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
        PG_DIR=str(pg_dir),
        PG_PORT=str(pg),
    )
    stack = LocalStack(directory, env, scorer)
    try:
        yield stack
    finally:
        down = stack.run("down")
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def _free_port_pair() -> int:
    """A free port whose successor is free too (the two scorers' probes)."""
    for _ in range(50):
        (port,) = free_ports(1)
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def test_a_killed_scorer_is_started_again_and_the_stack_reports_it(
    local_stack: LocalStack,
) -> None:
    up = local_stack.run("up")
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{local_stack.log('supervisord')}"
    assert "is running at" in up.stdout

    status = local_stack.run("status", timeout_s=60)
    assert status.returncode == 0, status.stdout + status.stderr
    states = dict(line.split()[:2] for line in status.stdout.splitlines() if line.strip())
    for name in ("api", "ingest", "scorers:scorer-1", "scorers:scorer-2"):
        # Ready already; supervisord calls it RUNNING once it has lived startsecs.
        assert states.get(name) in ("STARTING", "RUNNING"), status.stdout

    killed = local_stack.pid("scorers:scorer-1")
    other = local_stack.pid("scorers:scorer-2")
    assert killed > 0 and other > 0
    os.kill(killed, signal.SIGKILL)

    def restarted() -> bool:
        pid = local_stack.pid("scorers:scorer-1")
        return pid not in (0, killed) and local_stack.scorer_ready()

    try:
        wait_until(restarted, timeout_s=RESTART_TIMEOUT_S, what="scorer-1 running and ready again")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\n{local_stack.log('scorer-1')}") from e
    assert local_stack.pid("scorers:scorer-2") == other, "the other scorer was left alone"
    status = local_stack.run("status", timeout_s=60)
    assert status.returncode == 0, status.stdout

    down = local_stack.run("down")
    assert down.returncode == 0, down.stderr
    status = local_stack.run("status", timeout_s=60)
    assert status.returncode == 3, status.stdout
    assert "supervisord: not running" in status.stdout
    for pid in (local_stack.pid("scorers:scorer-1"), other):
        assert pid == 0 or not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
