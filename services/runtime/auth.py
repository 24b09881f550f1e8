"""API keys from ``Authorization: Bearer``, checked against a role, for every process
that serves authenticated routes (the API, the ingest's push endpoint)."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.core.auth import Permission, allows
from services.core.storage.keys import ApiKey, KeyStore

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# The pages' session: an HttpOnly cookie holding a session token, never the key.
SESSION_COOKIE = "sentimon_session"

# Declares ``Authorization: Bearer <api key>`` in the OpenAPI document (``security`` on each
# operation that takes a key); the key itself is read and checked by ``key_from_header``.
BEARER = HTTPBearer(
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer <key>` (`sentimon keys create`)",
    auto_error=False,
)
BearerDeclared = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


def bearer_token(header: str) -> str:
    """The token of an ``Authorization`` header; 401 unless it is ``Bearer <token>``."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authorization: expected 'Bearer <api key>'",
            headers=_CHALLENGE,
        )
    return token.strip()


def unknown_key() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "authorization: missing or unknown API key",
        headers=_CHALLENGE,
    )


def key_from_header(keys: KeyStore, header: str | None) -> ApiKey:
    """The active key an ``Authorization: Bearer`` header names; 401 if none."""
    key = keys.authenticate(bearer_token(header)) if header else None
    if key is None:
        raise unknown_key()
    return key


def permitted(key: ApiKey, permission: Permission) -> ApiKey:
    """``key`` if its role allows ``permission``; 403 naming both otherwise."""
    if not allows(key.role, permission):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {key.role.value!r} may not {permission.value}",
        )
    return key
