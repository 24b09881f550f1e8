"""How the scorer's steps are chained: each is handed the next, as arroyo's ``next_step``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Generic, Protocol, TypeVar

from services.core.storage.writer import Refused

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class NextStep(Protocol[T_contra]):
    """A link of the chain: takes one batch's parts (``submit``), then its end (``join``)."""

    async def submit(self, item: T_contra) -> None:
        """Take one part of the batch; may wait for room (backpressure). Raises to fail
        the batch (the caller then calls ``terminate``)."""
        ...

    def join(self) -> Awaitable[list[Refused]]:
        """The batch is complete: an awaitable done when its work is, down the chain,
        returning what the store refused for good. It fails if the work failed. The next
        batch may be submitted meanwhile."""
        ...

    def terminate(self) -> None:
        """Give up the batch in hand (its work is cancelled), down the chain."""
        ...


class Forward(Generic[T]):
    """A step whose batch ends where its next step's does."""

    def __init__(self, next_step: NextStep[T]) -> None:
        self.next_step = next_step

    def join(self) -> Awaitable[list[Refused]]:
        return self.next_step.join()

    def terminate(self) -> None:
        self.next_step.terminate()
