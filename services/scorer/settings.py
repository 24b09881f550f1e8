"""The scorer's settings (environment variables ``SENTIMON_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.core.settings import CommonSettings, KafkaSettings, MetricsSettings

# Tuned on TweetEval val for the text router (docs/benchmarks.md, "Hybrid scorer": the
# best val macro-recall routing at most 40 %); the routed share and macro-recall it gives
# on test are measured there. (The signals router was tuned to 0.55.)
ROUTE_MIN_TRUST = 0.49


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
    # --- spot-check sampling (services/scorer/sampling.py) ---
    spot_check_brand_floor: int = Field(
        default=70,
        ge=0,
        le=100_000,
        description="Labels a week the sampler aims to give every tracked brand, however "
        "small (its rate raised from its last week's volume, at most 25 %), so that each "
        "has corrected figures with intervals; 0: no floors.",
    )
    spot_check_lifts: dict[str, float] | None = Field(
        default=None,
        description='Rate factors for rare strata, JSON like {"source:rss": 5, '
        '"method:transformer": 2, "label:positive": 2}; default: sampling.DEFAULT_LIFTS.',
    )
    spot_check_uncertain_rate: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Sampling rate of mentions near a decision threshold (uncertainty sampling).",
    )
    spot_check_margin: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="How close to a cut point a lexicon compound counts as uncertain.",
    )
    spot_check_routing_margin: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="How close to route_min_trust the router's trust counts as uncertain.",
    )
    spot_check_double_share: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Share of sampled mentions queued for two analysts (human agreement).",
    )
    keep_unmatched: bool = Field(
        default=False, description="Store mentions that match no tracked brand (default: drop)."
    )
    batch_size: int = Field(default=1_000, ge=1, le=10_000)
    chunk_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        # 500, not 250: the embedded pipeline 0.33-0.35x -> 0.39-0.41x raw VADER, the
        # distributed one no slower (docs/benchmarks.md, 2026-12-06 morning).
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
    # --- hybrid scorer: routing and the transformer (services/scorer/routing.py,
    # services/scorer/transformer*.py) ---
    scorer_mode: Literal["hybrid", "lexicon"] = Field(
        default="hybrid",
        description="hybrid: VADER for all, the transformer for the ambiguous; "
        "lexicon: VADER only.",
    )
    transformer_model: Path | None = Field(
        default=None,
        description="A local Hugging Face sequence-classification directory with model.onnx "
        "(labels from its config.json); default: the model shipped under models/.",
    )
    transformer_missing: Literal["error", "lexicon"] = Field(
        default="error",
        description="A missing or unreadable model: refuse to start (error), or log it and "
        "score lexicon-only (lexicon).",
    )
    transformer_overload: Literal["backpressure", "lexicon"] = Field(
        default="backpressure",
        description="When the transformer queue is full: wait for room, slowing intake "
        "(backpressure), or give the mention the lexicon's verdict marked fallback (lexicon).",
    )
    transformer_batch_size: int = Field(
        default=64, ge=1, le=1_024, description="A transformer batch runs at this many texts..."
    )
    transformer_max_wait_ms: float = Field(
        default=25.0, ge=0.0, le=10_000.0, description="...or this long after its first text."
    )
    transformer_queue_size: int = Field(
        default=2_048, ge=1, le=1_000_000, description="Texts waiting for the transformer, at most."
    )
    transformer_threads: int = Field(
        default=2, ge=1, le=64, description="ONNX Runtime intra-op threads."
    )
    transformer_max_tokens: int = Field(
        default=64, ge=8, le=512, description="Texts are cut to this many tokens for the model."
    )
    route_min_trust: float = Field(
        default=ROUTE_MIN_TRUST,
        ge=0.0,
        le=1.0,
        description="Route a mention to the transformer when the estimated probability that "
        "the lexicon is right is below this (tuned on TweetEval val; higher routes more).",
    )
    route_model: Literal["text", "signals"] = Field(
        default="text",
        description="text: the shipped hashed words/bigrams router (models/sentimon-router); "
        "signals: the 19-signal logistic model alone (use route_min_trust 0.55 with it).",
    )
    route_always_band: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Also route every mention with |compound| below this (0: off).",
    )


class ScorerProcessSettings(ScorerSettings, KafkaSettings, MetricsSettings):
    """``sentimon scorer``: one member of the scorer consumer group; its ``/metrics``
    requires ``SENTIMON_METRICS_TOKEN`` when one is set, as the API's and the ingest's do."""

    scorer_host: str = Field(
        default="127.0.0.1", description="Address of /healthz, /readyz and /metrics."
    )
    scorer_port: int = Field(default=8002, ge=1, le=65535, description="Their port.")
    shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a SIGTERM waits for the batch in hand to be stored and committed.",
    )
