"""``/api/v1/channels``: Slack, Microsoft Teams and email channels that receive alerts,
their deliveries with every attempt, and manual redelivery. They share the webhooks'
outbox, retries and history (``/api/v1/webhooks`` serves the webhooks alone, as before).

A chat channel's URL is its secret: it is taken on creation (and on change) and shown
masked ever after (``https://hooks.slack.com/services/****``), like a webhook's secret.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from services.api.deps import Manager, State
from services.api.errors import UNPROCESSABLE
from services.api.routes.alert_rules import small_body
from services.api.routes.webhooks import (
    MAX_BODY_BYTES,
    URL_PATTERN,
    DeliveryPublic,
    EndpointId,
    EventTypes,
    _check_event_types,
    _delivery,
    checked_url,
)
from services.core.alerting import EVENT_TYPES
from services.core.models import JsonBool
from services.core.storage.errors import NotFoundError
from services.core.storage.webhooks import (
    CHANNEL_KINDS,
    EMAIL,
    Delivery,
    Endpoint,
    WebhookStore,
)
from services.core.urls import MAX_URL_CHARS, check_channel_url, mask_url

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])

MAX_RECIPIENTS = 20
# An address as SMTP takes it (RFC 5321 Mailbox, ASCII): a dot-atom local part, a domain
# of at least two labels. Quoted local parts and address literals are refused on purpose.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@{_LABEL}(\.{_LABEL})+$"
HTTPS_URL_PATTERN = "^https" + URL_PATTERN.removeprefix("^https?")
DigestMinutes = Annotated[
    int,
    Field(
        ge=1,
        le=1440,
        description="Gather alerts into one message per this many minutes (null: at once)",
    ),
]


def _check_address(v: str) -> str:
    local = v.split("@", 1)[0]
    if re.fullmatch(EMAIL_PATTERN, v) is None or len(local) > 64:
        raise PydanticCustomError("email", "not an email address (name@example.com)")
    return v


Address = Annotated[
    str,
    AfterValidator(_check_address),
    Field(max_length=254, json_schema_extra={"pattern": EMAIL_PATTERN}),
]
Recipients = Annotated[list[Address], Field(min_length=1, max_length=MAX_RECIPIENTS)]


def _dedupe(v: list[str] | None) -> list[str] | None:
    return None if v is None else list(dict.fromkeys(v))


class ChannelCreate(BaseModel):
    """A channel: ``kind`` slack or teams with its ``url``, or email with its ``to``
    (the other field is refused, 422)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slack", "teams", "email"]
    url: str | None = Field(
        default=None,
        max_length=MAX_URL_CHARS,
        json_schema_extra={"pattern": HTTPS_URL_PATTERN},
        description="Slack/Teams: the channel's incoming-webhook URL (https). It is the "
        "channel's secret: never shown again unmasked",
    )
    to: Recipients | None = Field(default=None, description="Email: the recipient addresses")
    event_types: EventTypes = Field(default_factory=lambda: sorted(EVENT_TYPES))
    digest_minutes: DigestMinutes | None = None

    _types = field_validator("event_types")(_check_event_types)
    _to = field_validator("to")(_dedupe)


