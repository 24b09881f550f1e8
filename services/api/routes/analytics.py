"""Share of voice and sentiment over time, answered from the per-minute rollups."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from services.api.deps import Reader, State
from services.api.errors import UNPROCESSABLE
from services.api.routes.review import MeasuredAccuracy, measured_accuracy_out
from services.core.adjusted import Adjusted, AdjustedSeries, adjust_series
from services.core.models import Rfc3339Time
from services.core.reports.model import Corrected, corrected
from services.core.storage.analytics import BrandBuckets, Counts, brand_buckets, bucket_count
from services.core.storage.review import adjustment_labels

router = APIRouter(prefix="/api/v1", tags=["analytics"])

MAX_BUCKETS = 2_000
MAX_BRANDS = 50
BRANDS_PATTERN = rf"^[^,]*(,[^,]*){{0,{MAX_BRANDS - 1}}}$"
EARLIEST = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())
DEFAULT_RANGE = timedelta(days=7)
INTERVAL_PATTERN = r"^[1-9][0-9]{0,3}[mhd]$"
_INTERVAL = re.compile(INTERVAL_PATTERN)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> int:
    """``15m``, ``1h``, ``1d`` → seconds; a multiple of a minute, since rollups are per minute."""
    m = _INTERVAL.fullmatch(text)
    if m is None:
        raise HTTPException(
            UNPROCESSABLE,
            f"interval: {text!r} is not an interval like 5m, 1h or 1d",
        )
    return int(text[:-1]) * _UNIT_S[text[-1]]


def resolve_range(
    start: datetime | None, end: datetime | None, interval: int, now: datetime
) -> tuple[int, int]:
    """Epoch-second bounds ``[start, end)`` rounded down to the minute (rollup resolution)."""
    end_ts = int((end or now).timestamp())
    if end is None:
        end_ts += 60  # include the current, partial minute
    start_ts = (
        int(start.timestamp()) if start is not None else end_ts - int(DEFAULT_RANGE.total_seconds())
    )
    if start_ts < EARLIEST:
        raise HTTPException(UNPROCESSABLE, "from: must be 1900-01-01 or later")
    if start_ts >= end_ts:
        raise HTTPException(UNPROCESSABLE, "from: must be before 'to'")
    start_ts -= start_ts % 60
    end_ts -= end_ts % 60
    if start_ts >= end_ts:
        raise HTTPException(
            UNPROCESSABLE, "from: the range must span a whole minute (figures are per minute)"
        )
    if bucket_count(start_ts, end_ts, interval) > MAX_BUCKETS:
        raise HTTPException(
            UNPROCESSABLE,
            f"interval: too small for the range (more than {MAX_BUCKETS} buckets)",
        )
    return start_ts, end_ts


def is_partial(bucket_start: int, start: int, end: int, interval: int) -> bool:
    return bucket_start < start or bucket_start + interval > end


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class BrandShare(Corrected):
    brand: str
    mentions: int
    share: float | None
    net_sentiment: float | None
    positive: int
    neutral: int
    negative: int
    reach: int


class Bucket(BaseModel):
    start: str
    partial: bool = Field(
        description="The bucket is cut by the range's start or end: it covers less than an "
        "interval, so its counts are not comparable with the others'."
    )
    total: int
    brands: list[BrandShare]


class ShareOfVoice(BaseModel):
    """Shares are of the set's total mentions; a mention naming two brands counts for both."""

    from_: str = Field(serialization_alias="from")
    to: str
    interval_seconds: int
    total: int
    brands: list[BrandShare]
    buckets: list[Bucket]
    accuracy: MeasuredAccuracy | None = Field(
        default=None, description="Measured accuracy of the sentiment behind these figures."
    )


def _share_fields(brand: str, c: Counts, total: int, adjusted: Adjusted | str) -> dict[str, object]:
    """A ``BrandShare`` as plain data, its fields in the model's order."""
    figures, reason = (None, adjusted) if isinstance(adjusted, str) else (adjusted.as_dict(), None)
    return {
        "adjusted": figures,
        "adjusted_reason": reason,
        "brand": brand,
        "mentions": c.mentions,
        "share": None if total == 0 else c.mentions / total,
        "net_sentiment": c.net_sentiment,
        "positive": c.positive,
        "neutral": c.neutral,
        "negative": c.negative,
        "reach": c.reach,
    }


def _brand_list(state: State, brands: str | None) -> list[str]:
    if brands is None:
        return [b.name for b in state.brands.list()]
    parts = brands.split(",")
    if len(parts) > MAX_BRANDS:
        raise HTTPException(UNPROCESSABLE, f"brands: at most {MAX_BRANDS} brands")
    names = [b.strip() for b in parts if b.strip()]
    if not names:
        # Only commas and spaces: no brand named, as if the parameter were not given.
        return [b.name for b in state.brands.list()]
    return list(dict.fromkeys(names))


