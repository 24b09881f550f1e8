"""Fakes for the connector tests: a scriptable platform API on 127.0.0.1 (stdlib
``http.server`` in a thread), time that moves only when a connector sleeps, and a
publisher that records what it accepted."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry

from services.core.bus.protocol import Producer, RecordMetadata
from services.core.clock import FrozenClock
from services.core.metrics import Metrics
from services.core.models import Mention
from services.core.sources import SourceUrlPolicy
from services.ingest.dedupe import RecentKeys
from services.ingest.sources.base import Batch, Checkpoint
from services.ingest.worker import MentionPublisher

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP_TIMEOUT_S = 10.0
# The fakes listen on 127.0.0.1: loopback allowed, and platform credentials may go there.
LOCAL_URLS = SourceUrlPolicy(allow_loopback=True, credential_hosts=frozenset({"127.0.0.1"}))


def fixture_bytes(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


@dataclass
class Reply:
    """One scripted answer. ``chunks`` are written one by one (a stream); with ``hold``
    the connection then stays open until the server stops (a live stream)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Sequence[bytes] = ()
    hold: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-stream is what the tests do on purpose


class FakePlatform:
    """An HTTP server answering from a script: ``on(method, path, *replies)`` queues
    replies for a route (the last one repeats). Unknown routes get a 404."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], list[Reply | Callable[[Request], Reply]]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                reply = platform._next(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks or reply.hold:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in reply.chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    if reply.hold:
                        platform._stopping.wait(STEP_TIMEOUT_S)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def on(self, method: str, path: str, *replies: Reply | Callable[[Request], Reply]) -> None:
        with self._lock:
            self._routes[(method, path)] = list(replies)

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._routes.get((request.method, request.path))
            if not queue:
                return Reply(404, b'{"error": "not found"}')
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request) if callable(reply) else reply

    def hits(self, method: str, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def start(self) -> FakePlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


class FakeTime:
    """A frozen clock and a ``sleep`` that records the delay, moves the clock by it and
    returns at once: connectors wait in fake time, tests never wait."""

    def __init__(self, start: datetime = START, *, max_sleeps: int | None = None) -> None:
        self.clock = FrozenClock(start)
        self.sleeps: list[float] = []
        # After this many sleeps, a sleep never returns (until cancelled): a retry loop
        # under test stops there instead of spinning.
        self.max_sleeps = max_sleeps
        self.parked = asyncio.Event()
        self._gate = asyncio.Event()

    def release(self, more: int) -> None:
        """Let the parked sleep return, and ``more`` sleeps after it, then park again."""
        assert self.max_sleeps is not None
        self.max_sleeps += more
        self.parked.clear()
        gate, self._gate = self._gate, asyncio.Event()
        gate.set()

    async def sleep(self, seconds: float) -> None:
        if self.max_sleeps is not None and len(self.sleeps) >= self.max_sleeps:
            self.parked.set()
            await self._gate.wait()
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(seconds=max(seconds, 0.0)))
        await asyncio.sleep(0)  # ok-sleep: yields to the loop once, waits for nothing


class RecordingProducer(Producer):
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        # Fail once, when this many mentions were sent (a bus that goes away mid-batch).
        self.fail_after: int | None = None

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        if self.fail_after is not None and len(self.sent) == self.fail_after:
            self.fail_after = None
            raise ConnectionError("bus unavailable")
        self.sent.append(value)
        return RecordMetadata(topic, 0, len(self.sent) - 1)

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def mentions(self) -> list[Mention]:
        return [Mention.model_validate_json(v) for v in self.sent]


def recording_publisher() -> tuple[MentionPublisher, RecordingProducer, Metrics]:
    producer = RecordingProducer()
    metrics = Metrics(CollectorRegistry())
    return MentionPublisher(producer, RecentKeys(10_000), metrics), producer, metrics


async def eventually(
    check: Callable[[], Awaitable[object] | object], what: str, timeout_s: float = STEP_TIMEOUT_S
) -> None:
    """Return once ``check()`` (awaited if it is a coroutine) is truthy; fail after
    ``timeout_s`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    for _ in itertools.count():
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.01)  # ok-sleep: the pause between checks of a bounded poll


async def until_error(batches: AsyncGenerator[Batch, None]) -> tuple[list[Batch], Exception]:
    """Every batch until the stream fails, and the error it failed with."""
    got: list[Batch] = []
    try:
        async for batch in batches:
            got.append(batch)
    except Exception as e:  # the error is what the caller asserts on
        return got, e
    raise AssertionError("the stream ended without an error")


async def take(batches: AsyncIterator[Batch], n: int) -> list[Batch]:
    """The next ``n`` batches, each within a bound."""
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(batches), STEP_TIMEOUT_S))
    return out


def mentions_of(batches: Sequence[Batch]) -> list[Mention]:
    return [i for b in batches for i in b.items if isinstance(i, Mention)]


def last_checkpoint(batches: Sequence[Batch]) -> Checkpoint | None:
    found = [b.checkpoint for b in batches if b.checkpoint is not None]
    return found[-1] if found else None
