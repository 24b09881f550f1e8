"""The alerts service's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CommonSettings


class AlertSettings(CommonSettings):
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
    webhook_retry_max_age_s: float = Field(
        default=24 * 3600.0, gt=0, description="A delivery still failing this long is given up."
    )
    webhook_batch: int = Field(default=20, ge=1, le=1000, description="Sends claimed per pass.")
    webhook_allow_loopback: bool = Field(
        default=False, description="Allow webhook URLs resolving to loopback (127.0.0.0/8, ::1)."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs resolving to private, link-local or other internal ranges.",
    )
    alert_top_mentions: int = Field(
        default=5, ge=0, le=50, description="Negative mentions per alert."
    )
    alert_top_terms: int = Field(default=10, ge=0, le=50, description="Rising terms per alert.")
