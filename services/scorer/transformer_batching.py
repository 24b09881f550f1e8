"""Dynamic batching for the transformer, off the event loop, behind a bounded queue.

Texts routed to the transformer are queued; one worker task takes a batch when
``batch_size`` texts are waiting or ``max_wait_s`` after the first of them arrived,
whichever comes first, and runs it in a thread of its own (ONNX Runtime releases the
GIL), so the event loop — and the lexicon-only mentions it is writing — keeps going
while a batch runs.

The queue is bounded. When it is full, ``submit`` either waits for room
(``overload="backpressure"``, the default: the scorer stops taking new mentions from the
bus until the transformer catches up) or returns ``None`` for the texts that do not fit
(``overload="lexicon"``: the caller gives them the lexicon's verdict, marked fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from services.core.metrics import Metrics
from services.core.models import Sentiment
from services.scorer.protocol import Scorer

log = logging.getLogger(__name__)

OverloadPolicy = Literal["backpressure", "lexicon"]

_Item = tuple[str, "asyncio.Future[Sentiment]"]


class BatcherClosed(RuntimeError):
    """Texts were submitted to a batcher that is closed."""


class TransformerBatcher:
    """Use as ``async with TransformerBatcher(...) as b:`` (or ``start``/``close``)."""

    def __init__(
        self,
        scorer: Scorer,
        *,
        batch_size: int = 64,
        max_wait_s: float = 0.025,
        queue_size: int = 2_048,
        overload: OverloadPolicy = "backpressure",
        metrics: Metrics | None = None,
    ) -> None:
        if batch_size < 1 or queue_size < 1 or max_wait_s < 0:
            raise ValueError("batch_size and queue_size must be ≥ 1, max_wait_s ≥ 0")
        self.scorer = scorer
        self.batch_size = batch_size
        self.max_wait_s = max_wait_s
        self.overload = overload
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._metrics = metrics
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # batches run so far (tests and benchmarks read it)

    async def __aenter__(self) -> TransformerBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._worker is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="transformer")
            self._worker = asyncio.create_task(self._run(), name="transformer-batcher")

    async def close(self) -> None:
        """Stop the worker; texts still queued get ``BatcherClosed`` as their result."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(BatcherClosed("transformer batcher closed"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, texts: Sequence[str]) -> list[asyncio.Future[Sentiment] | None]:
        """Queue ``texts``; a future per text, or ``None`` where the queue was full under
        the ``lexicon`` overload policy. Under ``backpressure`` this waits for room."""
        if self._closed or self._worker is None:
            raise BatcherClosed("transformer batcher is not running")
        loop = asyncio.get_running_loop()
        out: list[asyncio.Future[Sentiment] | None] = []
        for text in texts:
            future: asyncio.Future[Sentiment] = loop.create_future()
            if self.overload == "backpressure":
                await self._queue.put((text, future))
            else:
                try:
                    self._queue.put_nowait((text, future))
                except asyncio.QueueFull:
                    out.append(None)
                    continue
            out.append(future)
        self._gauge()
        return out

    async def score(self, texts: Sequence[str]) -> list[Sentiment | None]:
        """``submit`` and wait for the verdicts (``None`` where the text was not taken)."""
        futures = await self.submit(texts)
        return [None if f is None else await f for f in futures]

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.transformer_queue_depth.set(self._queue.qsize())

    async def _next_batch(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.batch_size:
            # Whatever is already waiting joins without a timer.
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if len(batch) >= self.batch_size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._gauge()
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [(t, f) for t, f in batch if not f.cancelled()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                verdicts = await loop.run_in_executor(
                    self._executor, self.scorer.score_batch, [t for t, _ in live]
                )
            except Exception as e:
                log.exception("transformer batch of %d failed", len(live))
                for _, f in live:
                    if not f.done():
                        f.set_exception(e)
                continue
            self.batches += 1
            if self._metrics is not None:
                self._metrics.transformer_batch_size.observe(len(live))
                self._metrics.transformer_batch_latency.observe(time.perf_counter() - t0)
            for (_, f), v in zip(live, verdicts, strict=True):
                if not f.done():
                    f.set_result(v)
