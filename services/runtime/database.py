"""The prestart wait for the database (``sentimon migrate --wait``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)


def wait_for_database(
    engine: Engine,
    timeout_s: float,
    *,
    interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Return once the database answers ``SELECT 1`` (the number of attempts it took).

    Raises ``TimeoutError`` with the last connection error after ``timeout_s``. In a
    container the database may start after the service.
    """
    deadline = monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return attempts
        except DBAPIError as e:
            if monotonic() >= deadline:
                raise TimeoutError(
                    f"database not reachable after {timeout_s:g} s ({attempts} attempts): "
                    f"{type(e).__name__}: {e}"
                ) from e
            if attempts % 10 == 1:  # said at once, then now and then: not every half second
                log.warning("waiting for the database: %s: %s", type(e).__name__, e)
        sleep(min(interval_s, max(0.0, deadline - monotonic())))
