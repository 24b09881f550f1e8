"""Read-then-write transactions on SQLite begin IMMEDIATE (issue 14): concurrent writers
wait for the write lock instead of failing with "database is locked" when a read lock
cannot be upgraded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from services.core.alerting import AlertKind, RuleParams
from services.core.clock import SystemClock
from services.core.storage.alerts import AlertRuleStore
from services.core.storage.brands import BrandStore
from services.core.storage.db import make_engine, migrate
from services.core.storage.webhooks import WebhookStore

WRITERS = 8
EACH = 25


def test_concurrent_rule_writes_never_fail_with_database_is_locked(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    clock = SystemClock()
    BrandStore(engine, clock).create("Acme", "acme")
    rules = AlertRuleStore(engine, clock)
    rule = rules.create("Acme", RuleParams(AlertKind.VOLUME_SPIKE))

    def writer(n: int) -> int:
        for i in range(EACH):
            params = RuleParams(AlertKind.VOLUME_SPIKE, min_count=10 + n * EACH + i)
            rules.update(rule.id, "Acme", params, enabled=True)
            rules.create("Acme", params)
        return n

    with ThreadPoolExecutor(WRITERS) as pool:
        assert sorted(pool.map(writer, range(WRITERS))) == list(range(WRITERS))
    assert len(rules.list()) == 1 + WRITERS * EACH
    engine.dispose()


def test_concurrent_claims_never_fail_and_never_share_a_delivery(tmp_path: Path) -> None:
    from services.core.storage.webhooks import enqueue_deliveries

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    clock = SystemClock()
    hooks = WebhookStore(engine, clock)
    hooks.create("https://hooks.example/x", ["alert.volume_spike"], "s" * 32)
    now = clock.now()
    with engine.begin() as conn:
        for i in range(200):
            enqueue_deliveries(
                conn,
                alert_id=i,
                event_type="alert.volume_spike",
                payload=b"{}",
                now=now,
                give_up_at=now + timedelta(hours=1),
            )

    def claimer(_n: int) -> list[int]:
        got: list[int] = []
        for _ in range(10):
            got += [c.id for c in hooks.claim_due(clock.now(), 5, timedelta(minutes=5))]
        return got

    with ThreadPoolExecutor(WRITERS) as pool:
        claimed = [d for batch in pool.map(claimer, range(WRITERS)) for d in batch]
    assert len(claimed) == len(set(claimed)) == 200
    engine.dispose()
