"""What an ingest applies at start: the brands file, and the demo's brands and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.core.brandfile import BrandEntry
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