class ChannelUpdate(BaseModel):
    """What to change. ``url`` is for Slack and Teams channels, ``to`` for email channels
    (the other is refused, 422); ``digest_minutes: null`` sends each alert at once again."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None, max_length=MAX_URL_CHARS, json_schema_extra={"pattern": HTTPS_URL_PATTERN}
    )
    to: Recipients | None = None
    event_types: EventTypes | None = None
    enabled: JsonBool | None = Field(default=None, description="Re-enable, or pause")
    digest_minutes: DigestMinutes | None = None

    _types = field_validator("event_types")(_check_event_types)
    _to = field_validator("to")(_dedupe)


class ChannelPublic(BaseModel):
    id: int
    kind: str
    url: str | None = Field(description="Slack/Teams: the URL, masked")
    to: list[str] | None = Field(description="Email: the recipients")
    event_types: list[str]
    digest_minutes: int | None
    digest_queued: int = Field(description="Alerts waiting for the next digest")
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class ChannelDeliveryPublic(DeliveryPublic):
    alert_ids: list[int] = Field(description="The alert, or every alert a digest carries")


def _store(state: State) -> WebhookStore:
    return WebhookStore(state.engine, state.clock)


def _public(store: WebhookStore, e: Endpoint) -> ChannelPublic:
    return ChannelPublic(
        id=e.id,
        kind=e.kind,
        url=None if e.kind == EMAIL else mask_url(e.url),
        to=[str(a) for a in e.config.get("to", [])] if e.kind == EMAIL else None,
        event_types=list(e.event_types),
        digest_minutes=e.digest_minutes,
        digest_queued=store.digest_queued(e.id) if e.digest_minutes is not None else 0,
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def _channel_delivery(d: Delivery) -> ChannelDeliveryPublic:
    return ChannelDeliveryPublic(**_delivery(d).model_dump(), alert_ids=list(d.alert_ids))


def _get(store: WebhookStore, endpoint_id: int) -> Endpoint:
    try:
        return store.get(endpoint_id, CHANNEL_KINDS)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.get("", summary="Channels (chat URLs masked)")
def list_channels(state: State, _key: Manager) -> list[ChannelPublic]:
    store = _store(state)
    return [_public(store, e) for e in store.endpoints(CHANNEL_KINDS)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[small_body(MAX_BODY_BYTES)],
    responses={
        413: {"description": "Body over 16 KB"},
        422: {
            "description": "Bad URL (not https, or an address the policy refuses), an "
            "address that is not one, or a field the kind has not (url for email, to for chat)"
        },
    },
)
def create_channel(state: State, _key: Manager, body: ChannelCreate) -> ChannelPublic:
    """Add a Slack or Teams channel (its incoming-webhook URL) or an email channel (its
    recipients; the SMTP server is the alerts service's, ``SENTIMON_SMTP_*``).

    Chat URLs are held to the webhooks' URL policy, and must be https.
    """
    store = _store(state)
    if body.kind == EMAIL:
        if body.url is not None:
            raise HTTPException(UNPROCESSABLE, "url: an email channel has recipients (to), no URL")
        if body.to is None:
            raise HTTPException(UNPROCESSABLE, "to: an email channel needs its recipients")
        e = store.create(
            "",
            body.event_types,
            kind=EMAIL,
            config={"to": body.to},
            digest_minutes=body.digest_minutes,
        )
    else:
        if body.to is not None:
            raise HTTPException(
                UNPROCESSABLE, f"to: a {body.kind} channel has a URL, no recipients"
            )
        if body.url is None:
            raise HTTPException(UNPROCESSABLE, f"url: a {body.kind} channel needs its URL")
        url = checked_url(state, body.url, check_channel_url)
        e = store.create(url, body.event_types, kind=body.kind, digest_minutes=body.digest_minutes)
    return _public(store, e)


@router.get("/{endpoint_id}")
def get_channel(state: State, _key: Manager, endpoint_id: EndpointId) -> ChannelPublic:
    store = _store(state)
    return _public(store, _get(store, endpoint_id))


@router.patch(
    "/{endpoint_id}",
    dependencies=[small_body(MAX_BODY_BYTES)],
    responses={422: {"description": "A field this kind of channel has not (url, to)"}},
)
def update_channel(
    state: State, _key: Manager, endpoint_id: EndpointId, body: ChannelUpdate
) -> ChannelPublic:
    store = _store(state)
    current = _get(store, endpoint_id)
    if body.url is not None and current.kind == EMAIL:
        raise HTTPException(UNPROCESSABLE, "url: an email channel has recipients (to), no URL")
    if body.to is not None and current.kind != EMAIL:
        raise HTTPException(UNPROCESSABLE, f"to: a {current.kind} channel has a URL, no recipients")
    url = checked_url(state, body.url, check_channel_url) if body.url is not None else None
    changes: dict[str, Any] = {}
    if "digest_minutes" in body.model_fields_set:
        changes["digest_minutes"] = body.digest_minutes
    try:
        e = store.update(
            endpoint_id,
            url=url,
            event_types=body.event_types,
            enabled=body.enabled,
            config={"to": body.to} if body.to is not None else None,
            **changes,
        )
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return _public(store, e)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(state: State, _key: Manager, endpoint_id: EndpointId) -> Response:
    """Delete a channel with its delivery log and its digest queue."""
    store = _store(state)
    _get(store, endpoint_id)
    try:
        store.delete(endpoint_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint_id}/deliveries", summary="Deliveries, newest first, with every attempt")
def list_channel_deliveries(
    state: State,
    _key: Manager,
    endpoint_id: EndpointId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="delivery id")] = None,
) -> list[ChannelDeliveryPublic]:
    store = _store(state)
    _get(store, endpoint_id)
    return [
        _channel_delivery(d) for d in store.deliveries(endpoint_id, limit=limit, before_id=before)
    ]


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivery again now (fresh retry budget)",
)
def redeliver_channel(
    state: State,
    _key: Manager,
    endpoint_id: EndpointId,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> ChannelDeliveryPublic:
    store = _store(state)
    _get(store, endpoint_id)
    try:
        d = store.redeliver(
            endpoint_id, delivery_id, timedelta(seconds=state.alerts.webhook_retry_max_age_s)
        )
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    if state.wake_delivery is not None:
        state.wake_delivery()
    return _channel_delivery(d)