@router.get(
    "/share-of-voice",
    response_model=ShareOfVoice,
    summary="Share of voice and net sentiment per brand",
)
def share_of_voice(
    state: State,
    _key: Reader,
    brands: Annotated[
        str | None,
        Query(
            description=f"Comma-separated brand names (at most {MAX_BRANDS}); default: all tracked",
            json_schema_extra={"pattern": BRANDS_PATTERN},
        ),
    ] = None,
    from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
    to: Rfc3339Time | None = None,
    interval: Annotated[
        str,
        Query(
            description="Bucket size: 5m, 1h, 1d…", json_schema_extra={"pattern": INTERVAL_PATTERN}
        ),
    ] = "1h",
) -> Response:
    names = _brand_list(state, brands)
    iv = parse_interval(interval)
    start, end = resolve_range(from_, to, iv, state.clock.now())
    with state.engine.connect() as conn:
        # Share of voice shows no mean score: whole hours come from the hourly rollups.
        data = brand_buckets(conn, names, start, end, iv, with_score=False)
        accuracy = measured_accuracy_out(
            conn, names, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )
        adjusted = adjusted_for(conn, data, names, (start, end), iv)
    total = sum(c.mentions for c in data.totals.values())
    columns = [data.buckets[n] for n in names]
    adjusted_columns = [adjusted[n].buckets for n in names]
    buckets: list[dict[str, object]] = []
    for i, b_start in enumerate(data.bucket_starts):
        row = [column[i] for column in columns]
        b_total = sum(c.mentions for c in row)
        buckets.append(
            {
                "start": iso(b_start),
                "partial": is_partial(b_start, start, end, iv),
                "total": b_total,
                "brands": [
                    _share_fields(n, c, b_total, a[i])
                    for n, c, a in zip(names, row, adjusted_columns, strict=True)
                ],
            }
        )
    # Thousands of figures: built as plain data and written by orjson, not as models
    # validated and serialised one by one, which cost more than the query. The bytes are
    # those ShareOfVoice's own serialiser writes (fields in its order; tests compare them).
    body = {
        "from": iso(start),
        "to": iso(end),
        "interval_seconds": iv,
        "total": total,
        "brands": [_share_fields(n, data.totals[n], total, adjusted[n].total) for n in names],
        "buckets": buckets,
        "accuracy": None if accuracy is None else accuracy.model_dump(),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def adjusted_for(
    conn: Connection, data: BrandBuckets, names: list[str], span: tuple[int, int], interval: int
) -> dict[str, AdjustedSeries]:
    """Each brand's adjusted figures over ``span`` and per bucket."""
    labels = adjustment_labels(conn, *span)
    return {
        n: adjust_series(
            n, data.totals[n], data.buckets[n], data.bucket_starts, interval, span, labels
        )
        for n in names
    }


class SentimentPoint(Corrected):
    start: str
    partial: bool = False
    mentions: int
    positive: int
    neutral: int
    negative: int
    mean_score: float | None
    net_sentiment: float | None


class SentimentSeries(BaseModel):
    brand: str
    from_: str = Field(serialization_alias="from")
    to: str
    interval_seconds: int
    total: SentimentPoint
    series: list[SentimentPoint]
    accuracy: MeasuredAccuracy | None = Field(
        default=None, description="Measured accuracy of the sentiment behind these figures."
    )


def _point(
    start: str, c: Counts, adjusted: Adjusted | str, partial: bool = False
) -> SentimentPoint:
    return SentimentPoint(
        **corrected(adjusted),
        start=start,
        partial=partial,
        mentions=c.mentions,
        positive=c.positive,
        neutral=c.neutral,
        negative=c.negative,
        mean_score=c.mean_score,
        net_sentiment=c.net_sentiment,
    )


@router.get("/sentiment", summary="Sentiment of one brand over time")
def sentiment(
    state: State,
    _key: Reader,
    brand: Annotated[str, Query(min_length=1, max_length=128)],
    from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
    to: Rfc3339Time | None = None,
    interval: Annotated[
        str,
        Query(
            description="Bucket size: 5m, 1h, 1d…", json_schema_extra={"pattern": INTERVAL_PATTERN}
        ),
    ] = "1h",
) -> SentimentSeries:
    iv = parse_interval(interval)
    start, end = resolve_range(from_, to, iv, state.clock.now())
    with state.engine.connect() as conn:
        data = brand_buckets(conn, [brand], start, end, iv)
        accuracy = measured_accuracy_out(
            conn, [brand], datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )
        adjusted = adjusted_for(conn, data, [brand], (start, end), iv)[brand]
    return SentimentSeries(
        brand=brand,
        from_=iso(start),
        to=iso(end),
        interval_seconds=iv,
        total=_point(iso(start), data.totals[brand], adjusted.total),
        series=[
            _point(iso(s), c, a, is_partial(s, start, end, iv))
            for s, c, a in zip(
                data.bucket_starts, data.buckets[brand], adjusted.buckets, strict=True
            )
        ],
        accuracy=accuracy,
    )
