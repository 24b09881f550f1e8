"""Rows bound as one array a column on PostgreSQL: every row stored in its order, values
exact (NULLs, floats to the last bit, times), upserts and ``RETURNING`` as in one row a
statement, and the driver's errors translated as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, exc, text

from services.core.storage.db import make_engine
from services.core.storage.errors import is_transient
from services.core.storage.pg_bulk import insert_unnest, unnest_statement

HEAD = "INSERT INTO t (k, name, score, at, flag, note)"
TYPES = ("bigint", "text", "float8", "timestamp", "boolean", "text")
T0 = datetime(2026, 1, 5, 12, 0, 0, 123456)


@pytest.fixture
def conn(pg_database: str) -> Iterator[Connection]:
    engine = make_engine(pg_database)
    with engine.connect() as c:
        c.execute(
            text(
                "CREATE TABLE t (pk bigserial PRIMARY KEY, k bigint UNIQUE NOT NULL, "
                "name varchar(8) NOT NULL, score double precision NOT NULL, "
                "at timestamp NOT NULL, flag boolean NOT NULL, note text)"
            )
        )
        c.commit()
        yield c
    engine.dispose()


def rows_of(n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [
        (
            k,
            f"r{k}",
            0.1 * k + 1e-17 * k,  # floats that print long: stored to the last bit
            T0 + timedelta(seconds=k),
            k % 2 == 0,
            None if k % 3 else f'note\t{k}\\ "quoted" {{braces}}, ü',
        )
        for k in range(start, start + n)
    ]


def test_every_row_is_stored_exactly_in_order(conn: Connection) -> None:
    rows = rows_of(300)
    result = insert_unnest(conn, HEAD, TYPES, rows, "RETURNING pk, k")
    assert result is not None
    returned = list(result)
    # Keys are drawn in the rows' order: what lets a writer lock rollups in one order.
    assert [k for _, k in returned] == [r[0] for r in rows]
    assert [pk for pk, _ in returned] == sorted(pk for pk, _ in returned)
    stored = conn.execute(text("SELECT k, name, score, at, flag, note FROM t ORDER BY pk"))
    assert [tuple(r) for r in stored] == rows


def test_an_upsert_adds_to_the_stored_rows_and_conflicts_are_skipped(conn: Connection) -> None:
    insert_unnest(conn, HEAD, TYPES, rows_of(10))
    skip = insert_unnest(conn, HEAD, TYPES, rows_of(20), "ON CONFLICT (k) DO NOTHING RETURNING k")
    assert skip is not None and [k for (k,) in skip] == list(range(10, 20))
    insert_unnest(
        conn,
        HEAD,
        TYPES,
        rows_of(5),
        "ON CONFLICT (k) DO UPDATE SET score = t.score + excluded.score",
    )
    doubled = conn.execute(text("SELECT score FROM t WHERE k < 5 ORDER BY k")).scalars().all()
    assert doubled == [r[2] + r[2] for r in rows_of(5)]  # type: ignore[operator]


def test_a_column_of_nulls_only_is_stored(conn: Connection) -> None:
    rows = [(k, "n", 1.5, T0, True, None) for k in range(3)]
    insert_unnest(conn, HEAD, TYPES, rows)
    assert conn.execute(text("SELECT count(*) FROM t WHERE note IS NULL")).scalar() == 3


def test_no_rows_run_no_statement(conn: Connection) -> None:
    assert insert_unnest(conn, HEAD, TYPES, []) is None


def test_a_refused_value_is_sqlalchemys_error_and_not_transient(conn: Connection) -> None:
    too_long = [(1, "nine char", 1.0, T0, True, None)]
    with pytest.raises(exc.DataError) as refused:
        insert_unnest(conn, HEAD, TYPES, too_long)
    assert not is_transient(refused.value)


def test_the_statement_binds_one_binary_array_a_column() -> None:
    assert unnest_statement("INSERT INTO t (a, b)", ("text", "bigint"), "RETURNING a") == (
        "INSERT INTO t (a, b) SELECT * FROM unnest(%b::text[], %b::bigint[]) RETURNING a"
    )
