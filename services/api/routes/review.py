"""The analysts' spot-check queue and the accuracy it measures (role analyst or admin)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from services.api.deps import State, require
from services.api.state import AppState
from services.core.accuracy import Agreement, Estimate
from services.core.adjusted import (
    PROGRESS_DAYS,
    TARGET_HALF_WIDTH,
    BrandProgress,
    brand_progress,
    review_order,
)
from services.core.auth import Permission
from services.core.storage.analytics import brand_buckets
from services.core.storage.errors import ConflictError, NotFoundError
from services.core.storage.keys import ApiKey
from services.core.storage.review import (
    Analyst,
    ReviewItem,
    ReviewStore,
    adjustment_labels,
    labelled_items,
    measured_accuracy,
    review_stats,
)

router = APIRouter(prefix="/api/v1/review", tags=["review"])

Reviewer = Annotated[ApiKey, Depends(require(Permission.REVIEW))]
ItemId = Annotated[int, Path(ge=1, le=2**62)]


def review_store(state: State) -> ReviewStore:
    return ReviewStore(
        state.engine, state.clock, lease=timedelta(seconds=state.settings.review_lease_s)
    )


Store = Annotated[ReviewStore, Depends(review_store)]


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def analyst_of(key: ApiKey) -> Analyst:
    return Analyst(key_id=key.id, name=key.name)


# --- schemas ------------------------------------------------------------------------------


class AuthorOut(BaseModel):
    handle: str
    name: str | None
    followers: int
    verified: bool


class AutomatedOut(BaseModel):
    label: str
    method: str
    confidence: float


class ItemOut(BaseModel):
    """A mention to label for one brand. Texts are the mention's own: untrusted input."""

    id: int
    brand: str = Field(description="The brand match under review.")
    text: str
    url: str | None
    source: str
    created_at: str
    author: AuthorOut
    brands: list[str] = Field(description="Every brand the mention matched.")
    automated: AutomatedOut
    reason: str = Field(description="Why it was sampled: random or uncertainty.")
    reviews_required: int
    reviews_done: int
    lease_expires_at: str | None


class ProgressOut(BaseModel):
    open_items: int = Field(description="Items still waiting for a label from someone.")
    labelled_by_you: int


class ClaimOut(BaseModel):
    item: ItemOut | None = Field(description="null: nothing left for you to label.")
    progress: ProgressOut


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["positive", "neutral", "negative", "irrelevant"] = Field(
        description="irrelevant: the mention is not about this brand (a wrong match)."
    )


class EstimateOut(BaseModel):
    value: float
    ci95: tuple[float, float]
    n: int


class AgreementOut(BaseModel):
    n: int
    accuracy: EstimateOut | None
    kappa: EstimateOut | None
    precision: dict[str, EstimateOut | None]
    recall: dict[str, EstimateOut | None]


class StatsOut(BaseModel):
    """Automated sentiment against the analysts' labels (the first label of an item counts;
    items labelled irrelevant are left out of sentiment accuracy). Estimates are weighted
    by 1 / sampling probability, intervals are 95 % Wilson (kappa: the Wilson interval of
    the observed agreement, mapped to kappa)."""

    labelled_items: int
    overall: AgreementOut
    by_method: dict[str, AgreementOut]
    by_source: dict[str, AgreementOut]
    by_brand: dict[str, AgreementOut]
    human_agreement: AgreementOut = Field(
        description="First vs second analyst on items labelled by two (all four labels)."
    )
    brand_match_precision: EstimateOut | None = Field(
        description="Share of labelled brand matches not marked irrelevant."
    )


class AuditOut(BaseModel):
    id: int
    item_id: int
    analyst: str
    action: str
    before: str | None
    after: str | None
    at: str


def _estimate(e: Estimate | None) -> EstimateOut | None:
    return None if e is None else EstimateOut(value=e.value, ci95=e.ci95, n=e.n)


def _agreement(a: Agreement) -> AgreementOut:
    return AgreementOut(
        n=a.n,
        accuracy=_estimate(a.accuracy),
        kappa=_estimate(a.kappa),
        precision={k: _estimate(v) for k, v in a.precision.items()},
        recall={k: _estimate(v) for k, v in a.recall.items()},
    )


