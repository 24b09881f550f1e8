"""The alerts service's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import WebhookSettings


class AlertSettings(WebhookSettings):
    alerts_enabled: bool = Field(
        default=True, description="Run the evaluator and the delivery worker in this process."
    )
    alerts_evaluate_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="How often the alert rules are evaluated."
    )
    webhook_poll_interval_s: float = Field(
        default=5.0, gt=0, le=600, description="How often the outbox is checked for due sends."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="A receiver slower than this is a failed attempt."
    )
    webhook_retry_base_s: float = Field(
        default=30.0, gt=0, description="First retry delay; it doubles with every failed attempt."
    )
    webhook_retry_max_delay_s: float = Field(
        default=6 * 3600.0, gt=0, description="No retry waits longer than this."
    )
    webhook_batch: int = Field(default=20, ge=1, le=1000, description="Sends claimed per pass.")
    alert_top_mentions: int = Field(
        default=5, ge=0, le=50, description="Negative mentions per alert."
    )
    alert_top_terms: int = Field(default=10, ge=0, le=50, description="Rising terms per alert.")
