"""A ``sentimon scorer`` process's ``/metrics``: open without a metrics token; with
``SENTIMON_METRICS_TOKEN`` set it requires ``Authorization: Bearer <token>`` (401
otherwise), compared in constant time by the probes every process shares."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from services.core.metrics import Metrics
from services.scorer.main import create_probe_app
from services.scorer.settings import ScorerProcessSettings

TOKEN = "a-long-enough-scrape-token"
OPERATIONAL = "# TYPE sentimon_mentions_received_total counter"


@pytest.fixture(autouse=True)
def _no_settings_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("SENTIMON_")]:
        monkeypatch.delenv(name)


def scorer_client() -> Iterator[TestClient]:
    """The scorer's probe app, built from the settings as ``run_scorer`` builds it."""
    engine = create_engine("sqlite://")
    pipeline = SimpleNamespace(loops=(), progress_problem=lambda: None)
    app = create_probe_app(
        ScorerProcessSettings(), engine, Metrics(CollectorRegistry()), cast(Any, pipeline)
    )
    try:
        with TestClient(app) as client:
            yield client
    finally:
        engine.dispose()


@pytest.fixture
def client() -> Iterator[TestClient]:
    yield from scorer_client()


@pytest.fixture
def client_with_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("SENTIMON_METRICS_TOKEN", TOKEN)
    yield from scorer_client()


def test_without_a_token_the_scorers_metrics_are_open(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert OPERATIONAL in r.text


def test_with_a_token_the_scorers_metrics_need_it(client_with_token: TestClient) -> None:
    r = client_with_token.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert OPERATIONAL in r.text
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        r = client_with_token.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "sentimon_" not in r.text
    # The other probes stay open: orchestrators do not carry the token.
    assert client_with_token.get("/healthz").status_code == 200


def test_the_scorer_compares_the_token_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, client_with_token: TestClient
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("services.runtime.probes.compare_digest", spy)
    assert client_with_token.get("/metrics").status_code == 401
    assert client_with_token.get("/metrics", headers={"Authorization": "Bearer wrong"}).is_error
    assert compared == [(b"", TOKEN.encode()), (b"wrong", TOKEN.encode())]


def test_a_short_token_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_METRICS_TOKEN", "short")
    with pytest.raises(ValidationError, match="metrics_token"):
        ScorerProcessSettings()