def _item(item: ReviewItem) -> ItemOut:
    m: dict[str, Any] = item.mention
    author = m.get("author", {})
    return ItemOut(
        id=item.id,
        brand=item.brand,
        text=m.get("text", ""),
        url=m.get("url"),
        source=m.get("source", ""),
        created_at=m.get("created_at", ""),
        author=AuthorOut(
            handle=author.get("handle", ""),
            name=author.get("name"),
            followers=author.get("followers", 0),
            verified=author.get("verified", False),
        ),
        brands=list(m.get("brands", [])),
        automated=AutomatedOut(
            label=item.auto_label, method=item.auto_method, confidence=item.auto_confidence
        ),
        reason=item.reason,
        reviews_required=item.reviews_required,
        reviews_done=item.reviews_done,
        lease_expires_at=None
        if item.lease_expires_at is None
        else item.lease_expires_at.isoformat().replace("+00:00", "Z"),
    )


def _claim_out(store: ReviewStore, key: ApiKey, item: ReviewItem | None) -> ClaimOut:
    p = store.progress(analyst_of(key))
    return ClaimOut(
        item=None if item is None else _item(item),
        progress=ProgressOut(open_items=p.open_items, labelled_by_you=p.labelled_by_you),
    )


# --- routes -------------------------------------------------------------------------------


REVIEW_ORDER_TTL_S = 30.0


class FigureOut(BaseModel):
    value: float
    ci95: tuple[float, float]


class BrandProgressOut(BaseModel):
    brand: str
    mentions: int = Field(description="Scored mentions of the brand in the period")
    labels: int = Field(description="Analyst labels of the brand in the period")
    net_sentiment: FigureOut | None = Field(
        description="Net sentiment corrected by the labels, with its 95 % interval"
    )
    half_width: float | None = Field(description="Half the interval's width (the ± figure)")
    labels_to_target: int | None = Field(
        description="About how many more labels would bring the interval to ± target "
        "(0: there already); null until there is a corrected figure"
    )
    reason: str | None = Field(description="Why there is no corrected figure yet")


class ProgressByBrandOut(BaseModel):
    from_: str = Field(serialization_alias="from")
    to: str
    target: float = Field(description="The ± half width of net sentiment aimed for")
    brands: list[BrandProgressOut] = Field(
        description="In the order the queue serves them: the labels that matter most first"
    )


def progress_by_brand(state: AppState) -> tuple[int, int, list[BrandProgress]]:
    """Every tracked brand's review progress over the last ``PROGRESS_DAYS`` days."""
    end = int(state.clock.now().timestamp())
    end -= end % 60
    start = end - PROGRESS_DAYS * 86_400
    names = [b.name for b in state.brands.list()]
    with state.engine.connect() as conn:
        counts = brand_buckets(conn, names, start, end, end - start).totals
        labels = adjustment_labels(conn, start, end)
    return start, end, [brand_progress(n, counts[n], labels, (start, end)) for n in names]


def brand_order(state: AppState) -> tuple[str, ...]:
    """The queue's brand order, worked out at most every ``REVIEW_ORDER_TTL_S`` seconds."""
    now = time.monotonic()
    cached = state.review_order
    if cached is not None and now - cached[0] < REVIEW_ORDER_TTL_S:
        return cached[1]
    order = tuple(review_order(progress_by_brand(state)[2]))
    state.review_order = (now, order)
    return order


@router.get("/brands", summary="Per brand: how sure its corrected net sentiment is")
def brands_progress(state: State, _key: Reviewer) -> ProgressByBrandOut:
    """For each tracked brand over the last 7 days: the corrected net sentiment with its
    95 % interval, the labels behind it, and about how many more would bring it to
    ± 0.05 — in the order the queue serves the brands."""
    start, end, progress = progress_by_brand(state)
    order = {b: i for i, b in enumerate(review_order(progress))}
    progress.sort(key=lambda p: order[p.brand])
    return ProgressByBrandOut(
        from_=iso(start),
        to=iso(end),
        target=TARGET_HALF_WIDTH,
        brands=[
            BrandProgressOut(
                brand=p.brand,
                mentions=p.mentions,
                labels=p.labels,
                net_sentiment=None
                if p.net_sentiment is None
                else FigureOut(value=p.net_sentiment.value, ci95=p.net_sentiment.ci95),
                half_width=p.half_width,
                labels_to_target=p.labels_to_target,
                reason=p.reason,
            )
            for p in progress
        ],
    )


