"""API keys and roles (pure: no storage here).

A key looks like ``smk_<prefix>_<secret>``; only its SHA-256 is stored. Keys carry
256 bits of randomness, so a fast hash is enough (as with GitHub tokens): there is
nothing to brute-force, and a slow KDF would only slow every request down.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    INGEST = "ingest"


class Permission(StrEnum):
    READ = "read"  # reports, aggregates, mentions
    INGEST = "ingest"  # push mentions
    REVIEW = "review"  # the spot-check queue
    MANAGE = "manage"  # brands, keys, sources, webhooks


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ANALYST: frozenset({Permission.READ, Permission.REVIEW}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.INGEST: frozenset({Permission.INGEST}),
}

KEY_PREFIX = "smk_"


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def new_key() -> tuple[str, str, str]:
    """Return ``(key, prefix, key_hash)``; show ``key`` once, store the other two."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_secret(key)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_session_token() -> tuple[str, str]:
    """Return ``(token, token_hash)`` for a browser session cookie."""
    token = secrets.token_urlsafe(32)
    return token, hash_secret(token)
