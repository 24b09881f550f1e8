"""Running ``score_chunk`` in worker processes.

VADER and brand matching are pure Python and hold the GIL. Run in the event loop's
process they would leave the second core idle while the loop waits; run here, the loop
only validates, writes and produces while the workers score. Each worker keeps its own
VADER and a matcher compiled for the brands version it was last sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import multiprocessing
import multiprocessing.context
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler

from services.core.brands import BrandDefinition, BrandMatcher
from services.scorer.language import LanguageDetector
from services.scorer.lexicon import VaderScorer
from services.scorer.steps.lexicon import (
    BrandSet,
    ChunkItem,
    ChunkResult,
    ScoringConfig,
    score_chunk,
)

__all__ = ["BrandSet", "LexiconWorkers", "WorkerDiedError", "run_chunk"]


@dataclass(slots=True)
class _WorkerState:
    scorer: VaderScorer | None = None
    detector: LanguageDetector | None = None
    matcher: BrandMatcher | None = None
    definitions: tuple[tuple[str, str], ...] | None = None


_state = _WorkerState()


def _init_worker() -> None:
    _state.scorer = VaderScorer()
    _state.detector = LanguageDetector.load()


def run_chunk(
    items: Sequence[ChunkItem],
    brands: BrandSet,
    config: ScoringConfig,
    now: datetime,
    keep_texts: bool,
) -> ChunkResult:
    """``score_chunk`` with this process's VADER, language detector and a matcher for
    ``brands``."""
    if _state.scorer is None:
        _state.scorer = VaderScorer()
    if _state.detector is None:
        _state.detector = LanguageDetector.load()
    if _state.matcher is None or _state.definitions != brands.definitions:
        _state.matcher = BrandMatcher.compile(
            [BrandDefinition(name, query) for name, query in brands.definitions]
        )
        _state.definitions = brands.definitions
    return score_chunk(
        items,
        matcher=_state.matcher,
        compound=_state.scorer.compound,
        config=config,
        now=now,
        keep_texts=keep_texts,
        detector=_state.detector,
        owned=brands.owned,
    )


def _serve(requests: Connection, replies: Connection) -> None:
    """A worker's loop: chunks in, results out, until told to stop (``None``)."""
    _init_worker()
    while True:
        try:
            job = requests.recv()
        except EOFError:
            return
        if job is None:
            return
        ticket, args = job
        try:
            replies.send((ticket, True, run_chunk(*args)))
        except Exception as e:  # the caller gets the failure instead of a hang
            replies.send((ticket, False, f"{type(e).__name__}: {e}"))


class WorkerDiedError(RuntimeError):
    """A scoring worker process exited; its chunks are scored again after a restart."""


_PIPE_BYTES = 1 << 20  # a chunk of 250 mentions is ~150 KB pickled, of 500 ~300 KB


def _widen(conn: Connection) -> None:
    """Grow the pipe so a typical chunk fits in one write (larger ones wait for room)."""
    # Not Linux, or over the system's limit: smaller pipes still work, only slower.
    with contextlib.suppress(OSError):
        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)