@router.post("/claim", summary="Lease the next item to label")
def claim(state: State, store: Store, key: Reviewer) -> ClaimOut:
    """The item is yours until its lease expires (``review_lease_s``); claiming again
    while you hold one returns the same item. Items come brand by brand in the order of
    ``GET /api/v1/review/brands``: first the brands with no corrected figure yet, then
    the widest intervals."""
    item = store.claim(analyst_of(key), brand_order(state))
    state.metrics.review_claims.labels("empty" if item is None else "item").inc()
    return _claim_out(store, key, item)


@router.post(
    "/items/{item_id}/label",
    summary="Label an item you hold",
    responses={409: {"description": "The item is not yours to label (lease lost, or done)"}},
)
def label(state: State, store: Store, key: Reviewer, item_id: ItemId, body: LabelIn) -> ClaimOut:
    """Records the label (it overrides the automated one in every aggregate), releases
    the item and returns your progress; the next item is claimed separately."""
    try:
        store.label(analyst_of(key), item_id, body.label)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"item_id: {e}") from e
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"item_id: {e}") from e
    state.metrics.review_labels.labels(body.label, "label").inc()
    return _claim_out(store, key, None)


@router.post(
    "/items/{item_id}/skip",
    summary="Give an item back without labelling it",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "The item is not yours to give back"}},
)
def skip(store: Store, key: Reviewer, item_id: ItemId) -> Response:
    try:
        store.skip(analyst_of(key), item_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"item_id: {e}") from e
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"item_id: {e}") from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/undo",
    summary="Withdraw your last label",
    responses={
        404: {"description": "You have no label to withdraw"},
        409: {"description": "The label can no longer be withdrawn"},
    },
)
def undo(state: State, store: Store, key: Reviewer) -> ClaimOut:
    """Restores the aggregates as they were before that label and gives you the item back
    (claimed, unless another analyst holds it now)."""
    try:
        item, withdrawn = store.undo(analyst_of(key))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"item_id: {e}") from e
    state.metrics.review_labels.labels(withdrawn, "undo").inc()
    return _claim_out(store, key, item)


@router.get("/stats", summary="Measured accuracy of the automated sentiment")
def stats(state: State, _key: Reviewer) -> StatsOut:
    with state.engine.connect() as conn:
        items = labelled_items(conn)
    s = review_stats(items)
    return StatsOut(
        labelled_items=s.labelled_items,
        overall=_agreement(s.overall),
        by_method={k: _agreement(v) for k, v in s.by_method.items()},
        by_source={k: _agreement(v) for k, v in s.by_source.items()},
        by_brand={k: _agreement(v) for k, v in s.by_brand.items()},
        human_agreement=_agreement(s.human_agreement),
        brand_match_precision=_estimate(s.brand_match_precision),
    )


@router.get("/audit", summary="Label changes, newest first")
def audit(
    store: Store,
    _key: Reviewer,
    item_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    return [
        AuditOut(
            id=a.id,
            item_id=a.item_id,
            analyst=a.analyst,
            action=a.action,
            before=a.before,
            after=a.after,
            at=a.at.isoformat().replace("+00:00", "Z"),
        )
        for a in store.audit(item_id=item_id, limit=limit)
    ]


class MeasuredAccuracy(BaseModel):
    """The automated sentiment's accuracy measured by analysts on the mentions behind a
    figure (the brands and time range asked for); null when none is labelled yet."""

    accuracy: float
    ci95: tuple[float, float]
    n: int = Field(description="Labelled mentions behind the estimate.")


def measured_accuracy_out(
    conn: Connection, brands: Sequence[str], start: datetime, end: datetime
) -> MeasuredAccuracy | None:
    e = measured_accuracy(conn, brands=brands, since=start, until=end)
    return None if e is None else MeasuredAccuracy(accuracy=e.value, ci95=e.ci95, n=e.n)
