"""Binding, signals, serving HTTP until stopped, freezing the start-up heap, steadying the
allocator, and background tasks that die."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Generator, Iterator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class PortInUseError(OSError):
    """The address is taken (or not ours to bind)."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``, bound before anything else starts.

    Raises ``PortInUseError`` naming the address if it cannot be bound.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise PortInUseError(f"cannot listen on {host}:{port}: {e.strerror}") from e
    sock.set_inheritable(True)
    return sock


def log_failure(task: asyncio.Task[Any]) -> None:
    """Say at once when a background task dies, rather than at shutdown (or never)."""
    if not task.cancelled() and (e := task.exception()) is not None:
        log.error("%s stopped: %r", task.get_name(), e, exc_info=e)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT while inside the block (a second one still waits
    for the graceful stop: a process manager that means it sends SIGKILL)."""
    loop = asyncio.get_running_loop()

    def _on_signal(sig: signal.Signals) -> None:
        log.info("%s: stopping gracefully", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def freeze_startup_heap() -> int:
    """Move every object alive now out of the garbage collector's sight; returns how many
    objects are frozen.

    Called once start-up is done, before serving. A process's start-up heap (modules, the
    app and its routes, models, lexicons, caches) lives as long as the process, yet each
    generation-2 collection walked all of it: on a 30-day share-of-voice answer, whose
    tens of thousands of short-lived objects trigger one every ~8 requests, that walk was
    the p95 (108 ms against a p50 of 48; 52 ms frozen, issue 18). Objects made later are
    collected as before; a frozen object that later becomes cyclic garbage is not, which is
    why this runs once, after start-up, not periodically.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Allocations from this size up get their own mapping, returned to the system when freed.
# Not glibc's initial 128 KiB: fixed there, the embedded pipeline ran 5-10 % slower (more
# blocks mapped and unmapped per chunk); at 1 MiB it ran as before (docs/benchmarks.md,
# "Memory: a fixed mmap threshold", 2026-12-06).
MMAP_THRESHOLD_BYTES = 1 << 20
# Free memory at the top of the heap kept for reuse, not given back, up to this much. Fixing
# the mmap threshold also stops glibc from raising this one with it (from 128 KiB), and a
# report then gave its heap back and faulted it in again on every request: +6-8 ms CPU a
# 30-day executive report on 1 M mentions. At 16 MiB it costs nothing measurable.
TRIM_THRESHOLD_BYTES = 16 << 20
# Environment variables with which an operator tunes glibc's malloc: theirs to choose.
_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def steady_allocator(
    mmap_threshold: int = MMAP_THRESHOLD_BYTES, trim_threshold: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Fix glibc's mmap and trim thresholds for the rest of the process's life; True when
    both were set. Called once, before serving, by every service process.

    glibc raises its mmap threshold each time a mapped block is freed, up to 32 MiB, so the
    next blocks of that size come from the heap instead, where freeing them need not give
    the memory back. A long-running process's large, bounded tables are exactly such
    blocks: the ingest's dedupe window (200,000 keys, a ~34 MiB table) is rebuilt every
    ~150,000 mentions as keys come and go; after the first rebuild the threshold rose and a
    later rebuild took heap memory that stayed, a one-off step of +9 MiB (+4.7 %) ~35
    minutes into the distributed soak. With a fixed threshold such tables are always mapped
    and unmapped, and RSS stays flat (tests/runtime/test_steady_allocator.py).

    Left alone where it cannot apply or is the operator's to choose: not Linux, a C library
    without glibc's ``mallopt`` (musl's does nothing and returns 0), or the environment
    already tuning malloc (``MALLOC_*_`` variables, ``glibc.malloc`` in ``GLIBC_TUNABLES``)."""
    if not sys.platform.startswith("linux"):
        return False
    if any(name in os.environ for name in _MALLOC_ENV) or "glibc.malloc." in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # The arguments are C ints and so is the answer: ctypes' defaults for Python ints. The
    # trim threshold first: setting the mmap threshold is what ends glibc's adjusting both.
    trimmed = bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and trimmed


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the process's stop event owns the signals


async def serve_http(
    app: Any, sock: socket.socket, *, log_level: str, stop: asyncio.Event, timeout_s: float
) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set; requests in progress then get up to
    ``timeout_s`` to finish."""
    config = uvicorn.Config(
        app,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(max(1, timeout_s)),
    )
    server = _Server(config)
    log.debug("allocator's mmap threshold fixed: %s", steady_allocator())
    log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    await serving
