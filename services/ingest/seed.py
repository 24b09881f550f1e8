"""What an ingest applies at start: the brands file, and the demo's brands, alert rules
and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.core.alerting import AlertKind, RuleParams
from services.core.brandfile import BrandEntry
from services.core.storage.alerts import AlertRuleStore
from services.core.storage.brands import BrandStore
from services.ingest.settings import IngestSettings


def demo_backfill(settings: IngestSettings) -> timedelta:
    """How much history the demo generates at start."""
    return timedelta(hours=settings.demo_backfill_hours)


def seed_brands(store: BrandStore, entries: Sequence[BrandEntry], *, demo: bool) -> None:
    """Apply the brands file; with the demo on and no brands yet, track the demo brands."""
    for e in entries:
        store.upsert(e.name, e.query, e.competitors, e.owned_handles)
    if demo and not store.list():
        from services.ingest.sources.demo import load_demo_brands

        for b in load_demo_brands():
            store.upsert(b.name, b.query, b.competitors, b.owned_handles)


DEMO_RULE_KINDS = (AlertKind.NEGATIVE_SPIKE, AlertKind.VOLUME_SPIKE)
"""The rules the demo ships per demo brand, with the defaults (15-minute windows, 7-day
baseline, 3 days of warm-up, which the demo's 7-day backfill holds)."""


def seed_demo_rules(rules: AlertRuleStore, brands: BrandStore) -> int:
    """With no alert rule stored yet, add ``DEMO_RULE_KINDS`` for each tracked demo brand;
    return how many were added. Idempotent: a restart, or an instance with rules of its
    own, adds none."""
    if rules.list():
        return 0
    from services.ingest.sources.demo import load_demo_brands

    tracked = {b.name for b in brands.list()}
    added = 0
    for b in load_demo_brands():
        if b.name not in tracked:
            continue
        for kind in DEMO_RULE_KINDS:
            rules.create(b.name, RuleParams(kind=kind))
            added += 1
    return added
