"""Many rows in one SQLite statement, for the single writer's fast path.

One ``INSERT … VALUES (…), (…), …`` costs SQLite and the driver less a row than the
driver's ``executemany`` of a one-row statement, which resets, binds and steps the
statement from Python once a row (``tests/bench/bench_writer.py`` measures the writer).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from functools import lru_cache

# Rows per statement: past a few hundred the gain is gone and the SQL text only grows.
MAX_ROWS = 500


@lru_cache(maxsize=256)
def _statement(head: str, tail: str, width: int, rows: int) -> str:
    one = f"({', '.join('?' * width)})"
    return f"{head} VALUES {', '.join(itertools.repeat(one, rows))} {tail}".rstrip()


def insert_rows(
    cursor: sqlite3.Cursor, head: str, rows: Sequence[Sequence[object]], tail: str = ""
) -> int:
    """Run ``{head} VALUES (row), (row), … {tail}`` for every row, in statements of at
    most ``MAX_ROWS`` rows (and under SQLite's limit on bound values), on ``cursor``'s
    connection, in its transaction. Returns the number of rows the statements changed
    (an ``ON CONFLICT DO NOTHING`` row that was skipped changed none).

    Raises what the driver raises; statements already run are not undone here (the
    caller's transaction is)."""
    if not rows:
        return 0
    width = len(rows[0])
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(MAX_ROWS, limit // width))
    changed = 0
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        cursor.execute(
            _statement(head, tail, width, len(part)), list(itertools.chain.from_iterable(part))
        )
        changed += cursor.rowcount
    return changed
