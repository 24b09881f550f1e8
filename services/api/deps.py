"""Dependencies shared by the routers: the app state and authentication by role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from services.api.state import AppState
from services.core.auth import Permission
from services.core.storage.keys import ApiKey
from services.runtime.auth import (
    SESSION_COOKIE,
    BearerDeclared,
    key_from_header,
    permitted,
    unknown_key,
)

__all__ = ["SESSION_COOKIE", "Ingester", "Manager", "Reader", "State", "authenticate", "require"]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.sentimon
    return state


State = Annotated[AppState, Depends(get_state)]


def authenticate(request: Request, state: State, _bearer: BearerDeclared = None) -> ApiKey:
    """The caller's key, from ``Authorization: Bearer`` or the page session cookie."""
    header = request.headers.get("authorization")
    if header or not (cookie := request.cookies.get(SESSION_COOKIE)):
        return key_from_header(state.keys, header)
    key = state.keys.session_key(cookie)
    if key is None:
        raise unknown_key()
    return key


def require(permission: Permission) -> Callable[[ApiKey], ApiKey]:
    def check(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        return permitted(key, permission)

    return check


Reader = Annotated[ApiKey, Depends(require(Permission.READ))]
Ingester = Annotated[ApiKey, Depends(require(Permission.INGEST))]
Manager = Annotated[ApiKey, Depends(require(Permission.MANAGE))]
