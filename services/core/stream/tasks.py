"""Tasks whose failure is reported through whoever awaits them.

A pipeline step starts work as tasks and hands them on (a write lane awaits the one
before it, the loop awaits a batch's tail). When a batch fails, the tasks after it are
cancelled; one that had already failed by then is awaited by nobody, and asyncio logs
"Task exception was never retrieved" with a second traceback of an error the loop has
already reported. ``spawn`` marks the outcome as seen when the task ends, so the failure
reaches the loop once, through the await that raises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved; whoever awaits it still gets it


def spawn(work: Awaitable[T]) -> asyncio.Future[T]:
    """``asyncio.ensure_future(work)``, its failure retrieved when it ends."""
    future = asyncio.ensure_future(work)
    future.add_done_callback(_seen)
    return future
