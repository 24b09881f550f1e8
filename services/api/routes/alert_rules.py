"""``/api/v1/alert-rules``: per-brand spike rules (see ``docs/alerts.md``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.api.deps import Manager, Reader, State
from services.api.errors import TOO_LARGE, UNPROCESSABLE
from services.api.state import AppState
from services.core.alerting import RuleParams, RuleSpec, SnoozeSpec, snooze_problem
from services.core.models import Rfc3339Time, storable_time
from services.core.storage.alerts import AlertRule, AlertRuleStore
from services.core.storage.errors import NotFoundError

router = APIRouter(prefix="/api/v1/alert-rules", tags=["alerts"])

MAX_BODY_BYTES = 16 * 1024


def small_body(limit: int) -> Any:
    """A dependency refusing (413) a body declared larger than ``limit`` bytes."""

    def check(request: Request) -> None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(TOO_LARGE, f"body: larger than {limit} bytes")

    return Depends(check)


class RulePublic(RuleSpec):
    id: int
    created_at: datetime
    updated_at: datetime
    snoozed_until: datetime | None = Field(
        default=None,
        description="Silent until then (POST …/snooze); windows ending before it are "
        "never alerted. Null when not snoozed, or once the time has passed.",
    )


def public_rule(r: AlertRule, now: datetime | None = None) -> RulePublic:
    spec = RuleSpec.of(r.brand, r.params, r.enabled)
    # A snooze that has ended is shown as none: the rule is live again.
    until = r.snoozed_until if r.snoozed_until and (now is None or now < r.snoozed_until) else None
    return RulePublic(
        id=r.id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        snoozed_until=until,
        **spec.model_dump(),
    )


def _store(state: State) -> AlertRuleStore:
    return AlertRuleStore(state.engine, state.clock)


RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", summary="Alert rules, oldest first")
def list_rules(
    state: State,
    _key: Reader,
    brand: Annotated[str | None, Query(max_length=128)] = None,
) -> list[RulePublic]:
    return [public_rule(r, state.clock.now()) for r in _store(state).list(brand=brand)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[small_body(MAX_BODY_BYTES)],
    responses={
        404: {"description": "The brand is not tracked"},
        413: {"description": "Body over 16 KB"},
        422: {"description": "Invalid rule"},
    },
)
def create_rule(state: State, _key: Manager, body: RuleSpec) -> RulePublic:
    """Add a rule for a tracked brand. Unset fields take the defaults in ``docs/alerts.md``."""
    try:
        return public_rule(_store(state).create(body.brand, body.params(), enabled=body.enabled))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"brand: {e}") from e


@router.get("/{rule_id:int}")
def get_rule(state: State, _key: Reader, rule_id: RuleId) -> RulePublic:
    try:
        return public_rule(_store(state).get(rule_id), state.clock.now())
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.put("/{rule_id:int}", dependencies=[small_body(MAX_BODY_BYTES)])
def update_rule(state: State, _key: Manager, rule_id: RuleId, body: RuleSpec) -> RulePublic:
    store = _store(state)
    try:
        store.get(rule_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    try:
        rule = store.update(rule_id, body.brand, body.params(), enabled=body.enabled)
        return public_rule(rule, state.clock.now())
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"brand: {e}") from e


@router.delete("/{rule_id:int}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(state: State, _key: Manager, rule_id: RuleId) -> Response:
    """Delete a rule; the alerts it raised are kept."""
    try:
        _store(state).delete(rule_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- snooze (issue 17 §5) ----------------------------------------------------------------


@router.post(
    "/{rule_id}/snooze",
    dependencies=[small_body(MAX_BODY_BYTES)],
    summary="Silence a rule until a time",
    responses={
        404: {"description": "No such rule"},
        413: {"description": "Body over 16 KB"},
        422: {"description": "`until` is not an RFC 3339 time in the next 90 days"},
    },
)
def snooze_rule(state: State, _key: Manager, rule_id: RuleId, body: SnoozeSpec) -> RulePublic:
    """No alert of this rule until ``until``; the windows that end before it are skipped
    for good, not raised when the snooze ends. Snoozing again replaces the time."""
    now = state.clock.now()
    if (problem := snooze_problem(body.until, now)) is not None:
        raise HTTPException(UNPROCESSABLE, f"body.until: {problem}")
    try:
        return public_rule(_store(state).snooze(rule_id, body.until), now)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.delete(
    "/{rule_id}/snooze",
    summary="End a rule's snooze now",
    responses={404: {"description": "No such rule"}},
)
def unsnooze_rule(state: State, _key: Manager, rule_id: RuleId) -> RulePublic:
    """The rule alerts again from its window in progress (a rule not snoozed is left as it
    is)."""
    try:
        return public_rule(_store(state).snooze(rule_id, None), state.clock.now())
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


# --- backtest and preview (issue 17 §1) --------------------------------------------------

NDJSON = "application/x-ndjson"
DEFAULT_BACKTEST = timedelta(days=28)
MAX_PREVIEW_DAYS = 366


class BacktestWindow(BaseModel):
    """A window the rule would have alerted on (an alert's figures, without the mentions
    it would quote)."""

    type: Literal["window"]
    window: dict[str, datetime]
    observed: float
    expected: float
    unit: Literal["mentions", "share"]
    count: int
    total: int
    p_value: float
    statistic: float
    method: str


class BacktestSummary(BaseModel):
    """The last line: the period, the windows judged, and the alerts it came to."""

    type: Literal["summary"]
    from_: datetime = Field(alias="from")
    to: datetime
    windows_evaluated: int
    alerts: int
    held_by_cooldown: int
    weeks: float
    alerts_per_week: float


class RulePreview(BaseModel):
    """What a rule would have raised over the last ``days`` days."""

    brand: str
    kind: str
    days: int
    summary: BacktestSummary
    windows: list[BacktestWindow]


def _run_backtest(
    state: AppState, brand: str, params: RuleParams, start: int, end: int, field: str | None
) -> Iterator[dict[str, Any]]:
    if state.backtest is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "alerts: this process runs no alerts service"
        )
    try:
        return state.backtest(brand, params, start, end)
    except ValueError as e:
        name, _, message = str(e).partition(": ")
        raise HTTPException(UNPROCESSABLE, f"{field or 'query.' + name}: {message}") from e


def _ndjson(lines: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for line in lines:
        yield orjson.dumps(line) + b"\n"


@router.get(
    "/{rule_id}/backtest",
    summary="The alerts a rule would have raised over a stored period (streamed NDJSON)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One JSON object a line (``application/x-ndjson``), as found: a "
            "``window`` line per window that would have alerted (the cooldown applied), "
            "then one ``summary`` line. See docs/alerts.md.",
            "content": {
                NDJSON: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/BacktestWindow"},
                            {"$ref": "#/components/schemas/BacktestSummary"},
                        ]
                    }
                }
            },
        },
        404: {"description": "No such rule"},
        422: {
            "description": "A field is invalid: `from` not before `to`, a period over 366 "
            "days or over 36,000 of the rule's windows"
        },
    },
)
def backtest_rule(
    state: State,
    _key: Reader,
    rule_id: RuleId,
    from_: Annotated[
        Rfc3339Time | None,
        Query(alias="from", description="Start of the period; default: 28 days before `to`"),
    ] = None,
    to: Annotated[Rfc3339Time | None, Query(description="End of the period; default: now")] = None,
) -> StreamingResponse:
    """Judge every window of the rule starting in ``[from, to)`` on the stored rollups,
    with the live evaluator's code; history imported after the fact is judged too."""
    try:
        rule = _store(state).get(rule_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    for name, when in (("from", from_), ("to", to)):
        if when is not None:
            try:
                storable_time(when)
            except ValueError as e:
                raise HTTPException(UNPROCESSABLE, f"query.{name}: {e}") from e
    end = to or state.clock.now()
    start = from_ or end - DEFAULT_BACKTEST
    lines = _run_backtest(
        state, rule.brand, rule.params, int(start.timestamp()), int(end.timestamp()), None
    )
    return StreamingResponse(_ndjson(lines), media_type=NDJSON)


@router.post(
    "/preview",
    summary="What a rule would raise: its alerts over the last days, before creating it",
    dependencies=[small_body(MAX_BODY_BYTES)],
    responses={
        404: {"description": "The brand is not tracked"},
        413: {"description": "Body over 16 KB"},
        422: {"description": "Invalid rule, or more than 36,000 of its windows in `days`"},
    },
)
def preview_rule(
    state: State,
    _key: Reader,
    body: RuleSpec,
    days: Annotated[
        int, Query(ge=1, le=MAX_PREVIEW_DAYS, description="Days back from now to judge")
    ] = DEFAULT_BACKTEST.days,
) -> RulePreview:
    """The backtest of a rule not stored yet: every window of the last ``days`` days
    judged as the live evaluator would, and the alerts per week that comes to."""
    try:
        state.brands.get(body.brand)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"brand: {e}") from e
    end = int(state.clock.now().timestamp())
    lines = list(
        _run_backtest(state, body.brand, body.params(), end - days * 86_400, end, "query.days")
    )
    summary = lines.pop()
    return RulePreview(
        brand=body.brand,
        kind=body.kind.value,
        days=days,
        summary=BacktestSummary.model_validate(summary),
        windows=[BacktestWindow.model_validate(w) for w in lines],
    )
