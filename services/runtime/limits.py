"""Requests that would cost the server before they are refused: the key is checked before
a body is read, and every body is capped while it streams (chunked ones included).

FastAPI reads and parses a JSON body before it runs a route's dependencies, so a route
that needs a key would parse 60 MB from anyone. This ASGI middleware runs first: for a
request with a body it answers 413 at once when the declared length is over the route's
limit, 401 when the route needs a key and the request has none that is valid (the body
unread), and otherwise reads the body itself up to the limit (413 past it) and hands it
on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import orjson
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.storage.keys import ApiKey, KeyStore
from services.runtime.auth import SESSION_COOKIE

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Per path prefix, the most bytes a body may have (the longest matching prefix
    wins), ``default`` elsewhere; ``open_paths`` take a body without a key (``/login``,
    whose body is the key)."""

    default: int = 1 << 20
    # Mutable on purpose: a router mounted later (the ingest's push endpoint on the
    # embedded API) adds its own limit.
    by_prefix: dict[str, int] = field(default_factory=dict)
    open_paths: Sequence[str] = ()

    def limit(self, path: str) -> int:
        best = ""
        for prefix in self.by_prefix:
            if path.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.by_prefix[best] if best else self.default


def _refuse(status: int, field_name: str, message: str) -> tuple[int, bytes]:
    body = {
        "detail": f"{field_name}: {message}",
        "errors": [{"field": field_name, "message": message}],
    }
    return status, orjson.dumps(body)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class GuardedBodies:
    """ASGI middleware: key before body, body capped; see the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyStore,
        limits: BodyLimits,
    ) -> None:
        self._app = app
        self._keys = keys
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self._limits.limit(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, *_refuse(413, "body", f"larger than {limit} bytes"))
            return
        if path not in self._limits.open_paths:
            auth = headers.get("authorization")
            session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
            # A key lookup is a database read: off the event loop, as the routes do it.
            try:
                problem = await anyio.to_thread.run_sync(_key_problem, self._keys, auth, session)
            except OperationalError:
                # The keys cannot be checked: a retryable answer, as the routes give.
                status, body = _refuse(503, "database", "unavailable, try again shortly")
                await _answer(send, status, body, (b"retry-after", b"5"))
                return
            if problem is not None:
                status, body = _refuse(401, "authorization", problem)
                await _answer(send, status, body, (b"www-authenticate", b"Bearer"))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, *_refuse(413, "body", f"larger than {limit} bytes"))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette does

        await self._app(scope, replay, send)


def _key_problem(keys: KeyStore, authorization: str | None, session: str | None) -> str | None:
    """Why the request has no valid key (the routes' own words), or ``None``."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "expected 'Bearer <api key>'"
        found: ApiKey | None = keys.authenticate(token.strip())
    else:
        found = keys.session_key(session) if session else None
    return None if found is not None else "missing or unknown API key"


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
