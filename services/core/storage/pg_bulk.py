"""Many rows in one PostgreSQL statement, for the writer's PostgreSQL path.

Each column of a batch is bound as one array, in binary, and ``unnest`` turns the arrays
back into rows: ``INSERT … SELECT * FROM unnest(%b::text[], %b::bigint[], …) …``. One
statement of fixed text a batch, whatever its size, so psycopg parses it once and the
server plans it once; SQLAlchemy's multi-row ``VALUES`` (a new statement text per batch
size) and an ``executemany`` of a one-row upsert both cost several times more, almost
all of it in Python: ``MentionWriter`` on 10,000 of ``bench_writer``'s records in chunks
of 250 took 294 µs of CPU a mention that way, 56 µs this way. Binary: psycopg's text
format escapes every element of an array in Python, over 20 times slower.
The statements go through SQLAlchemy's connection (``exec_driver_sql``), so the
driver's errors are translated as everywhere else (``services/core/storage/errors.py``
tells a database away from a refused row) and a lost connection is invalidated; ``COPY``
into a staging table would not (psycopg's ``copy`` is outside SQLAlchemy, so a database
gone mid-batch would read as a refused row) and needs the staging table besides.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, CursorResult


@lru_cache(maxsize=64)
def unnest_statement(head: str, types: tuple[str, ...], tail: str = "") -> str:
    """``{head} SELECT * FROM unnest(…) {tail}``, one binary array of ``types[i]`` per
    column (``types``: PostgreSQL type names, e.g. ``("text", "bigint")``)."""
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    # ``head``, ``types`` and ``tail`` are this package's constants; the values are bound.
    return f"{head} SELECT * FROM unnest({arrays}) {tail}".rstrip()  # noqa: S608


def columns_of(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """``rows`` as ``width`` column lists."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(c) for c in zip(*rows, strict=True)]


def insert_unnest(
    conn: Connection,
    head: str,
    types: tuple[str, ...],
    rows: Sequence[Sequence[object]],
    tail: str = "",
) -> CursorResult[*tuple[Any, ...]] | None:
    """Run ``{head} SELECT * FROM unnest(columns) {tail}`` for ``rows`` (tuples in the
    order of ``types``), in ``conn``'s transaction; rows come out of ``unnest`` in their
    order, so upserts sorted by key lock in one order. Returns the result (for a
    ``RETURNING`` tail), or ``None`` when there were no rows and nothing was run.

    Times must be naive UTC ``datetime`` (for ``timestamp``); a list of floats must hold
    floats only. Raises what SQLAlchemy raises; the caller's transaction is not undone
    here."""
    if not rows:
        return None
    return conn.exec_driver_sql(
        unnest_statement(head, types, tail), tuple(columns_of(rows, len(types)))
    )
