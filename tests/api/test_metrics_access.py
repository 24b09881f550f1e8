"""Who reads ``/metrics``: operational metrics are open by default; the business gauges
(tracked brands, their volumes and sentiment) are left out unless a metrics token is set,
which /metrics then requires (compared in constant time), or the operator opts in."""

from __future__ import annotations

import hmac

import httpx
import pytest

from services.runtime.probes import Probes

TOKEN = "a-long-enough-scrape-token"
BUSINESS = "sentimon_brand_recent_mentions"
OPERATIONAL = "sentimon_mentions_received_total"


@pytest.fixture
def with_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SENTIMON_METRICS_TOKEN", TOKEN)
    return TOKEN


@pytest.fixture
def opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMON_METRICS_BUSINESS_GAUGES", "true")


async def test_without_a_token_metrics_are_open_without_the_business_gauges(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert OPERATIONAL in r.text
    assert BUSINESS not in r.text and "sentimon_brand_recent_net_sentiment" not in r.text
    assert 'brand="Acme"' not in r.text


async def test_the_operator_may_serve_the_business_gauges_openly(
    opted_in: None, client: httpx.AsyncClient
) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200 and f'{BUSINESS}{{brand="Acme"}}' in r.text


async def test_with_a_token_metrics_need_it_and_serve_everything(
    with_token: str, client: httpx.AsyncClient
) -> None:
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {with_token}"})
    assert r.status_code == 200
    assert OPERATIONAL in r.text and f'{BUSINESS}{{brand="Acme"}}' in r.text
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {with_token}x"},
        {"Authorization": f"Basic {with_token}"},
        {"Authorization": with_token},
    ):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert BUSINESS not in r.text and OPERATIONAL not in r.text
    # The other probes stay open: orchestrators do not carry the token.
    assert (await client.get("/healthz")).status_code == 200


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import SecretStr

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("services.runtime.probes.compare_digest", spy)
    probes = Probes(engine=None, metrics=None, metrics_token=SecretStr(TOKEN))  # type: ignore[arg-type]
    assert probes.may_read_metrics(f"Bearer {TOKEN}")
    assert not probes.may_read_metrics("Bearer wrong")
    assert not probes.may_read_metrics(None)
    # Every answer went through the constant-time comparison, a missing header included.
    assert compared == [
        (TOKEN.encode(), TOKEN.encode()),
        (b"wrong", TOKEN.encode()),
        (b"", TOKEN.encode()),
    ]


def test_a_short_token_is_refused_at_start() -> None:
    from pydantic import ValidationError

    from services.api.settings import ApiSettings

    with pytest.raises(ValidationError, match="metrics_token"):
        ApiSettings(metrics_token="short")