class _Worker:
    def __init__(self, ctx: multiprocessing.context.SpawnContext) -> None:
        req_recv, self.requests = ctx.Pipe(duplex=False)
        self.replies, rep_send = ctx.Pipe(duplex=False)
        for conn in (self.requests, self.replies):
            _widen(conn)
        self.process = ctx.Process(
            target=_serve, args=(req_recv, rep_send), name="sentimon-scorer", daemon=True
        )
        self.process.start()
        req_recv.close()
        rep_send.close()
        self.pending: dict[int, asyncio.Future[ChunkResult]] = {}
        # Requests are written without blocking the event loop (see ``_send``); one at a
        # time, so two chunks' bytes never interleave.
        os.set_blocking(self.requests.fileno(), False)
        self.sending = asyncio.Lock()


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _send(loop: asyncio.AbstractEventLoop, worker: _Worker, request: object) -> None:
    """Write ``request`` to the worker's pipe as ``Connection.send`` frames it, waiting
    for room without blocking the loop.

    A blocking send deadlocked: with large mentions a chunk outgrows the pipe, the loop
    blocks writing chunk k+1 while the worker blocks writing chunk k's result, which
    only the (blocked) loop would read.
    """
    data = bytes(ForkingPickler.dumps(request))
    size = len(data)
    header = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
    view = memoryview(header + data)
    fd = worker.requests.fileno()
    async with worker.sending:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(fd, _set_once, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(fd)


class LexiconWorkers:
    """Scores chunks in ``processes`` worker processes, or inline with 0.

    No helper threads: chunks are written to each worker's pipe from the event loop and
    results read back when the pipe is readable (``loop.add_reader``). Threads handing
    results over would contend for the GIL with the loop and slow both down.
    """

    def __init__(self, processes: int) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._size = processes
        self._workers: list[_Worker] = []
        self._tickets = itertools.count()
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def score(
        self,
        items: Sequence[ChunkItem],
        brands: BrandSet,
        config: ScoringConfig,
        now: datetime,
        *,
        keep_texts: bool = False,
    ) -> ChunkResult:
        """Score a chunk; raises what the worker raised, or ``WorkerDiedError``."""
        if self._size == 0:
            return run_chunk(items, brands, config, now, keep_texts)
        return await self._request(self._pick(), items, brands, config, now, keep_texts)

    async def start(self) -> None:
        """Start the worker processes and wait until each has loaded its VADER and
        language detector (seconds of CPU each), so that the first chunks do not wait for
        them and a process that reports ready is. Raises ``WorkerDiedError`` if one exits
        meanwhile; with 0 processes, loads them in this process."""
        if self._size == 0:
            run_chunk([], BrandSet(0), ScoringConfig(), datetime.now(UTC), False)
            return
        self._spawn_missing()
        # An empty chunk each: answered once the worker's start-up (``_init_worker``) is done.
        await asyncio.gather(
            *(
                self._request(w, [], BrandSet(0), ScoringConfig(), datetime.now(UTC), False)
                for w in list(self._workers)
            )
        )

    async def _request(
        self,
        worker: _Worker,
        items: Sequence[ChunkItem],
        brands: BrandSet,
        config: ScoringConfig,
        now: datetime,
        keep_texts: bool,
    ) -> ChunkResult:
        ticket = next(self._tickets)
        future: asyncio.Future[ChunkResult] = asyncio.get_running_loop().create_future()
        worker.pending[ticket] = future
        request = (ticket, (list(items), brands, config, now, keep_texts))
        # Shielded: a request cut off half-written (the chunk's consumer failed and its
        # scoring was cancelled) would leave the worker reading garbage, or waiting for
        # the rest forever. Once started, a request is written whole.
        sending = asyncio.ensure_future(_send(asyncio.get_running_loop(), worker, request))
        try:
            await asyncio.shield(sending)
        except OSError:  # the worker is gone (EPIPE): fail what it had, start another
            self._bury(worker)
        return await future

    def _spawn_missing(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        while len(self._workers) < self._size:
            worker = _Worker(self._ctx)
            loop.add_reader(worker.replies.fileno(), self._on_reply, worker)
            self._workers.append(worker)

    def _pick(self) -> _Worker:
        self._spawn_missing()
        # The worker with the least queued work (round robin among equals).
        self._next = (self._next + 1) % self._size
        order = self._workers[self._next :] + self._workers[: self._next]
        return min(order, key=lambda w: len(w.pending))

    def _on_reply(self, worker: _Worker) -> None:
        try:
            ticket, ok, payload = worker.replies.recv()
        except (EOFError, OSError):
            self._bury(worker)
            return
        future = worker.pending.pop(ticket, None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(payload)
        else:
            future.set_exception(RuntimeError(f"scoring worker failed: {payload}"))

    def _bury(self, worker: _Worker) -> None:
        if worker not in self._workers:
            return
        assert self._loop is not None
        self._loop.remove_reader(worker.replies.fileno())
        self._workers.remove(worker)
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerDiedError("a scoring worker process exited"))
        worker.pending.clear()
        worker.process.join(timeout=1)

    def close(self) -> None:
        """Stop the workers (idempotent); chunks still pending fail."""
        for worker in list(self._workers):
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(worker.replies.fileno())
            with contextlib.suppress(OSError):
                os.set_blocking(worker.requests.fileno(), True)
                worker.requests.send(None)
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
            for future in worker.pending.values():
                if not future.done():
                    future.cancel()
            worker.requests.close()
            worker.replies.close()
        self._workers.clear()
