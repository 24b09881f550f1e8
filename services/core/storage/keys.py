"""API keys and browser sessions in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update

from services.core.auth import Role, hash_secret, new_key, new_session_token
from services.core.clock import Clock
from services.core.storage.errors import NotFoundError
from services.core.storage.tables import api_keys, sessions


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    prefix: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


class KeyStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, role: Role, name: str) -> tuple[str, ApiKey]:
        """Create a key; the plain key is returned here and never again."""
        key, prefix, key_hash = new_key()
        now = self._clock.now()
        with self._engine.begin() as conn:
            key_id = conn.execute(
                insert(api_keys)
                .values(
                    prefix=prefix, key_hash=key_hash, role=role.value, name=name, created_at=now
                )
                .returning(api_keys.c.id)
            ).scalar_one()
        return key, ApiKey(key_id, prefix, role, name, now, None)

    def authenticate(self, key: str) -> ApiKey | None:
        """The live key this secret belongs to, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys).where(
                    api_keys.c.key_hash == hash_secret(key), api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else _to_key(row)

    def list(self) -> list[ApiKey]:
        with self._engine.connect() as conn:
            return [_to_key(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]

    def count_active(self, role: Role | None = None) -> int:
        stmt = select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        if role is not None:
            stmt = stmt.where(api_keys.c.role == role.value)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def revoke(self, prefix: str) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            ).rowcount
            if done == 0:
                raise NotFoundError(f"no active key with prefix {prefix!r}")
            conn.execute(
                delete(sessions).where(
                    sessions.c.api_key_id.in_(
                        select(api_keys.c.id).where(api_keys.c.prefix == prefix)
                    )
                )
            )

    def open_session(self, key: ApiKey, ttl: timedelta) -> str:
        token, token_hash = new_session_token()
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(
                insert(sessions).values(
                    token_hash=token_hash, api_key_id=key.id, created_at=now, expires_at=now + ttl
                )
            )
        return token

    def session_key(self, token: str) -> ApiKey | None:
        now = self._clock.now()
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys)
                .join(sessions, sessions.c.api_key_id == api_keys.c.id)
                .where(
                    sessions.c.token_hash == hash_secret(token),
                    sessions.c.expires_at > now,
                    api_keys.c.revoked_at.is_(None),
                )
            ).first()
        return None if row is None else _to_key(row)

    def close_session(self, token: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == hash_secret(token)))


def _to_key(r: Row[Any]) -> ApiKey:
    return ApiKey(
        id=r.id,
        prefix=r.prefix,
        role=Role(r.role),
        name=r.name,
        created_at=r.created_at,
        revoked_at=r.revoked_at,
    )
