"""``spawn``: a failed task nobody awaited any more is not reported a second time."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest

from services.core.stream.tasks import spawn


async def fails() -> None:
    raise RuntimeError("database away")


async def unretrieved_reports(start: Callable[[Any], asyncio.Future[None]]) -> list[str]:
    """Start a failing task, let it fail, drop it unawaited (as a cancelled batch does),
    and return what asyncio reports as never retrieved."""
    loop = asyncio.get_running_loop()
    reports: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: reports.append(ctx["message"]))
    try:
        task = start(fails())
        await asyncio.wait([task])
        del task
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    return reports


async def test_a_spawned_task_that_fails_unawaited_is_not_reported_again() -> None:
    assert await unretrieved_reports(asyncio.ensure_future) == [
        "Task exception was never retrieved"
    ]
    assert await unretrieved_reports(spawn) == []


async def test_whoever_awaits_a_spawned_task_still_gets_its_failure() -> None:
    with pytest.raises(RuntimeError, match="database away"):
        await spawn(fails())
