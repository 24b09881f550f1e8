"""The API under ``uvicorn --workers 2`` in Prometheus multiprocess mode: ``/metrics``
adds up what both worker processes counted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.core.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from services.core.storage.db import make_engine, migrate, sqlite_url
from tests.fixtures.live_server import REPO_ROOT, _free_port, wait_until
from tests.fixtures.prometheus import _stop_process

WORKERS = 2
# Generous: two workers import the whole app at once, on CI machines that may be busy.
STARTUP_TIMEOUT_S = 120.0
API_HISTOGRAM = "sentimon_api_request_duration_seconds"


def _healthz_counts_per_pid(directory: Path, scratch: Path) -> dict[str, float]:
    """How many /healthz requests each worker process recorded: each process's own file
    read alone by prometheus_client's multiprocess collector."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    out: dict[str, float] = {}
    for path in directory.glob("histogram_*.db"):
        alone = scratch / path.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        if count := registry.get_sample_value(f"{API_HISTOGRAM}_count", labels):
            out[path.stem] = count
    return out


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    engine = make_engine(sqlite_url(data_dir))
    migrate(engine)
    engine.dispose()
    metrics_dir = tmp_path / "metrics"
    (metrics_dir / "stale").mkdir(parents=True)  # left by an earlier run: wiped
    prepare_multiprocess_dir(metrics_dir)
    assert list(metrics_dir.iterdir()) == []
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update({MULTIPROC_ENV: str(metrics_dir), "SENTIMON_DATA_DIR": str(data_dir)})
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (a fixed command line)
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.asgi:create_app_from_env",
                "--factory",
                "--workers",
                str(WORKERS),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )
    base_url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            # /readyz, not /healthz: the test counts every /healthz request it sends.
            return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout_s=STARTUP_TIMEOUT_S, what="uvicorn with two workers ready")
        yield base_url, metrics_dir
    finally:
        _stop_process(proc)


def _scraped_count(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = rf'^{API_HISTOGRAM}_count\{{[^}}]*route="/healthz"[^}}]*\}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


def test_metrics_add_up_across_worker_processes(
    two_workers: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, metrics_dir = two_workers
    sent = 0

    def both_workers_served() -> bool:
        nonlocal sent
        # A new connection per request: the kernel hands each to either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base_url, limits=limits, timeout=10) as client:
            for _ in range(20):
                assert client.get("/healthz").status_code == 200
                sent += 1
        return len(_healthz_counts_per_pid(metrics_dir, tmp_path / "scratch")) >= WORKERS

    wait_until(
        both_workers_served, timeout_s=STARTUP_TIMEOUT_S, what="both workers served /healthz"
    )
    per_pid = _healthz_counts_per_pid(metrics_dir, tmp_path / "scratch")
    assert len(per_pid) == WORKERS and all(n > 0 for n in per_pid.values()), per_pid
    assert sum(per_pid.values()) == sent
    # Whichever worker answers the scrape, it reports both workers' requests.
    for _ in range(4):
        assert _scraped_count(base_url) == sent


def test_the_factory_refuses_a_missing_multiprocess_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.asgi import MultiprocessDirMissingError, create_app_from_env

    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "nope"))
    with pytest.raises(MultiprocessDirMissingError, match="nope"):
        create_app_from_env()
