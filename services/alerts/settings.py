"""The alerts service's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from services.core.settings import WebhookSettings


class AlertSettings(WebhookSettings):
    """Also the channels' senders: the SMTP server email channels send through, and the
    dashboard's address for the links in chat and email messages."""

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
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The dashboard's address as readers reach it (e.g. "
        "https://sentimon.example.com): chat and email messages link each alert's page "
        "under it. Unset, they name the page's path only.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for email channels (unset: email is not sent)."
    )
    smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 587 (starttls), 465 (tls), 25."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade after connecting (refused if the server cannot); "
        "tls: implicit TLS from the start; none: plain text (a local relay only).",
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, if it needs one.")
    smtp_password: SecretStr | None = Field(
        default=None, description="SMTP password (never logged or shown)."
    )
    smtp_from: str | None = Field(
        default=None,
        pattern=r"^[^\s@<>]+@[^\s@<>]+$",
        description="The From address of alert emails (required with smtp_host).",
    )
    smtp_validate_certs: bool = Field(
        default=True, description="Check the SMTP server's TLS certificate."
    )

    @model_validator(mode="after")
    def _smtp_complete(self) -> AlertSettings:
        if self.smtp_host is not None and self.smtp_from is None:
            raise ValueError("SENTIMON_SMTP_FROM is required with SENTIMON_SMTP_HOST")
        if (self.smtp_password is None) != (self.smtp_username is None):
            raise ValueError("SENTIMON_SMTP_USERNAME and SENTIMON_SMTP_PASSWORD go together")
        return self

    def smtp_port_or_default(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return {"starttls": 587, "tls": 465, "none": 25}[self.smtp_security]
