"""``services/runtime/process.py``: the start-up heap is frozen before a process serves."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from services.runtime.process import bind_socket, freeze_startup_heap, serve_http


class Node:
    """Something the collector tracks and that can be put in a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the frozen objects go back to the oldest generation


def tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_start_up_leave_the_collectors_generations(unfrozen: None) -> None:
    before = Node()
    assert tracked(before)
    frozen = freeze_startup_heap()
    assert frozen == gc.get_freeze_count() > 0
    assert not tracked(before)
    after = Node()
    assert tracked(after)


def test_garbage_made_after_the_freeze_is_still_collected(unfrozen: None) -> None:
    freeze_startup_heap()
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


async def test_serve_http_freezes_before_the_first_request(unfrozen: None) -> None:
    seen: list[int] = []

    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        assert scope["type"] == "http"
        seen.append(gc.get_freeze_count())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_http(app, sock, log_level="warning", stop=stop, timeout_s=1)
    )
    try:
        async with httpx.AsyncClient() as client:
            for attempt in range(200):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx.ConnectError:
                    if attempt == 199:
                        raise
                    await asyncio.sleep(0)  # yield to the server task until it listens
        assert response.status_code == 204
    finally:
        stop.set()
        await serving
    assert seen and seen[0] > 0
