"""The scorer's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CommonSettings


class ScorerSettings(CommonSettings):
    max_score_chars: int = Field(
        default=2_000,
        ge=100,
        le=10_000,
        description="Texts are cut to this many characters before scoring.",
    )
    spot_check_rate: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Share of scored mentions sampled for analysts."
    )
    keep_unmatched: bool = Field(
        default=False, description="Store mentions that match no tracked brand (default: drop)."
    )
    batch_size: int = Field(default=1_000, ge=1, le=10_000)
    chunk_size: int = Field(
        default=250,
        ge=1,
        le=10_000,
        description="A batch is scored and written in chunks, so the two overlap.",
    )
    lexicon_processes: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Worker processes running VADER; 0 runs it in the event loop's thread.",
    )
    brand_refresh_s: float = Field(
        default=2.0, gt=0, description="How often the scorer checks for changed brands."
    )
