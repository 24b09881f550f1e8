"""``/api/v1/alerts``: the alerts raised, newest window first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from services.api.deps import Reader, State, require
from services.api.errors import UNPROCESSABLE
from services.core.alerting import AlertKind
from services.core.auth import Permission
from services.core.models import Rfc3339Time
from services.core.storage.alerts import (
    InvalidAlertCursorError,
    acknowledge_alert,
    get_alert,
    page_alerts,
)
from services.core.storage.errors import NotFoundError
from services.core.storage.keys import ApiKey

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

# Acknowledging is triage, the analysts' work (as the review queue is): analysts and admins.
Acknowledger = Annotated[ApiKey, Depends(require(Permission.REVIEW))]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class AlertPageOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get(
    "",
    response_model=AlertPageOut,
    summary="Alerts (the data object of schemas/alert.v1.json), newest window first",
)
def list_alerts_route(
    state: State,
    _key: Reader,
    brand: Annotated[str | None, Query(max_length=128)] = None,
    kind: AlertKind | None = None,
    rule_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    from_: Annotated[Rfc3339Time | None, Query(alias="from")] = None,
    to: Rfc3339Time | None = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page, as given")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    acknowledged: Annotated[
        Literal["true", "false"] | None,
        Query(description="true: only acknowledged alerts; false: only those not yet"),
    ] = None,
) -> AlertPageOut:
    """``from``/``to`` bound the window's start (``[from, to)``)."""
    if from_ is not None and to is not None and from_ >= to:
        raise HTTPException(UNPROCESSABLE, "from: must be before 'to'")
    try:
        with state.engine.connect() as conn:
            page = page_alerts(
                conn,
                brand=brand,
                since=from_,
                until=to,
                kind=kind.value if kind else None,
                rule_id=rule_id,
                limit=limit,
                cursor=cursor,
                acknowledged=None if acknowledged is None else acknowledged == "true",
            )
    except InvalidAlertCursorError as e:
        raise HTTPException(UNPROCESSABLE, str(e)) from e
    return AlertPageOut(items=[a.doc for a in page.items], next_cursor=page.next_cursor)


@router.get("/{alert_id}", summary="One alert", responses={404: {"description": "No such alert"}})
def get_alert_route(state: State, _key: Reader, alert_id: AlertId) -> dict[str, Any]:
    try:
        with state.engine.connect() as conn:
            return get_alert(conn, alert_id).doc
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge an alert (analyst or admin)",
    responses={404: {"description": "No such alert"}},
)
def acknowledge_alert_route(state: State, key: Acknowledger, alert_id: AlertId) -> dict[str, Any]:
    """Record who (the key's name and prefix) acknowledged the alert, and when; the alert
    is returned with ``acknowledged_at`` and ``acknowledged_by``. Idempotent: the first
    acknowledgement is kept."""
    try:
        return acknowledge_alert(
            state.engine, alert_id, by=key.name, by_key=key.prefix, now=state.clock.now()
        ).doc
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
