"""``/api/v1/alert-rules``: per-brand spike rules (see ``docs/alerts.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from services.api.deps import Manager, Reader, State
from services.api.errors import TOO_LARGE
from services.core.alerting import RuleSpec
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


def public_rule(r: AlertRule) -> RulePublic:
    spec = RuleSpec.of(r.brand, r.params, r.enabled)
    return RulePublic(
        id=r.id, created_at=r.created_at, updated_at=r.updated_at, **spec.model_dump()
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
    return [public_rule(r) for r in _store(state).list(brand=brand)]


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


@router.get("/{rule_id}")
def get_rule(state: State, _key: Reader, rule_id: RuleId) -> RulePublic:
    try:
        return public_rule(_store(state).get(rule_id))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@router.put("/{rule_id}", dependencies=[small_body(MAX_BODY_BYTES)])
def update_rule(state: State, _key: Manager, rule_id: RuleId, body: RuleSpec) -> RulePublic:
    store = _store(state)
    try:
        store.get(rule_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    try:
        return public_rule(store.update(rule_id, body.brand, body.params(), enabled=body.enabled))
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"brand: {e}") from e


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(state: State, _key: Manager, rule_id: RuleId) -> Response:
    """Delete a rule; the alerts it raised are kept."""
    try:
        _store(state).delete(rule_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)
