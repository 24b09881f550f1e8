"""Storage errors; SQLAlchemy's own are translated to these at the boundary."""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc


class StorageError(Exception):
    """Base class of storage errors."""


class MigrationRequiredError(StorageError):
    """The database schema is older than the code."""


class NotFoundError(StorageError):
    """The row asked for does not exist."""


class ConflictError(StorageError):
    """A unique value (a brand name, say) is taken already."""


# The database away, busy or briefly refusing (SQLite "database is locked", PostgreSQL
# connection loss, admin shutdown, deadlock and serialization failures, disk full):
# the same write can succeed later, so the caller retries it. Everything else a write
# raises (a constraint, a value the database cannot hold, a conversion in our code) is
# deterministic: the same rows fail again, forever.
_TRANSIENT: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_REASON_CHARS = 500


def is_transient(error: BaseException) -> bool:
    """True if retrying the same write may succeed (the database is away or busy)."""
    return isinstance(error, _TRANSIENT)


def refusal_reason(error: BaseException) -> str:
    """The database's own words for why it refused a write, one printable line."""
    if isinstance(error, sa_exc.StatementError) and error.orig is not None:
        cause: BaseException = error.orig
    else:
        cause = error
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    text = _UNPRINTABLE.sub("?", text)[:MAX_REASON_CHARS]
    return (
        f"store refused: {type(cause).__name__}: {text}"
        if text
        else (f"store refused: {type(cause).__name__}")
    )
