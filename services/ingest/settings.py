"""The ingest service's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CommonSettings


class IngestSettings(CommonSettings):
    demo: bool = Field(default=True, description="Run the demo source (fictional brands).")
    demo_rate_per_s: float = Field(
        default=0.1,
        gt=0,
        le=10_000,
        description="Average demo mentions per second over a week (more in working hours).",
    )
    demo_backfill_hours: float = Field(
        default=7 * 24, ge=0, le=90 * 24, description="History the demo generates at start."
    )
    demo_seed: int = 7
    # ~150 bytes a key: 200k recent keys cost ~30 MB; the store dedupes whatever gets past.
    dedupe_capacity: int = Field(default=200_000, ge=1)
