"""Dependencies shared by the routers: the app state and authentication by role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from services.api.state import AppState
from services.core.auth import Permission, allows
from services.core.storage.keys import ApiKey

SESSION_COOKIE = "sentimon_session"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.sentimon
    return state


State = Annotated[AppState, Depends(get_state)]


def authenticate(request: Request, state: State) -> ApiKey:
    """The caller's key, from ``Authorization: Bearer`` or the page session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "authorization: expected 'Bearer <api key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = state.keys.authenticate(token.strip())
    elif cookie := request.cookies.get(SESSION_COOKIE):
        key = state.keys.session_key(cookie)
    else:
        key = None
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authorization: missing or unknown API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


def require(permission: Permission) -> Callable[[ApiKey], ApiKey]:
    def check(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        if not allows(key.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {key.role.value!r} may not {permission.value}",
            )
        return key

    return check


Reader = Annotated[ApiKey, Depends(require(Permission.READ))]
Ingester = Annotated[ApiKey, Depends(require(Permission.INGEST))]
Manager = Annotated[ApiKey, Depends(require(Permission.MANAGE))]
