"""``/api/v1/webhooks``: endpoints that receive alerts as signed webhooks, their
deliveries with every attempt, and manual redelivery (same ``webhook-id``)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from services.api.deps import Manager, State
from services.api.errors import UNPROCESSABLE
from services.api.routes.alert_rules import small_body
from services.core.alerting import EVENT_TYPES
from services.core.models import JsonBool
from services.core.storage.errors import NotFoundError
from services.core.storage.webhooks import WEBHOOK, Delivery, Endpoint, WebhookStore
from services.core.urls import MAX_URL_CHARS, WebhookUrlError, check_webhook_url

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 16 * 1024
EndpointId = Annotated[int, Path(ge=1, le=2**31 - 1)]
EventType = Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]
# The form check_webhook_url takes, for the OpenAPI document: http(s), a host, no
# credentials, no #fragment, ASCII only (an internationalised host in punycode). The URL is
# checked (with a message saying what is wrong) and its host's addresses held to the policy
# when the endpoint is created or changed.
_PCT = "%[0-9A-Fa-f]{2}"
# A port is 0–65535: the form says so, so a client's valid-looking :90023 is refused by
# the document too, not only by the check.
_PORT = r"0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = (
    rf"^https?://([A-Za-z0-9._~!$&'()*+,;=-]|{_PCT})+(:{_PORT})?"
    rf"([/?]([A-Za-z0-9._~!$&'()*+,;=:@/?-]|{_PCT})*)?$"
)
_URL_FORM: JsonDict = {"pattern": URL_PATTERN}


def _check_event_types(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    for t in v:
        if t not in EVENT_TYPES:
            raise PydanticCustomError(
                "event_type",
                "unknown event type; known: {known}",
                {"known": ", ".join(EVENT_TYPES)},
            )
    return sorted(set(v))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=MAX_URL_CHARS,
        json_schema_extra=_URL_FORM,
        description="http(s) URL the alerts are POSTed to",
    )
    event_types: EventTypes = Field(default_factory=lambda: sorted(EVENT_TYPES))
    secret: str | None = Field(
        default=None,
        max_length=128,
        description="Standard Webhooks secret (whsec_ + base64 of 24–64 bytes); "
        "default: a new random one, returned once in the answer",
    )

    _types = field_validator("event_types")(_check_event_types)

    @field_validator("secret")
    @classmethod
    def _secret_format(cls, v: str | None) -> str | None:
        if v is None:
            return v
        raw = v.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as e:
            raise PydanticCustomError("secret", "must be whsec_ followed by base64") from e
        if not v.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise PydanticCustomError(
                "secret", "must be whsec_ followed by the base64 of 24 to 64 bytes"
            )
        return v


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=MAX_URL_CHARS, json_schema_extra=_URL_FORM)
    event_types: EventTypes | None = None
    enabled: JsonBool | None = Field(default=None, description="Re-enable after a 410, or pause")

    _types = field_validator("event_types")(_check_event_types)


class WebhookPublic(BaseModel):
    id: int
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown only in this answer: verify signatures with it")


class AttemptPublic(BaseModel):
    attempt: int
    started_at: datetime
    duration_s: float
    status_code: int | None
    outcome: str
    error: str | None
    next_attempt_at: datetime | None


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: str
    alert_id: int | None
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[AttemptPublic]


def _public(e: Endpoint) -> WebhookPublic:
    return WebhookPublic(
        id=e.id,
        url=e.url,
        event_types=list(e.event_types),
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def _delivery(d: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        webhook_id=d.webhook_id,
        alert_id=d.alert_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        give_up_at=d.give_up_at,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        last_error=d.last_error,
        attempt_log=[
            AttemptPublic(
                attempt=a.attempt,
                started_at=a.started_at,
                duration_s=a.duration_s,
                status_code=a.status_code,
                outcome=a.outcome,
                error=a.error,
                next_attempt_at=a.next_attempt_at,
            )
            for a in d.attempt_log
        ],
    )


def _store(state: State) -> WebhookStore:
    return WebhookStore(state.engine, state.clock)


def _webhook(store: WebhookStore, endpoint_id: int) -> Endpoint:
    """The webhook (a channel's id is no webhook's: 404, as /api/v1/channels serves them)."""
    try:
        return store.get(endpoint_id, (WEBHOOK,))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


def checked_url(state: State, url: str, check: Callable[..., object] = check_webhook_url) -> str:
    """``url`` held to the URL policy by ``check`` (webhooks' or channels'), or a 422
    naming ``url``; a message names the problem, never the URL (a chat URL is a secret)."""
    if not url.isascii():
        raise HTTPException(
            UNPROCESSABLE, "url: must be ASCII (write an internationalised host as xn--…)"
        )
    try:
        check(
            url,
            allow_loopback=state.alerts.webhook_allow_loopback,
            allow_private=state.alerts.webhook_allow_private,
        )
    except WebhookUrlError as e:
        raise HTTPException(UNPROCESSABLE, f"url: {e}") from e
    if re.fullmatch(URL_PATTERN, url) is None:
        raise HTTPException(UNPROCESSABLE, "url: not a URI (RFC 3986): percent-encode the rest")
    return url


@router.get("", summary="Webhook endpoints (never their secrets)")
def list_webhooks(state: State, _key: Manager) -> list[WebhookPublic]:
    return [_public(e) for e in _store(state).endpoints((WEBHOOK,))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[small_body(MAX_BODY_BYTES)],
    responses={
        413: {"description": "Body over 16 KB"},
        422: {"description": "Bad URL (scheme, form, or an address the policy refuses)"},
    },
)
def create_webhook(state: State, _key: Manager, body: WebhookCreate) -> WebhookCreated:
    """Register an endpoint. The answer holds the signing secret; it is not shown again.

    URLs whose host resolves to loopback, private or link-local addresses are refused
    unless ``SENTIMON_WEBHOOK_ALLOW_LOOPBACK`` / ``SENTIMON_WEBHOOK_ALLOW_PRIVATE`` allow them.
    """
    url = checked_url(state, body.url)
    e = _store(state).create(url, body.event_types, body.secret)
    return WebhookCreated(secret=e.secret, **_public(e).model_dump())


@router.get("/{endpoint_id}")
def get_webhook(state: State, _key: Manager, endpoint_id: EndpointId) -> WebhookPublic:
    return _public(_webhook(_store(state), endpoint_id))


@router.patch("/{endpoint_id}", dependencies=[small_body(MAX_BODY_BYTES)])
def update_webhook(
    state: State, _key: Manager, endpoint_id: EndpointId, body: WebhookUpdate
) -> WebhookPublic:
    _webhook(_store(state), endpoint_id)
    url = checked_url(state, body.url) if body.url is not None else None
    try:
        return _public(
            _store(state).update(
                endpoint_id, url=url, event_types=body.event_types, enabled=body.enabled
            )
        )
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(state: State, _key: Manager, endpoint_id: EndpointId) -> Response:
    """Delete an endpoint with its delivery log."""
    _webhook(_store(state), endpoint_id)
    try:
        _store(state).delete(endpoint_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint_id}/deliveries", summary="Deliveries, newest first, with every attempt")
def list_deliveries(
    state: State,
    _key: Manager,
    endpoint_id: EndpointId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="delivery id")] = None,
) -> list[DeliveryPublic]:
    _webhook(_store(state), endpoint_id)
    try:
        return [
            _delivery(d)
            for d in _store(state).deliveries(endpoint_id, limit=limit, before_id=before)
        ]
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivery again now (same webhook-id, fresh retry budget)",
)
def redeliver(
    state: State,
    _key: Manager,
    endpoint_id: EndpointId,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> DeliveryPublic:
    _webhook(_store(state), endpoint_id)
    try:
        d = _store(state).redeliver(
            endpoint_id, delivery_id, timedelta(seconds=state.alerts.webhook_retry_max_age_s)
        )
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    if state.wake_delivery is not None:
        state.wake_delivery()
    return _delivery(d)
