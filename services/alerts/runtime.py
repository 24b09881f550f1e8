"""The alerts service in a running process: the evaluator and the delivery worker as two
background tasks, started and stopped together (embedded mode and ``sentimon api``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from sqlalchemy import Engine

from services.alerts.backtest import backtest_lines
from services.alerts.delivery import DeliveryWorker
from services.alerts.evaluator import AlertEvaluator
from services.alerts.settings import AlertSettings
from services.core.alerting import RuleParams
from services.core.clock import Clock
from services.core.metrics import Metrics
from services.core.settings import WebhookSettings
from services.core.storage.alerts import AlertRecord
from services.core.storage.webhooks import WebhookStore
from services.runtime.process import log_failure

log = logging.getLogger(__name__)


class AlertRuntime:
    """``start()`` runs both loops; ``stop()`` ends them (an attempt in flight finishes
    or is retried later under the same ``webhook-id``: nothing is lost)."""

    def __init__(
        self, engine: Engine, settings: AlertSettings, clock: Clock, metrics: Metrics
    ) -> None:
        self.settings = settings
        self._engine = engine
        self.worker = DeliveryWorker(WebhookStore(engine, clock), settings, clock, metrics)
        self.evaluator = AlertEvaluator(engine, settings, clock, metrics, on_alert=self._fired)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _fired(self, _alert: AlertRecord) -> None:
        self.worker.wake()

    def wake(self) -> None:
        """Have the delivery worker send what is due now."""
        self.worker.wake()

    def backtest(
        self, brand: str, params: RuleParams, start: int, end: int
    ) -> Iterator[dict[str, Any]]:
        """``services.alerts.backtest.backtest_lines`` on this runtime's store: the
        rollups are read when called; ``ValueError`` (``'field: message'``) for a period
        the backtest refuses."""
        return backtest_lines(self._engine, brand, params, start, end)

    def start(self) -> None:
        self._stop.clear()
        for name, coro in (
            ("alerts:evaluator", self.evaluator.run(self._stop)),
            ("alerts:delivery", self.worker.run(self._stop)),
        ):
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(log_failure)
            self._tasks.append(task)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class Host(Protocol):
    """What a process hosting the alerts service offers it (an API process's state): the
    store, clock and metrics, and the slots its routes read back — the settings, the
    delivery worker's wake-up and the backtest."""

    engine: Engine
    clock: Clock
    metrics: Metrics
    alerts: WebhookSettings
    wake_delivery: Callable[[], None] | None
    backtest: Callable[[str, RuleParams, int, int], Iterator[dict[str, Any]]] | None


def attach_alerts(state: Host, settings: AlertSettings | None = None) -> AlertRuntime:
    """Run the alerts service beside an API process's routes: the runtime is built on the
    state's engine, clock and metrics, the routes get its settings and its wake-up, and it
    is started when ``alerts_enabled``. The caller awaits ``stop()`` at shutdown."""
    settings = settings or AlertSettings()
    runtime = AlertRuntime(state.engine, settings, state.clock, state.metrics)
    state.alerts = settings
    state.wake_delivery = runtime.wake
    state.backtest = runtime.backtest
    if settings.alerts_enabled:
        runtime.start()
    return runtime
