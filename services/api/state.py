"""What the API needs from the rest of the process, built once and handed to ``create_app``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from services.api.settings import ApiSettings
from services.core.alerting import RuleParams
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.settings import WebhookSettings
from services.core.storage.brands import BrandStore
from services.core.storage.keys import KeyStore


@dataclass(slots=True)
class AppState:
    settings: ApiSettings
    engine: Engine
    clock: Clock
    metrics: Metrics
    keys: KeyStore
    brands: BrandStore
    # Extra readiness checks (the embedded pipeline registers "consumers not halted").
    readiness: list[Callable[[], str | None]] = field(default_factory=list)
    # Webhooks: the URL policy and retry budget; ``wake_delivery`` asks this process's
    # delivery worker to send now (after a manual redelivery), if it runs one.
    alerts: WebhookSettings = field(default_factory=WebhookSettings)
    wake_delivery: Callable[[], None] | None = None
    # The alerts service's backtest, if this process runs one: the lines of
    # ``/alert-rules/{id}/backtest`` for (brand, params, start, end); ValueError
    # ("field: message") for a period it refuses.
    backtest: Callable[[str, RuleParams, int, int], Iterator[dict[str, Any]]] | None = None
    # The review queue's brand order (``services.core.adjusted.review_order``) and when it
    # was worked out (monotonic seconds): recomputed at most every ``REVIEW_ORDER_TTL_S``.
    review_order: tuple[float, tuple[str, ...]] | None = None


def process_state(settings: ApiSettings, engine: Engine) -> AppState:
    """The state of an API process of its own (``sentimon api``, ``uvicorn --factory``):
    its keys and brands in ``engine``, its own metrics registry."""
    from prometheus_client import CollectorRegistry

    from services.core.clock import SystemClock

    clock = SystemClock()
    return AppState(
        settings=settings,
        engine=engine,
        clock=clock,
        metrics=Metrics(CollectorRegistry()),
        keys=KeyStore(engine, clock),
        brands=BrandStore(engine, clock),
    )
