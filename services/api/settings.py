"""The API's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import MetricsSettings, SourceUrlSettings


class ApiSettings(MetricsSettings, SourceUrlSettings):
    """The API's settings; it checks the sources users configure with the ingest's URL
    policy (``SENTIMON_SOURCE_*``: set them alike for both)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_request_bytes: int = Field(
        default=1 << 20, ge=1024, description="The largest body a route but the push takes."
    )
    session_ttl_hours: float = Field(default=12.0, gt=0)
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set it behind HTTPS)."
    )
    max_page_size: int = Field(default=500, ge=1)
    # --- spot-check review queue ---
    review_lease_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="How long a claimed review item stays with its analyst before it "
        "returns to the queue.",
    )
